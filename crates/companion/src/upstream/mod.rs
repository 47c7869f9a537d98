//! The Spor REST client (`/v1/me`, org choices, token list and revoke) and
//! the rules for which server URLs a PAT may be sent to.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::host::is_on_this_machine;
use crate::http_body::{read_prefix, read_whole, BodyError};
use crate::sensitive::Sensitive;
use crate::sse;
use crate::store::RejectReason;

/// Reads why a server refused a token from its error body (Spor's
/// `{"error":{"code","message"}}`, whose code or message names an expired
/// token); anything unreadable counts as refused. The one place a refusal
/// is classified: the REST client and the gateway both read bodies here.
pub fn reject_reason(body: &[u8]) -> RejectReason {
    let text = match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(env) => format!("{} {}", env.error.code, env.error.message),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    if text.to_ascii_lowercase().contains("expired") {
        RejectReason::Expired
    } else {
        RejectReason::Refused
    }
}

/// Most of an MCP server's `initialize` answer read while probing it.
const PROBE_LIMIT: usize = 1024 * 1024;

/// Errors talking to an upstream. Messages name the cause, never the token.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The server URL is not one we will send a token to.
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    /// Could not connect.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("{url} did not answer in time")]
    Timeout {
        /// Where.
        url: String,
    },
    /// The server refused the token (401/403).
    #[error("the server rejected the token: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's own explanation.
        message: String,
        /// Whether it said the token expired, read from its answer.
        reason: RejectReason,
    },
    /// 404 from the server.
    #[error("not found on the server: {0}")]
    NotFound(String),
    /// 429 from the server.
    #[error("the server is rate limiting requests{}", retry_after.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    RateLimited {
        /// Seconds to wait, if given.
        retry_after: Option<u64>,
    },
    /// Any other error status.
    #[error("the server failed with HTTP {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's message, if any.
        message: String,
    },
    /// The answer was not what the contract says.
    #[error("unexpected answer from the server: {0}")]
    BadResponse(String),
}

/// `GET /v1/me`.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    /// Person id, null when unbound.
    pub person: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the token maps to a person.
    pub bound: bool,
    /// Org admin.
    #[serde(default)]
    pub is_admin: bool,
    /// Organization slug the token is scoped to.
    pub org: String,
}

/// One entry of `GET /v1/me/org-choices`.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgChoice {
    /// Slug.
    pub slug: String,
    /// Display label.
    #[serde(default)]
    pub label: Option<String>,
    /// Whether this is the person's default org.
    #[serde(default)]
    pub default: bool,
}

/// Where a server's list of organizations comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgSource {
    /// A live list from the identity provider: every org the person is in.
    Idp,
    /// Only the org the token is bound to.
    Bound,
    /// A source this version does not know; treated like `bound`.
    #[serde(other)]
    Other,
}

/// `GET /v1/me/org-choices`.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgChoices {
    /// The orgs.
    pub org_choices: Vec<OrgChoice>,
    /// Where the list comes from.
    pub source: OrgSource,
}

/// One entry of `GET /v1/me/tokens`.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenInfo {
    /// Leading hex characters of the token's hash; Spor's id for it.
    pub hash_prefix: String,
}

#[derive(Deserialize)]
struct TokenList {
    tokens: Vec<TokenInfo>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Checks a server URL and returns it normalized (no trailing slash). HTTPS
/// anywhere; plain HTTP only to this machine, so a PAT never crosses a
/// network in clear text.
pub fn normalize_server_url(raw: &str) -> Result<String, UpstreamError> {
    let raw = raw.trim();
    let url =
        Url::parse(raw).map_err(|_| UpstreamError::InvalidUrl(format!("{raw:?} is not a URL")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UpstreamError::InvalidUrl(
            "credentials in the URL are not allowed".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(UpstreamError::InvalidUrl(
            "the URL must not have a query or fragment".into(),
        ));
    }
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => {}
        ("http", Some(h)) if is_on_this_machine(&h) => {}
        ("http", Some(_)) => return Err(UpstreamError::InvalidUrl(
            "plain http is only allowed for this machine (127.0.0.1, localhost, [::1]); use https"
                .into(),
        )),
        _ => {
            return Err(UpstreamError::InvalidUrl(
                "the URL must start with https://".into(),
            ))
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A request that got no HTTP answer: timed out, or could not connect or send.
fn transport_error(url: &str, e: &reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout {
            url: url.to_string(),
        }
    } else {
        UpstreamError::Unreachable {
            url: url.to_string(),
            reason: if e.is_connect() {
                "connection failed".into()
            } else {
                "request failed".into()
            },
        }
    }
}

/// Largest REST answer read (`/v1/me`, org choices, the token list are a
/// few hundred bytes); a larger one is refused, never buffered whole.
pub const MAX_REST_BODY: usize = 1024 * 1024;
/// How much of an error answer is read to learn the server's reason.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Connect bound of REST calls.
const REST_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-call bound of REST calls (headers and body).
const REST_TIMEOUT: Duration = Duration::from_secs(15);

/// An HTTP client for upstream REST calls, with bounded timeouts and no
/// redirects (a redirect could carry the bearer token elsewhere).
#[derive(Debug, Clone)]
pub struct Upstream {
    http: reqwest::Client,
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    /// A client with the default timeouts.
    pub fn new() -> Self {
        Self::with_timeout(REST_TIMEOUT)
    }

    /// A client whose calls (headers and body) must finish within `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(REST_CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("spor-companion/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self { http }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        pat: &Sensitive<String>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let resp = req
            .bearer_auth(pat.expose())
            .send()
            .await
            .map_err(|e| transport_error(url, &e))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let mut resp = resp;
        let body = read_whole(&mut resp, MAX_ERROR_BODY, None)
            .await
            .unwrap_or_default();
        let (code, message) = match serde_json::from_slice::<ErrorEnvelope>(&body) {
            Ok(env) => (env.error.code, env.error.message),
            Err(_) => (String::new(), format!("HTTP {status}")),
        };
        let message = if message.is_empty() {
            code.clone()
        } else {
            message
        };
        Err(match status {
            401 | 403 => UpstreamError::Rejected {
                status,
                message,
                reason: reject_reason(&body),
            },
            404 => UpstreamError::NotFound(message),
            429 => UpstreamError::RateLimited { retry_after },
            _ => UpstreamError::Server { status, message },
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: String,
        pat: &Sensitive<String>,
    ) -> Result<T, UpstreamError> {
        let mut resp = self.send(self.http.get(&url), &url, pat).await?;
        let body = match read_whole(&mut resp, MAX_REST_BODY, None).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return Err(UpstreamError::BadResponse(format!(
                    "{url} sent an answer larger than {MAX_REST_BODY} bytes"
                )))
            }
            Err(BodyError::Broken(e)) if e.is_timeout() => {
                return Err(UpstreamError::Timeout { url })
            }
            Err(_) => {
                return Err(UpstreamError::BadResponse(format!(
                    "{url} closed the connection before finishing its answer"
                )))
            }
        };
        serde_json::from_slice(&body).map_err(|_| {
            UpstreamError::BadResponse(format!("{url} did not return the expected JSON"))
        })
    }

    /// Whether anything answers HTTP at `url` (any status counts); sends no
    /// token.
    pub async fn probe(&self, url: &str) -> Result<(), UpstreamError> {
        match tokio::time::timeout(Duration::from_secs(5), self.http.get(url).send()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(transport_error(url, &e)),
            Err(_) => Err(UpstreamError::Timeout {
                url: url.to_string(),
            }),
        }
    }

    /// Who the token belongs to.
    pub async fn me(&self, server: &str, pat: &Sensitive<String>) -> Result<Me, UpstreamError> {
        self.get_json(format!("{server}/v1/me"), pat).await
    }

    /// Which organizations the person can act in.
    pub async fn org_choices(
        &self,
        server: &str,
        pat: &Sensitive<String>,
    ) -> Result<OrgChoices, UpstreamError> {
        self.get_json(format!("{server}/v1/me/org-choices"), pat)
            .await
    }

    /// Checks a token against any MCP server with an `initialize` request
    /// (for generic upstreams, which have no `/v1/me`); ends the session it
    /// opened, if any.
    pub async fn mcp_initialize(
        &self,
        mcp_url: &str,
        token: &Sensitive<String>,
    ) -> Result<(), UpstreamError> {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "spor-companion", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let req = self
            .http
            .post(mcp_url)
            .header(
                reqwest::header::ACCEPT,
                "application/json, text/event-stream",
            )
            .json(&body);
        let not_mcp = |status: u16| {
            UpstreamError::BadResponse(format!("{mcp_url} is not an MCP server (HTTP {status})"))
        };
        let resp = match self.send(req, mcp_url, token).await {
            Ok(r) => r,
            Err(UpstreamError::NotFound(_)) => return Err(not_mcp(404)),
            Err(UpstreamError::Server { status, .. }) if status < 500 => {
                return Err(not_mcp(status))
            }
            Err(e) => return Err(e),
        };
        let session = resp.headers().get("mcp-session-id").cloned();
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        // An SSE answer may stay open after the message we need: the first
        // complete result is enough.
        let mut resp = resp;
        let first_result = |b: &[u8]| {
            let text = String::from_utf8_lossy(b);
            text.contains("\"result\"") && text.contains("\n\n")
        };
        let bytes = read_prefix(&mut resp, PROBE_LIMIT, first_result)
            .await
            .map_err(|_| {
                UpstreamError::BadResponse(format!(
                    "{mcp_url} did not finish its initialize answer"
                ))
            })?;
        let messages: Vec<serde_json::Value> = if is_sse {
            // Only complete events count; a cut last one is not a message.
            sse::Parser::new(PROBE_LIMIT)
                .feed(&bytes)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| serde_json::from_str(&e.data).ok())
                .collect()
        } else {
            serde_json::from_slice(&bytes).into_iter().collect()
        };
        if !messages
            .iter()
            .any(|m| m.get("id") == Some(&serde_json::json!(1)) && m.get("result").is_some())
        {
            return Err(UpstreamError::BadResponse(format!(
                "{mcp_url} is not an MCP server (no initialize result)"
            )));
        }
        if let Some(id) = session {
            // Courtesy: do not leave a session open on the server.
            let _ = self
                .send(
                    self.http.delete(mcp_url).header("mcp-session-id", id),
                    mcp_url,
                    token,
                )
                .await;
        }
        Ok(())
    }

    /// Revokes this very PAT on the server: finds its entry in the person's
    /// token list by hash and deletes it.
    pub async fn revoke_own_token(
        &self,
        server: &str,
        pat: &Sensitive<String>,
    ) -> Result<(), UpstreamError> {
        let list: TokenList = self.get_json(format!("{server}/v1/me/tokens"), pat).await?;
        let full = crate::tokens::hash(pat.expose());
        let entry = list
            .tokens
            .iter()
            .find(|t| {
                !t.hash_prefix.is_empty() && full.starts_with(&t.hash_prefix.to_ascii_lowercase())
            })
            .ok_or_else(|| {
                UpstreamError::NotFound("this token is not in the server's token list".into())
            })?;
        let url = format!("{server}/v1/me/tokens/{}", entry.hash_prefix);
        self.send(self.http.delete(&url), &url, pat).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_https_or_local_http() {
        assert_eq!(
            normalize_server_url("https://api.spor.example/").unwrap(),
            "https://api.spor.example"
        );
        assert_eq!(
            normalize_server_url("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            normalize_server_url("http://localhost:9000/base/").unwrap(),
            "http://localhost:9000/base"
        );
        for bad in [
            "http://api.spor.example",
            "ftp://x",
            "https://u:p@x",
            "https://x/?a=1",
            "not a url",
            "javascript:alert(1)",
        ] {
            assert!(normalize_server_url(bad).is_err(), "{bad}");
        }
    }
}
