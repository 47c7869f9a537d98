//! Why a `/mcp` call failed before or while reaching the upstream, what the
//! call log records for it, and the one place each failure becomes the
//! host's answer: a JSON-RPC error carrying the request's id for a POST, a
//! JSON error otherwise.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use spor_wire::jsonrpc;

use crate::store::CallOutcome;

/// A failure the gateway answers itself (the upstream's own answers pass
/// through). `url` is the upstream MCP endpoint, named in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// The POST body is over the size bound (bytes).
    BodyTooLarge(usize),
    /// The session id is another principal's, or nobody's.
    SessionNotFound,
    /// The account's PAT could not be read from the secret store.
    PatUnreadable,
    /// No response headers within the header timeout.
    Timeout { url: String },
    /// The upstream refused the connection or could not be reached.
    Unreachable { url: String },
    /// Connected, then cut off or answered with something that is not HTTP.
    BadResponse { url: String },
    /// The upstream failed with a 5xx status.
    UpstreamFailed { url: String, status: u16 },
    /// The upstream's answer was over the size bound (bytes).
    AnswerTooLarge { url: String, limit: usize },
    /// The upstream cut its answer before the end.
    AnswerBroken { url: String },
    /// The upstream's answer sent nothing for the idle bound (seconds).
    AnswerIdle { url: String, secs: u64 },
    /// The database failed; logged where it happened.
    Storage,
    /// The grant's access does not include this tool (`tool` as the body
    /// names it, clipped; `access` in words).
    Denied {
        tool: String,
        access: String,
        grant_id: String,
    },
    /// A body the gateway cannot read under an access policy: it cannot
    /// tell what would be called, so nothing is.
    Unreadable,
    /// The `Mcp-Name` header names another tool than the body.
    NameMismatch,
}

impl GatewayError {
    /// The stable code, also the `error` of the JSON answer to a GET or DELETE.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BodyTooLarge(_) => "request_too_large",
            Self::SessionNotFound => "session_not_found",
            Self::Storage => "server_error",
            Self::Denied { .. } | Self::Unreadable | Self::NameMismatch => "access_denied",
            Self::PatUnreadable
            | Self::Timeout { .. }
            | Self::Unreachable { .. }
            | Self::BadResponse { .. }
            | Self::UpstreamFailed { .. }
            | Self::AnswerTooLarge { .. }
            | Self::AnswerBroken { .. }
            | Self::AnswerIdle { .. } => "upstream_unavailable",
        }
    }

    /// What the call log records for the calls it ended; `None` where the
    /// call never reached the upstream and is not logged.
    pub fn outcome(&self) -> Option<CallOutcome> {
        match self {
            Self::BodyTooLarge(_) | Self::SessionNotFound | Self::PatUnreadable | Self::Storage => {
                None
            }
            Self::Denied { .. } | Self::Unreadable | Self::NameMismatch => {
                Some(CallOutcome::Denied)
            }
            Self::Timeout { .. } => Some(CallOutcome::Timeout),
            Self::Unreachable { .. } => Some(CallOutcome::Unreachable),
            Self::BadResponse { .. } => Some(CallOutcome::BadResponse),
            Self::UpstreamFailed { status, .. } => Some(CallOutcome::Http(*status)),
            Self::AnswerTooLarge { .. } => Some(CallOutcome::TooLarge),
            Self::AnswerBroken { .. } => Some(CallOutcome::StreamBroken),
            Self::AnswerIdle { .. } => Some(CallOutcome::StreamIdle),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::SessionNotFound => StatusCode::NOT_FOUND,
            Self::Storage => StatusCode::INTERNAL_SERVER_ERROR,
            // The exchange worked; the call is refused in JSON-RPC terms.
            Self::Denied { .. } => StatusCode::OK,
            Self::Unreadable | Self::NameMismatch => StatusCode::BAD_REQUEST,
            Self::Timeout { .. } | Self::AnswerIdle { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::PatUnreadable
            | Self::Unreachable { .. }
            | Self::BadResponse { .. }
            | Self::UpstreamFailed { .. }
            | Self::AnswerTooLarge { .. }
            | Self::AnswerBroken { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// The sentence the host's user reads.
    pub fn message(&self) -> String {
        let at = |url: &str, what: &str| format!("the upstream MCP server at {url} {what}");
        match self {
            Self::BodyTooLarge(limit) => format!("request body larger than {limit} bytes"),
            Self::SessionNotFound => {
                "Session not found; start a new session with initialize".into()
            }
            Self::PatUnreadable => {
                "Spor Companion cannot read this account's token from the secret store".into()
            }
            Self::Timeout { url } => at(url, "did not answer in time"),
            Self::Unreachable { url } => at(url, "is unreachable"),
            Self::BadResponse { url } => {
                at(url, "closed the connection or sent an invalid HTTP answer")
            }
            Self::UpstreamFailed { url, status } => at(url, &format!("failed with HTTP {status}")),
            Self::AnswerTooLarge { url, limit } => {
                at(url, &format!("sent an answer larger than {limit} bytes"))
            }
            Self::AnswerBroken { url } => {
                at(url, "closed the connection before finishing its answer")
            }
            Self::AnswerIdle { url, secs } => at(
                url,
                &format!("stopped sending its answer (nothing for {secs} s)"),
            ),
            Self::Storage => String::new(),
            Self::Denied { tool, access, grant_id } => format!(
                "Spor Companion does not let this assistant use the tool \"{tool}\" (its access: {access}). \
                 The person can change it in Spor Companion (Assistants, Access) \
                 or with: spor-companiond grants access {grant_id} --access full"
            ),
            Self::Unreadable => "Spor Companion cannot read this request, and this assistant's access \
                 allows only some tools: nothing was sent"
                .into(),
            Self::NameMismatch => "the Mcp-Name header names another tool than the request body; \
                 nothing was sent"
                .into(),
        }
    }

    /// The host's answer: for a POST a JSON-RPC error answering `id`, else
    /// a JSON `{error, error_description}`; a storage failure says no more
    /// than `server_error` either way.
    pub fn answer(&self, is_post: bool, id: &Value) -> Response {
        let body = match self {
            Self::Storage => json!({ "error": self.code() }),
            _ if is_post => {
                let code = match self {
                    Self::SessionNotFound => jsonrpc::SESSION_NOT_FOUND,
                    Self::Denied { .. } => jsonrpc::ACCESS_DENIED,
                    Self::NameMismatch => jsonrpc::HEADER_MISMATCH,
                    Self::Unreadable => jsonrpc::INVALID_REQUEST,
                    _ => jsonrpc::SERVER_ERROR,
                };
                jsonrpc::error_response(id, code, &self.message())
            }
            _ => json!({ "error": self.code(), "error_description": self.message() }),
        };
        (self.status(), Json(body)).into_response()
    }
}

/// Logs a storage failure (the host is told only `server_error`).
pub(crate) fn storage(e: impl std::fmt::Display) -> GatewayError {
    tracing::error!(error = %e, "storage failure");
    GatewayError::Storage
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn a_post_gets_a_json_rpc_error_for_its_id_and_a_get_a_json_error() {
        let e = GatewayError::Unreachable {
            url: "http://127.0.0.1:9/mcp".into(),
        };
        let (status, post) = body(e.answer(true, &json!(3))).await;
        assert_eq!(status, 502);
        assert_eq!(post["id"], 3);
        assert_eq!(post["error"]["code"], -32000);
        assert_eq!(
            post["error"]["message"],
            "the upstream MCP server at http://127.0.0.1:9/mcp is unreachable"
        );
        let (_, get) = body(e.answer(false, &Value::Null)).await;
        assert_eq!(get["error"], "upstream_unavailable");
        let (status, gone) = body(GatewayError::SessionNotFound.answer(true, &json!(1))).await;
        assert_eq!(
            (status, gone["error"]["code"].clone()),
            (404, json!(-32001))
        );
        let (status, storage) = body(GatewayError::Storage.answer(true, &json!(1))).await;
        assert_eq!((status, storage), (500, json!({ "error": "server_error" })));
    }
}
