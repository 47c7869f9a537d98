//! `FakeUpstream`: a stand-in Spor server (REST identity, org choices, token
//! list and revoke, and `/mcp`) that knows fixed PATs, records every request
//! so tests can check what the companion sent, and can be switched to fail.
//! It is deliberately not the sandbox (`crates/sandbox`): the sandbox mints
//! its own random PATs, runs a stateful rmcp server that wants `initialize`
//! first, and records nothing a test could inspect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};
use spor_companion::tokens;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::running::Running;

/// A PAT the fake upstream knows (org `acme`).
pub const PAT: &str = "spor_pat_alice_0123456789abcdef0123456789";
/// Another PAT the fake upstream knows (org `beta`).
pub const PAT_BETA: &str = "spor_pat_alice_beta_fedcba9876543210fedcba";
/// What the fake upstream answers to unknown tokens (Spor's envelope).
pub const UPSTREAM_REJECTION: &str = "invalid token";
/// What the fake upstream answers to expired tokens (as spor-sandbox does).
pub const UPSTREAM_EXPIRED: &str = "token expired";

/// Who a PAT is, as the fake upstream's `/v1/me` says.
#[derive(Clone)]
struct Identity {
    org: String,
    /// Known but past its lifetime: refused with "token expired".
    expired: bool,
}

/// One request the fake upstream's `/mcp` received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Every header, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Seen {
    /// The value of one header, if sent once or more (first value).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct UpstreamState {
    pats: Arc<Mutex<HashMap<String, Identity>>>,
    mcp_seen: Arc<Mutex<Vec<Seen>>>,
    rest_calls: Arc<Mutex<Vec<String>>>,
    deleted: Arc<Mutex<Vec<String>>>,
    reject_mcp: Arc<AtomicBool>,
    tools: Arc<Mutex<Option<ToolServer>>>,
    mcp_mode: Arc<Mutex<McpMode>>,
    rest_delay: Arc<Mutex<Duration>>,
}

/// Tools the fake upstream's `/mcp` lists (and calls), when set.
#[derive(Clone, Debug)]
pub struct ToolServer {
    /// The `tools/list` entries.
    pub tools: Vec<Value>,
    /// Tools per page (the cursor is the next page's index).
    pub page_size: usize,
    /// Answer as an event stream (a progress notification, then the answer).
    pub sse: bool,
}

impl ToolServer {
    fn answer(&self, msg: &Value) -> Value {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        match msg.get("method").and_then(Value::as_str) {
            Some("tools/list") => {
                let page: usize = msg
                    .pointer("/params/cursor")
                    .and_then(Value::as_str)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let start = page * self.page_size;
                let tools: Vec<Value> = self
                    .tools
                    .iter()
                    .skip(start)
                    .take(self.page_size)
                    .cloned()
                    .collect();
                let mut result = json!({ "tools": tools });
                if start + self.page_size < self.tools.len() {
                    result["nextCursor"] = (page + 1).to_string().into();
                }
                json!({ "jsonrpc": "2.0", "id": id, "result": result })
            }
            Some("tools/call") => {
                let name = msg
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                json!({ "jsonrpc": "2.0", "id": id, "result": {
                    "content": [{ "type": "text", "text": format!("called {name}") }] } })
            }
            _ => json!({ "jsonrpc": "2.0", "id": id, "result": {} }),
        }
    }

    fn respond(&self, body: &str) -> Response {
        let msg: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let answer = self.answer(&msg);
        if self.sse {
            let progress = json!({ "jsonrpc": "2.0", "method": "notifications/progress",
                "params": { "progressToken": "p", "progress": 1 } });
            let text =
                format!("id: 1\nevent: message\ndata: {progress}\n\nid: 2\ndata: {answer}\n\n");
            return (
                [
                    ("content-type", "text/event-stream"),
                    ("mcp-session-id", "upstream-session-1"),
                ],
                text,
            )
                .into_response();
        }
        ([("mcp-session-id", "upstream-session-1")], Json(answer)).into_response()
    }
}

/// How the fake upstream's `/mcp` behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum McpMode {
    /// Answers JSON (POST) or an SSE stream that stays open (GET).
    #[default]
    Normal,
    /// Answers 500 with Spor's error envelope.
    Fail500,
    /// Answers 429 with `Retry-After: 7`.
    RateLimited,
    /// Never answers.
    Stall,
}

impl UpstreamState {
    fn identity(&self, headers: &HeaderMap) -> Option<(String, Identity)> {
        let pat = headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?
            .to_string();
        let id = self.pats.lock().expect("pats lock").get(&pat).cloned()?;
        if id.expired {
            return None;
        }
        Some((pat, id))
    }

    /// The 401 for a request [`Self::identity`] refused: "token expired"
    /// for a known expired PAT, the plain rejection otherwise.
    fn refuse(&self, headers: &HeaderMap) -> Response {
        let pat = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let expired = pat.is_some_and(|p| {
            self.pats
                .lock()
                .expect("pats lock")
                .get(p)
                .is_some_and(|id| id.expired)
        });
        if expired {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": { "code": "unauthorized", "message": UPSTREAM_EXPIRED } })),
            )
                .into_response()
        } else {
            unauthorized()
        }
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": { "code": "unauthorized", "message": UPSTREAM_REJECTION } })),
    )
        .into_response()
}

/// The hash prefix the fake upstream lists a PAT under.
pub fn hash_prefix(pat: &str) -> String {
    tokens::hash(pat)[..12].to_string()
}

async fn up_me(State(s): State<UpstreamState>, headers: HeaderMap) -> Response {
    s.rest_calls
        .lock()
        .expect("calls lock")
        .push("GET /v1/me".into());
    // A graph waking up answers late, not never.
    let delay = *s.rest_delay.lock().expect("delay lock");
    tokio::time::sleep(delay).await;
    match s.identity(&headers) {
        Some((_, id)) => Json(json!({
            "person": "p_alice",
            "name": "Alice Example",
            "email": "alice@example.com",
            "bound": true,
            "is_admin": false,
            "org": id.org,
        }))
        .into_response(),
        None => s.refuse(&headers),
    }
}

async fn up_org_choices(State(s): State<UpstreamState>, headers: HeaderMap) -> Response {
    s.rest_calls
        .lock()
        .expect("calls lock")
        .push("GET /v1/me/org-choices".into());
    match s.identity(&headers) {
        Some((_, id)) => Json(json!({
            "org_choices": [{ "slug": id.org, "label": "Acme Inc.", "default": true }],
            "source": "bound",
        }))
        .into_response(),
        None => s.refuse(&headers),
    }
}

async fn up_tokens(State(s): State<UpstreamState>, headers: HeaderMap) -> Response {
    s.rest_calls
        .lock()
        .expect("calls lock")
        .push("GET /v1/me/tokens".into());
    match s.identity(&headers) {
        Some((pat, _)) => Json(json!({
            "tokens": [
                { "hash_prefix": "0000deadbeef", "label": "another", "created": "2026-01-01T00:00:00Z",
                  "expires": null, "expired": false, "last_used": null },
                { "hash_prefix": hash_prefix(&pat), "label": "companion", "created": "2026-01-01T00:00:00Z",
                  "expires": null, "expired": false, "last_used": null },
            ],
            "count": 2,
        }))
        .into_response(),
        None => s.refuse(&headers),
    }
}

async fn up_delete_token(
    State(s): State<UpstreamState>,
    Path(prefix): Path<String>,
    headers: HeaderMap,
) -> Response {
    s.rest_calls
        .lock()
        .expect("calls lock")
        .push(format!("DELETE /v1/me/tokens/{prefix}"));
    match s.identity(&headers) {
        Some(_) => {
            s.deleted.lock().expect("deleted lock").push(prefix.clone());
            Json(json!({ "revoked": true, "hash_prefix": prefix, "oauth_grants_revoked": 0 }))
                .into_response()
        }
        None => s.refuse(&headers),
    }
}

async fn up_mcp(
    State(s): State<UpstreamState>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    s.mcp_seen.lock().expect("seen lock").push(Seen {
        method: method.to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
    });
    if s.reject_mcp.load(Ordering::SeqCst) {
        return unauthorized();
    }
    if s.identity(&headers).is_none() {
        return s.refuse(&headers);
    }
    let mode = *s.mcp_mode.lock().expect("mode lock");
    match mode {
        McpMode::Normal => {}
        McpMode::Fail500 => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": { "code": "internal", "message": "boom" } })),
            )
                .into_response()
        }
        McpMode::RateLimited => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "7")],
                Json(json!({ "error": { "code": "rate_limited", "message": "slow down" } })),
            )
                .into_response()
        }
        McpMode::Stall => return std::future::pending::<Response>().await,
    }
    if method == Method::GET {
        // A standalone SSE stream: one event, then open until the client goes.
        let events = futures_util::stream::once(async {
            Ok::<_, std::convert::Infallible>("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/hello\"}\n\n")
        })
        .chain(futures_util::stream::pending());
        return (
            [("content-type", "text/event-stream")],
            axum::body::Body::from_stream(events),
        )
            .into_response();
    }
    if let Some(server) = s.tools.lock().expect("tools lock").clone() {
        return server.respond(&body);
    }
    let id = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null);
    (
        [("mcp-session-id", "upstream-session-1")],
        Json(json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [] } })),
    )
        .into_response()
}

/// A stand-in for a Spor server: `/v1/me`, org choices, token list and
/// revoke, and an `/mcp` that records what it received.
pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    state: UpstreamState,
    running: Running,
}

impl FakeUpstream {
    /// Starts one more stand-in (a harness starts its own).
    pub async fn start() -> Self {
        let state = UpstreamState::default();
        let app = Router::new()
            .route("/v1/me", get(up_me))
            .route("/v1/me/org-choices", get(up_org_choices))
            .route("/v1/me/tokens", get(up_tokens))
            .route("/v1/me/tokens/{prefix}", delete(up_delete_token))
            .route("/mcp", any(up_mcp))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("upstream address")
        );
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Self {
            url,
            state,
            running: Running::new(stop, task),
        }
    }

    /// Stops the server through its shutdown future (bounded).
    pub async fn stop(self) {
        self.running.stop().await;
    }

    /// Makes `/v1/me` answer only after `delay` (a waking graph).
    pub fn set_rest_delay(&self, delay: Duration) {
        *self.state.rest_delay.lock().expect("delay lock") = delay;
    }

    /// Changes how `/mcp` behaves.
    pub fn set_mcp_mode(&self, mode: McpMode) {
        *self.state.mcp_mode.lock().expect("mode lock") = mode;
    }

    /// Makes the upstream accept `pat` as a token of `org`.
    pub fn allow(&self, pat: &str, org: &str) {
        self.state.pats.lock().expect("pats lock").insert(
            pat.to_string(),
            Identity {
                org: org.to_string(),
                expired: false,
            },
        );
    }

    /// Makes every endpoint refuse `pat` as expired (401 "token expired").
    pub fn expire(&self, pat: &str) {
        if let Some(id) = self.state.pats.lock().expect("pats lock").get_mut(pat) {
            id.expired = true;
        }
    }

    /// Makes every endpoint refuse `pat` as unknown (a plain 401).
    pub fn revoke(&self, pat: &str) {
        self.state.pats.lock().expect("pats lock").remove(pat);
    }

    /// Makes `/mcp` list and call `server`'s tools.
    pub fn serve_tools(&self, server: ToolServer) {
        *self.state.tools.lock().expect("tools lock") = Some(server);
    }

    /// Makes `/mcp` answer 401 to everything.
    pub fn reject_mcp(&self) {
        self.state.reject_mcp.store(true, Ordering::SeqCst);
    }

    /// Every request `/mcp` received.
    pub fn mcp_seen(&self) -> Vec<Seen> {
        self.state.mcp_seen.lock().expect("seen lock").clone()
    }

    /// Every REST call received, as `METHOD /path`.
    pub fn rest_calls(&self) -> Vec<String> {
        self.state.rest_calls.lock().expect("calls lock").clone()
    }

    /// Hash prefixes deleted through `DELETE /v1/me/tokens/{p}`.
    pub fn deleted(&self) -> Vec<String> {
        self.state.deleted.lock().expect("deleted lock").clone()
    }
}
