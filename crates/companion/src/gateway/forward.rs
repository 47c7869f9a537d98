//! Forwarding an authorized `/mcp` call to the upstream at the transport
//! level: bodies and SSE streams pass through untouched; only the
//! `Authorization` header is swapped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::bearer::{challenge, Bearer};
use crate::events::Event;
use crate::oauth::LocalHost;
use crate::sensitive::Sensitive;
use crate::state::AppState;
use crate::store::{AccessCheck, Account, AccountStatus};
use crate::tokens;

/// Largest JSON-RPC POST body forwarded.
const MAX_POST_BODY: usize = 4 * 1024 * 1024;
/// How long the upstream may take to answer with headers. A healthy open
/// stream, once started, has no time limit.
const HEADER_TIMEOUT: Duration = Duration::from_secs(60);

/// Request headers that travel upstream (everything else, including the
/// host's `Authorization` and hop-by-hop headers, stays here).
const FORWARD_REQUEST: [&str; 5] = [
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];
/// Response headers that travel back.
const FORWARD_RESPONSE: [&str; 6] = [
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "retry-after",
    "cache-control",
    "www-authenticate",
];

/// PATs read from the secret store, keyed by account and checked against the
/// account's current PAT hash so a replaced token is never used.
#[derive(Clone, Default)]
pub struct PatCache(Arc<Mutex<HashMap<String, CachedPat>>>);

/// The PAT hash it was read for, and the PAT.
type CachedPat = (String, Sensitive<String>);

impl std::fmt::Debug for PatCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PatCache")
    }
}

impl PatCache {
    fn cached(&self, account: &Account) -> Option<Sensitive<String>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&account.id)
            .filter(|(h, _)| *h == account.pat_hash)
            .map(|(_, p)| p.clone())
    }

    /// The account's PAT, from memory or the secret store.
    pub async fn get(&self, state: &AppState, account: &Account) -> Option<Sensitive<String>> {
        if let Some(p) = self.cached(account) {
            return Some(p);
        }
        let pat = match state.secrets.get_async(account.id.clone()).await {
            Ok(Some(p)) if tokens::hash(p.expose()) == account.pat_hash => p,
            Ok(_) => return None,
            Err(e) => {
                tracing::error!(account = %account.id, error = %e, "cannot read the account's token");
                return None;
            }
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account.id.clone(), (account.pat_hash.clone(), pat.clone()));
        Some(pat)
    }
}

/// A JSON-RPC error (for POSTs) or a plain error naming the upstream problem.
fn upstream_failure(
    status: StatusCode,
    is_post: bool,
    id: serde_json::Value,
    message: String,
) -> Response {
    if is_post {
        (
            status,
            Json(serde_json::json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": { "code": -32000, "message": message },
            })),
        )
            .into_response()
    } else {
        (status, Json(serde_json::json!({ "error": "upstream_unavailable", "error_description": message })))
            .into_response()
    }
}

/// Resolves the bearer to the account it may act as.
async fn authorize(
    state: &AppState,
    host: &LocalHost,
    bearer: Bearer,
) -> Result<Account, Response> {
    let token = match bearer {
        Bearer::Missing => return Err(challenge(host, None)),
        Bearer::Malformed => return Err(challenge(host, Some("malformed Authorization header"))),
        Bearer::Token(t) => t,
    };
    let hash = tokens::hash(token.expose());
    let account_id = if token.expose().starts_with(tokens::ACCESS_PREFIX) {
        match state.store.check_access(hash, state.now()).await {
            Ok(AccessCheck::Valid(ctx)) => ctx.account_id,
            Ok(AccessCheck::Expired) => {
                return Err(challenge(host, Some("the access token expired")))
            }
            Ok(AccessCheck::Revoked) => {
                return Err(challenge(host, Some("the access token was revoked")))
            }
            Ok(AccessCheck::Unknown) => return Err(challenge(host, Some("unknown access token"))),
            Err(e) => {
                tracing::error!(error = %e, "storage failure");
                return Err((StatusCode::INTERNAL_SERVER_ERROR, "storage failure").into_response());
            }
        }
    } else if token.expose().starts_with(tokens::PAT_PREFIX) {
        // A custom agent holding one of the user's own PATs.
        match state.store.account_by_pat_hash(hash).await {
            Ok(Some(a)) if a.status == AccountStatus::Valid => a.id,
            _ => return Err(challenge(host, Some("unknown token"))),
        }
    } else {
        return Err(challenge(host, Some("unknown token")));
    };
    match state.store.account(account_id).await {
        Ok(Some(a)) => Ok(a),
        _ => Err(challenge(
            host,
            Some("the account behind this token is gone"),
        )),
    }
}

/// `POST|GET|DELETE /mcp`
pub async fn handle(
    State(state): State<AppState>,
    Extension(host): Extension<LocalHost>,
    req: Request,
) -> Response {
    let method = req.method().clone();
    if !matches!(method, Method::POST | Method::GET | Method::DELETE) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, POST, DELETE")],
        )
            .into_response();
    }
    let account = match authorize(&state, &host, Bearer::from_headers(req.headers())).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let is_post = method == Method::POST;
    let Some(pat) = state.pats.get(&state, &account).await else {
        return upstream_failure(
            StatusCode::BAD_GATEWAY,
            is_post,
            serde_json::Value::Null,
            "Spor Companion cannot read this account's token from the secret store".into(),
        );
    };

    let (parts, body) = req.into_parts();
    let mut upstream = state
        .forwarder
        .request(method.clone(), &account.mcp_url)
        .bearer_auth(pat.expose());
    for name in FORWARD_REQUEST {
        for v in parts.headers.get_all(name) {
            upstream = upstream.header(name, v.clone());
        }
    }
    let mut rpc_id = serde_json::Value::Null;
    if is_post {
        let Ok(bytes) = to_bytes(body, MAX_POST_BODY).await else {
            return upstream_failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                true,
                serde_json::Value::Null,
                format!("request body larger than {MAX_POST_BODY} bytes"),
            );
        };
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            rpc_id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
        }
        upstream = upstream.body(bytes);
    }

    let resp = match tokio::time::timeout(HEADER_TIMEOUT, upstream.send()).await {
        Err(_) => {
            return upstream_failure(
                StatusCode::GATEWAY_TIMEOUT,
                is_post,
                rpc_id,
                format!(
                    "the upstream MCP server at {} did not answer in time",
                    account.mcp_url
                ),
            )
        }
        Ok(Err(e)) => {
            tracing::warn!(account = %account.id, connect = e.is_connect(), "upstream request failed");
            return upstream_failure(
                StatusCode::BAD_GATEWAY,
                is_post,
                rpc_id,
                format!(
                    "the upstream MCP server at {} is unreachable",
                    account.mcp_url
                ),
            );
        }
        Ok(Ok(r)) => r,
    };

    if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
        // The upstream no longer accepts the PAT: every grant minted from it
        // is now worthless, so end them and make the host re-authorize.
        match state
            .store
            .reject_account(account.id.clone(), state.now())
            .await
        {
            Ok(revoked) => {
                for g in revoked {
                    state.events.emit(Event::GrantRevoked { grant_id: g });
                }
                state.events.emit(Event::AccountRejected {
                    account_id: account.id.clone(),
                });
                tracing::warn!(account = %account.id, "the upstream rejected the stored token; its grants were revoked");
            }
            Err(e) => tracing::error!(error = %e, "could not record the rejected token"),
        }
        return challenge(
            &host,
            Some("the server rejected the stored Spor token; reconnect to paste a new one"),
        );
    }

    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = Response::builder().status(status);
    for name in FORWARD_RESPONSE {
        for v in resp.headers().get_all(name) {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(v.as_bytes()),
            ) {
                out = out.header(n, v);
            }
        }
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
