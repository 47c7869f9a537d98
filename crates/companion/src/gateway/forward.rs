//! Forwarding an authorized `/mcp` call to the upstream at the transport
//! level: bodies and SSE streams pass through untouched; only the
//! `Authorization` header is swapped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde_json::Value;

use super::bearer::{challenge, Bearer};
use super::peek::{peek, Peek};
use super::Principal;
use crate::clock::Timestamp;
use crate::oauth::LocalHost;
use crate::sensitive::Sensitive;
use crate::state::AppState;
use crate::store::{AccessCheck, Account, AccountStatus, CallRecord, Mark};
use crate::tokens;

/// Largest JSON-RPC POST body forwarded. POST bodies are read whole (they
/// are single JSON-RPC messages) so the call can be logged and an upstream
/// failure answered with the request's id.
const MAX_POST_BODY: usize = 4 * 1024 * 1024;

/// Request headers that travel upstream (everything else, including the
/// host's `Authorization` and hop-by-hop headers, stays here).
const FORWARD_REQUEST: [&str; 5] = [
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];
/// Response headers that travel back (no `set-cookie`, no hop-by-hop).
const FORWARD_RESPONSE: [&str; 6] = [
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "retry-after",
    "cache-control",
    "www-authenticate",
];

/// Access tokens cached at most; a full cache is emptied and refilled.
const MAX_CACHED_ACCESS: usize = 4096;

/// What a valid access token resolved to, and when that was read.
#[derive(Clone)]
pub(crate) struct CachedAccess {
    grant_id: String,
    account: Account,
    expires_at: Timestamp,
    mark: Mark,
}

/// Access-token hash → what it resolved to. An entry is used only while
/// the database is unchanged since it was read ([`Mark`]), so a revocation
/// takes effect on the very next request; it saves the token and account
/// queries (and their joins) on every call.
#[derive(Clone, Default)]
pub struct AccessCache(Arc<Mutex<HashMap<String, CachedAccess>>>);

impl std::fmt::Debug for AccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessCache")
    }
}

impl AccessCache {
    fn get(&self, hash: &str) -> Option<CachedAccess> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()
    }

    fn insert(&self, hash: String, entry: CachedAccess) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CACHED_ACCESS {
            map.clear();
        }
        map.insert(hash, entry);
    }

    fn remove(&self, hash: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }
}

/// The PAT hash it was read for, and the PAT.
type CachedPat = (String, Sensitive<String>);

/// PATs read from the secret store, keyed by account and checked against the
/// account's current PAT hash so a replaced token is never used.
#[derive(Clone, Default)]
pub struct PatCache(Arc<Mutex<HashMap<String, CachedPat>>>);

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

/// A JSON-RPC error (for POSTs) or a JSON error naming the upstream problem.
/// How much of an upstream's 401 body is read to learn why.
const REJECTION_BODY_LIMIT: usize = 8 * 1024;

/// Reads at most `limit` bytes of a response body; `None` on a transport error.
async fn read_bounded(resp: reqwest::Response, limit: usize) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Some(body)
}

fn failure(status: StatusCode, is_post: bool, id: &Value, message: String) -> Response {
    if is_post {
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32000, "message": message } });
        (status, Json(body)).into_response()
    } else {
        (status, Json(serde_json::json!({ "error": "upstream_unavailable", "error_description": message })))
            .into_response()
    }
}

/// `404` for a session this principal does not own (MCP: start a new one).
fn session_not_found(is_post: bool, id: &Value) -> Response {
    let message = "Session not found; start a new session with initialize";
    if is_post {
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32001, "message": message } });
        (StatusCode::NOT_FOUND, Json(body)).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": "session_not_found", "error_description": message })),
        )
            .into_response()
    }
}

fn storage_failure(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "storage failure");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({ "error": "server_error" })),
    )
        .into_response()
}

/// Resolves the bearer to who is calling and the account it acts as.
async fn authorize(
    state: &AppState,
    host: &LocalHost,
    bearer: Bearer,
) -> Result<(Principal, Account), Response> {
    let token = match bearer {
        Bearer::Missing => return Err(challenge(host, None)),
        Bearer::Malformed => return Err(challenge(host, Some("malformed Authorization header"))),
        Bearer::Token(t) => t,
    };
    let hash = tokens::hash(token.expose());
    if token.expose().starts_with(tokens::ACCESS_PREFIX) {
        let now = state.now();
        if let Some(hit) = state.gateway.access.get(&hash) {
            // Only as good as the database it was read from: any change
            // since (a revocation, here or by another process) means read again.
            if hit.expires_at > now && matches!(state.store.mark().await, Ok(m) if m == hit.mark) {
                return Ok((
                    Principal::Grant {
                        grant_id: hit.grant_id,
                    },
                    hit.account,
                ));
            }
            state.gateway.access.remove(&hash);
        }
        let snap = match state.store.access_snapshot(hash.clone(), now).await {
            Ok(s) => s,
            Err(e) => return Err(storage_failure(e)),
        };
        let ctx = match snap.check {
            AccessCheck::Valid(ctx) => ctx,
            AccessCheck::Expired => return Err(challenge(host, Some("the access token expired"))),
            AccessCheck::Revoked => {
                return Err(challenge(host, Some("the access token was revoked")))
            }
            AccessCheck::Unknown => return Err(challenge(host, Some("unknown access token"))),
        };
        let Some(account) = snap.account else {
            return Err(challenge(
                host,
                Some("the account behind this token is gone"),
            ));
        };
        state.gateway.access.insert(
            hash,
            CachedAccess {
                grant_id: ctx.grant_id.clone(),
                account: account.clone(),
                expires_at: ctx.expires_at,
                mark: snap.mark,
            },
        );
        return Ok((
            Principal::Grant {
                grant_id: ctx.grant_id,
            },
            account,
        ));
    }
    if token.expose().starts_with(tokens::PAT_PREFIX) {
        // A custom agent holding one of the user's own PATs: accepted only
        // if it is exactly the stored one.
        if let Ok(Some(a)) = state.store.account_by_pat_hash(hash).await {
            if a.status == AccountStatus::Valid {
                if let Some(stored) = state.gateway.pats.get(state, &a).await {
                    if tokens::constant_time_eq(stored.expose(), token.expose()) {
                        return Ok((
                            Principal::Pat {
                                account_id: a.id.clone(),
                            },
                            a,
                        ));
                    }
                }
            }
        }
    }
    Err(challenge(host, Some("unknown token")))
}

/// Whether `session_hash` belongs to `principal` (memory first, then the
/// database, which survives restarts).
async fn owns_session(
    state: &AppState,
    principal: &Principal,
    session_hash: &str,
) -> Result<bool, Response> {
    let key = principal.key();
    let known = state
        .gateway
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(session_hash)
        .cloned();
    let owner = match known {
        Some(o) => Some(o),
        None => state
            .store
            .session_principal(session_hash.to_string())
            .await
            .map_err(storage_failure)?,
    };
    match owner {
        Some(o) if o == key => {
            state
                .gateway
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(session_hash.to_string(), o);
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn header_str<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Queues the log entries of what was called; written in batches.
fn record(
    state: &AppState,
    principal: &Principal,
    account: &Account,
    calls: Vec<Peek>,
    outcome: &str,
    status: Option<u16>,
    started: Instant,
) {
    if calls.is_empty() {
        return;
    }
    let at = state.now();
    let duration_ms = started.elapsed().as_millis() as u64;
    let rows = calls
        .into_iter()
        .map(|p| CallRecord {
            at,
            grant_id: principal.grant_id().map(str::to_string),
            account_id: account.id.clone(),
            method: p.method,
            tool: p.tool,
            outcome: outcome.to_string(),
            status,
            duration_ms,
        })
        .collect();
    state.gateway.calls.push(rows);
}

/// A call log entry written when the response it belongs to is finished
/// (or dropped, e.g. because the client went away).
struct PendingLog {
    state: AppState,
    principal: Principal,
    account: Account,
    calls: Vec<Peek>,
    outcome: String,
    status: u16,
    started: Instant,
}

impl PendingLog {
    fn mark_broken(&mut self) {
        self.outcome = "stream_broken".into();
    }
}

impl Drop for PendingLog {
    fn drop(&mut self) {
        let calls = std::mem::take(&mut self.calls);
        record(
            &self.state,
            &self.principal,
            &self.account,
            calls,
            &self.outcome,
            Some(self.status),
            self.started,
        );
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
    let (principal, account) =
        match authorize(&state, &host, Bearer::from_headers(req.headers())).await {
            Ok(p) => p,
            Err(resp) => return resp,
        };
    let is_post = method == Method::POST;
    let (parts, body) = req.into_parts();

    let mut calls = Vec::new();
    let mut rpc_id = Value::Null;
    let mut body_bytes = None;
    if is_post {
        let Ok(bytes) = to_bytes(body, MAX_POST_BODY).await else {
            return failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                true,
                &Value::Null,
                format!("request body larger than {MAX_POST_BODY} bytes"),
            );
        };
        (calls, rpc_id) = peek(&bytes);
        body_bytes = Some(bytes);
    }

    let session = header_str(&parts.headers, "mcp-session-id").map(tokens::hash);
    if let Some(s) = &session {
        match owns_session(&state, &principal, s).await {
            Ok(true) => {}
            Ok(false) => return session_not_found(is_post, &rpc_id),
            Err(resp) => return resp,
        }
    }

    let Some(pat) = state.gateway.pats.get(&state, &account).await else {
        return failure(
            StatusCode::BAD_GATEWAY,
            is_post,
            &rpc_id,
            "Spor Companion cannot read this account's token from the secret store".into(),
        );
    };
    let mut upstream = state
        .gateway
        .http
        .request(method.clone(), &account.mcp_url)
        .bearer_auth(pat.expose());
    for name in FORWARD_REQUEST {
        for v in parts.headers.get_all(name) {
            upstream = upstream.header(name, v.clone());
        }
    }
    if let Some(bytes) = body_bytes {
        upstream = upstream.body(bytes);
    }

    let started = Instant::now();
    let resp = match tokio::time::timeout(state.gateway.header_timeout, upstream.send()).await {
        Err(_) => {
            record(
                &state, &principal, &account, calls, "timeout", None, started,
            );
            return failure(
                StatusCode::GATEWAY_TIMEOUT,
                is_post,
                &rpc_id,
                format!(
                    "the upstream MCP server at {} did not answer in time",
                    account.mcp_url
                ),
            );
        }
        Ok(Err(e)) => {
            tracing::warn!(account = %account.id, connect = e.is_connect(), "upstream request failed");
            record(
                &state,
                &principal,
                &account,
                calls,
                "unreachable",
                None,
                started,
            );
            return failure(
                StatusCode::BAD_GATEWAY,
                is_post,
                &rpc_id,
                format!(
                    "the upstream MCP server at {} is unreachable",
                    account.mcp_url
                ),
            );
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();

    if status == 401 {
        record(
            &state,
            &principal,
            &account,
            calls,
            "rejected",
            Some(status),
            started,
        );
        // The upstream no longer accepts the PAT: every grant minted from it
        // is now worthless, so end them and make the host re-authorize. The
        // error body (small, bounded) tells an expired token from a revoked one.
        let reason = match tokio::time::timeout(
            Duration::from_secs(2),
            read_bounded(resp, REJECTION_BODY_LIMIT),
        )
        .await
        {
            Ok(Some(body)) => crate::upstream::reject_reason(&body),
            _ => crate::store::RejectReason::Refused,
        };
        if let Err(e) = crate::accounts::reject(&state, &account.id, reason).await {
            tracing::error!(error = %e, "could not record the rejected token");
        }
        return challenge(
            &host,
            Some("the server rejected the stored Spor token; reconnect to paste a new one"),
        );
    }
    if status >= 500 {
        record(
            &state,
            &principal,
            &account,
            calls,
            &format!("http_{status}"),
            Some(status),
            started,
        );
        return failure(
            StatusCode::BAD_GATEWAY,
            is_post,
            &rpc_id,
            format!(
                "the upstream MCP server at {} failed with HTTP {status}",
                account.mcp_url
            ),
        );
    }
    let outcome = if (200..300).contains(&status) {
        "ok".to_string()
    } else {
        format!("http_{status}")
    };
    // Logged when the response body is done, so a streamed tool call's
    // duration covers the whole call and a broken stream is not "ok".
    let mut log = PendingLog {
        state: state.clone(),
        principal: principal.clone(),
        account: account.clone(),
        calls,
        outcome,
        status,
        started,
    };

    // Bind a session the upstream just created; forget one that ended.
    let returned = header_str(resp.headers(), "mcp-session-id").map(tokens::hash);
    if let Some(new) = returned.filter(|r| session.as_ref() != Some(r)) {
        state
            .gateway
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            // First binding wins, as in the database.
            .entry(new.clone())
            .or_insert_with(|| principal.key());
        if let Err(e) = state
            .store
            .bind_session(new, principal.key(), state.now())
            .await
        {
            return storage_failure(e);
        }
    }
    if let Some(s) = &session {
        if (method == Method::DELETE && (200..300).contains(&status)) || status == 404 {
            state
                .gateway
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(s);
            if let Err(e) = state.store.unbind_session(s.clone()).await {
                tracing::warn!(error = %e, "could not forget an ended session");
            }
        }
    }

    let mut out =
        Response::builder().status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY));
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
    // The stream ends when the upstream ends it, drops it (the client sees
    // the connection close), or the grant is revoked.
    let cancel = state.gateway.stream_token(&principal);
    let stream = resp
        .bytes_stream()
        .take_until(cancel.cancelled_owned())
        .map(move |chunk| {
            if chunk.is_err() {
                log.mark_broken();
            }
            chunk
        });
    out.body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
