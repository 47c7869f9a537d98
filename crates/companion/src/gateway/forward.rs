//! Forwarding an authorized `/mcp` call to the upstream at the transport
//! level: bodies and SSE streams pass through untouched; only the
//! `Authorization` header is swapped.

use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Extension, Json};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use spor_wire::bearer::Bearer;
use spor_wire::peek::{peek, Peek};

use super::bearer::challenge;
use super::cache::CachedAccess;
use super::state::Principal;
use crate::host::LocalHost;
use crate::state::AppState;
use crate::store::{AccessCheck, Account, AccountStatus, CallRecord};
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
/// Response headers that travel back: an allow-list of what MCP needs, so
/// no `set-cookie`, CORS, HSTS, `location` or hop-by-hop header of the
/// upstream reaches the host. Not `www-authenticate` either: it would point
/// the host at the upstream's authorization server, while the host's
/// resource is the companion (an upstream `401` gets the companion's own
/// challenge instead).
const FORWARD_RESPONSE: [&str; 5] = [
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "retry-after",
    "cache-control",
];

/// Largest answer read whole from the upstream (anything but an event
/// stream: one JSON-RPC response, an empty `202`, an error body); a larger
/// one becomes an error for the host.
const MAX_ANSWER_BODY: usize = 16 * 1024 * 1024;

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
                if let Some(stored) = state.gateway.pats.get(&state.secrets, &a).await {
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

    let Some(pat) = state.gateway.pats.get(&state.secrets, &account).await else {
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
    let mut resp = match tokio::time::timeout(state.gateway.header_timeout, upstream.send()).await {
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
            // Refused or unroutable, versus connected but then cut off or
            // answered with something that is not HTTP (e.g. oversized headers).
            let (outcome, what) = if e.is_connect() {
                ("unreachable", "is unreachable")
            } else {
                (
                    "bad_response",
                    "closed the connection or sent an invalid HTTP answer",
                )
            };
            record(&state, &principal, &account, calls, outcome, None, started);
            return failure(
                StatusCode::BAD_GATEWAY,
                is_post,
                &rpc_id,
                format!("the upstream MCP server at {} {what}", account.mcp_url),
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

    // Anything but an event stream is one answer: read it whole, bounded in
    // size and idle time, so a cut, stalled or oversized answer reaches the
    // host as an error carrying its request id, not as a truncated body.
    let idle = state.gateway.stream_idle_timeout;
    let is_sse = header_str(resp.headers(), "content-type").is_some_and(|v| {
        v.trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
    });
    let answer = if is_sse {
        None
    } else {
        match read_answer(&mut resp, idle).await {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                let (outcome, code, what) = match e {
                    AnswerError::TooLarge => (
                        "too_large",
                        StatusCode::BAD_GATEWAY,
                        format!("sent an answer larger than {MAX_ANSWER_BODY} bytes"),
                    ),
                    AnswerError::Broken => (
                        "stream_broken",
                        StatusCode::BAD_GATEWAY,
                        "closed the connection before finishing its answer".to_string(),
                    ),
                    AnswerError::Idle => (
                        "stream_idle",
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "stopped sending its answer (nothing for {} s)",
                            idle.as_secs()
                        ),
                    ),
                };
                log.outcome = outcome.into();
                drop(log);
                return failure(
                    code,
                    is_post,
                    &rpc_id,
                    format!("the upstream MCP server at {} {what}", account.mcp_url),
                );
            }
        }
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
    let body = match answer {
        // Logged (as `log` drops) once the answer is handed over.
        Some(bytes) => Body::from(bytes),
        // The stream ends when the upstream ends it, cuts it, stalls (see
        // `relay`), or the grant is revoked.
        None => {
            let cancel = state.gateway.stream_token(&principal);
            let relay = Relay {
                upstream: resp.bytes_stream().boxed(),
                idle,
                answers: (is_post && !rpc_id.is_null()).then_some(rpc_id),
                url: account.mcp_url.clone(),
                tail: Vec::new(),
                log,
                done: false,
            };
            Body::from_stream(relay.run().take_until(cancel.cancelled_owned()))
        }
    };
    out.body(body)
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// Why an answer could not be read whole.
enum AnswerError {
    /// Larger than [`MAX_ANSWER_BODY`].
    TooLarge,
    /// The upstream cut the connection (e.g. before its `Content-Length`).
    Broken,
    /// Nothing arrived for the idle bound.
    Idle,
}

/// Reads a whole answer of at most [`MAX_ANSWER_BODY`] bytes, giving up
/// when nothing arrives for `idle`.
async fn read_answer(resp: &mut reqwest::Response, idle: Duration) -> Result<Bytes, AnswerError> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BODY as u64)
    {
        return Err(AnswerError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(idle, resp.chunk()).await {
            Err(_) => return Err(AnswerError::Idle),
            Ok(Err(_)) => return Err(AnswerError::Broken),
            Ok(Ok(None)) => return Ok(body.into()),
            Ok(Ok(Some(chunk))) => {
                if body.len() + chunk.len() > MAX_ANSWER_BODY {
                    return Err(AnswerError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
}

/// An upstream event stream being relayed to the host.
struct Relay {
    upstream: BoxStream<'static, reqwest::Result<Bytes>>,
    idle: Duration,
    /// The id of the POST this stream answers, if any.
    answers: Option<Value>,
    url: String,
    /// The last few bytes relayed: whether an event was left half-sent.
    tail: Vec<u8>,
    log: PendingLog,
    done: bool,
}

impl Relay {
    /// Relays chunk by chunk as they come, never re-parsing and never
    /// buffering (memory stays one chunk however long the stream, its
    /// events or its lines), malformed SSE included: the host's MCP client
    /// judges the bytes, as it would talking to the server directly.
    ///
    /// Why an idle bound: a stalled upstream (a hung process, a machine gone
    /// without closing the connection) would otherwise hold the host's call
    /// open forever. After `stream_idle_timeout` without a byte, or when the
    /// upstream cuts the stream, the companion hangs up on the upstream,
    /// logs `stream_idle` / `stream_broken`, and:
    /// - a POST's stream (a call waiting for its answer) gets a last event,
    ///   a JSON-RPC error for the request's id naming the cause, then ends,
    ///   so the host's call fails at once with a reason;
    /// - a GET stream ends (cleanly when idle: MCP clients reopen it, and a
    ///   dead upstream then answers 502/504 at once; cut when cut).
    ///
    /// In the middle of an event no event can be added, so the host's
    /// connection is cut instead of completing half an event with ours.
    fn run(self) -> impl Stream<Item = Result<Bytes, BoxError>> {
        futures_util::stream::unfold(self, |mut r| async move {
            if r.done {
                return None;
            }
            match tokio::time::timeout(r.idle, r.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    r.remember(&chunk);
                    Some((Ok(chunk), r))
                }
                Ok(None) => None,
                Ok(Some(Err(_))) => {
                    r.log.outcome = "stream_broken".into();
                    r.finish("closed the connection in the middle of its answer", true)
                }
                Err(_) => {
                    r.log.outcome = "stream_idle".into();
                    let why = format!(
                        "sent nothing for {} s; the call was ended",
                        r.idle.as_secs()
                    );
                    r.finish(&why, false)
                }
            }
        })
    }

    fn remember(&mut self, chunk: &[u8]) {
        self.tail
            .extend_from_slice(&chunk[chunk.len().saturating_sub(4)..]);
        let excess = self.tail.len().saturating_sub(4);
        self.tail.drain(..excess);
    }

    /// Whether what was relayed so far ends with a complete event.
    fn at_boundary(&self) -> bool {
        self.tail.is_empty()
            || [
                &b"\n\n"[..],
                b"\r\r",
                b"\r\n\r\n",
                b"\n\r\n",
                b"\r\n\n",
                b"\r\r\n",
            ]
            .iter()
            .any(|end| self.tail.ends_with(end))
    }

    /// The stream's last item after the upstream failed (`cut`: it broke
    /// rather than went quiet).
    fn finish(mut self, why: &str, cut: bool) -> Option<(Result<Bytes, BoxError>, Self)> {
        self.done = true;
        let message = format!("the upstream MCP server at {} {why}", self.url);
        let boundary = self.at_boundary();
        match self.answers.take() {
            Some(id) if boundary => {
                let error = serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32000, "message": message } });
                let event = Bytes::from(format!("event: message\ndata: {error}\n\n"));
                Some((Ok(event), self))
            }
            Some(_) => Some((Err(message.into()), self)),
            None if cut => Some((Err(message.into()), self)),
            None => None,
        }
    }
}
