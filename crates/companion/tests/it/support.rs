//! The harness: the real companion server on `127.0.0.1:0` (bound before it
//! is spawned) with a temp database, an inspectable in-memory secret store
//! and a fake clock, plus a small fake Spor upstream, and helpers that drive
//! the OAuth flow over real HTTP with redirects disabled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::StreamExt;
use reqwest::header::HeaderMap as ReplyHeaders;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use spor_companion::clock::FakeClock;
use spor_companion::config::{Config, ConsentMode, Limits};
use spor_companion::gateway::Gateway;
use spor_companion::secrets::{MemoryStore, SecretStore};
use spor_companion::sensitive::Sensitive;
use spor_companion::server;
use spor_companion::state::AppState;
use spor_companion::store::{AccountKind, CallRecord, NewAccount, Store};
use spor_companion::tokens;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the fake clock starts.
/// How long the companion under test waits for upstream headers.
pub const UPSTREAM_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// An MCP `initialize` request.
pub const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"it","version":"0"}}}"#;
pub const START: i64 = 1_800_000_000;
/// A PAT the fake upstream knows (org `acme`).
pub const PAT: &str = "spor_pat_alice_0123456789abcdef0123456789";
/// Another PAT the fake upstream knows (org `beta`).
pub const PAT_BETA: &str = "spor_pat_alice_beta_fedcba9876543210fedcba";
/// The redirect URI most tests register.
pub const REDIRECT: &str = "http://127.0.0.1:43110/callback";
/// The client name most tests register.
pub const CLIENT_NAME: &str = "Test Assistant";
/// What the fake upstream answers to unknown tokens (Spor's envelope).
pub const UPSTREAM_REJECTION: &str = "invalid token";
/// What the fake upstream answers to expired tokens (as spor-sandbox does).
pub const UPSTREAM_EXPIRED: &str = "token expired";

const STOP_WITHIN: Duration = Duration::from_secs(10);

/// A spawned server and the means to stop it through its shutdown future.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn new(stop: oneshot::Sender<()>, task: JoinHandle<std::io::Result<()>>) -> Self {
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Resolves the shutdown future and waits (bounded) for a clean exit.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(STOP_WITHIN, t)
                .await
                .expect("server stops within 10 s of shutdown")
                .expect("server task did not panic")
                .expect("server exited cleanly");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test never reaches `stop`; still end the server.
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

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
    mcp_mode: Arc<Mutex<McpMode>>,
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
    async fn start() -> Self {
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

/// A PKCE pair.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The verifier (43 base64url characters).
    pub verifier: String,
    /// base64url(sha256(verifier)).
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn new() -> Self {
        let verifier = tokens::random_b64(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// Query or form parameters, in order, repeats allowed.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Replaces every `k` with one `k=v`.
    pub fn set(self, k: &str, v: &str) -> Self {
        let mut p = self.remove(k);
        p.0.push((k.into(), v.into()));
        p
    }

    /// Drops every `k`.
    pub fn remove(mut self, k: &str) -> Self {
        self.0.retain(|(n, _)| n != k);
        self
    }

    /// Appends `k=v` even if `k` is already there.
    pub fn add(mut self, k: &str, v: &str) -> Self {
        self.0.push((k.into(), v.into()));
        self
    }

    /// `application/x-www-form-urlencoded` serialization.
    pub fn encode(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// A response, read completely.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: ReplyHeaders,
    /// Body text.
    pub text: String,
}

impl Reply {
    /// Reads a reqwest response.
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("response body");
        Self {
            status,
            headers,
            text,
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    /// One header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    /// The `Location` header parsed against `base`.
    pub fn location(&self, base: &str) -> url::Url {
        let loc = self
            .header("location")
            .unwrap_or_else(|| panic!("no Location header ({}): {}", self.status, self.text));
        url::Url::parse(base)
            .expect("base")
            .join(loc)
            .expect("Location is a URL")
    }

    /// Asserts an OAuth JSON error: exact status and `error`, `no-store`.
    pub fn assert_oauth_error(&self, status: StatusCode, error: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "body: {}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["error"], error, "body: {}", self.text);
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "error_description missing: {}",
            self.text
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    /// Asserts a shown (never redirected) HTML error page.
    pub fn assert_shown_error(&self, status: StatusCode) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("location"),
            None,
            "an error page never redirects"
        );
        assert_eq!(
            self.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            self.text.contains("Can't connect this assistant"),
            "not the error page: {}",
            self.text
        );
    }

    /// Asserts the loopback guard's refusal.
    pub fn assert_forbidden_by_guard(&self) {
        assert_eq!(self.status, StatusCode::FORBIDDEN, "body: {}", self.text);
        assert_eq!(self.json()["error"], "forbidden", "body: {}", self.text);
    }

    /// Asserts that none of `secrets`, nor anything shaped like one of our
    /// tokens or a PAT, is in the body.
    pub fn assert_leaks_nothing(&self, secrets: &[&str]) {
        for s in secrets {
            assert!(!self.text.contains(s), "a secret leaked: {}", self.text);
        }
        // A prefix followed by token characters; the page's own
        // "spor_pat_…" placeholder is fine.
        for prefix in ["spor_pat_", "spor_oat_", "spor_ort_"] {
            for (at, _) in self.text.match_indices(prefix) {
                let tail = self.text[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .count();
                assert!(tail < 8, "something like a token leaked: {}", self.text);
            }
        }
    }
}

/// The query parameters of a URL, refusing repeats.
pub fn query_of(url: &url::Url) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url.query_pairs() {
        assert!(
            out.insert(k.to_string(), v.to_string()).is_none(),
            "parameter {k} repeated in {url}"
        );
    }
    out
}

/// Row counts of every table that holds state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub clients: i64,
    pub accounts: i64,
    pub codes: i64,
    pub grants: i64,
    pub access_tokens: i64,
    pub refresh_tokens: i64,
}

/// A token pair from the token endpoint.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    /// Reads a successful token response.
    pub fn from_reply(r: &Reply) -> Self {
        assert_eq!(r.status, StatusCode::OK, "token response: {}", r.text);
        let v = r.json();
        Self {
            access: v["access_token"].as_str().expect("access_token").into(),
            refresh: v["refresh_token"].as_str().expect("refresh_token").into(),
        }
    }
}

/// An assistant that went through the whole flow.
#[derive(Debug, Clone)]
pub struct Connected {
    pub client_id: String,
    pub account_id: String,
    pub grant_id: String,
    pub tokens: Tokens,
}

/// A running companion with its fake upstream.
pub struct Harness {
    /// The shared state the server runs on.
    pub state: AppState,
    /// The server's clock; advance it to expire things.
    pub clock: FakeClock,
    /// The server's port.
    pub port: u16,
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub base: String,
    /// A client with redirects disabled and timeouts.
    pub http: reqwest::Client,
    /// The fake Spor server.
    pub upstream: FakeUpstream,
    /// The secret store's contents.
    pub secrets: MemoryStore,
    /// The data dir (database, control socket).
    pub dir: TempDir,
    server: Running,
}

impl Harness {
    /// Starts the fake upstream and the companion.
    pub async fn start() -> Self {
        Self::start_with(Limits::default()).await
    }

    /// Like [`Self::start`] with other bounds.
    pub async fn start_with(limits: Limits) -> Self {
        Self::launch(limits, false, Gateway::new(UPSTREAM_HEADER_TIMEOUT)).await
    }

    /// Like [`Self::start`] with a gateway of other bounds.
    pub async fn start_with_gateway(gateway: Gateway) -> Self {
        Self::launch(Limits::default(), false, gateway).await
    }

    /// Like [`Self::start`] with the fake upstream configured as the
    /// default server (what `--server` or the app's config would set).
    pub async fn start_with_default_server() -> Self {
        Self::launch(
            Limits::default(),
            true,
            Gateway::new(UPSTREAM_HEADER_TIMEOUT),
        )
        .await
    }

    async fn launch(limits: Limits, default_server: bool, gateway: Gateway) -> Self {
        let upstream = FakeUpstream::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("companion.db")).expect("open store");
        let secrets = MemoryStore::default();
        let clock = FakeClock::new(START);
        let mut state = AppState::new(
            store,
            SecretStore::new(secrets.clone()),
            Arc::new(clock.clone()),
            Config {
                data_dir: dir.path().to_path_buf(),
                default_server: default_server.then(|| upstream.url.clone()),
                consent_mode: ConsentMode::Browser,
            },
        );
        // Short, so a stalled upstream is given up on quickly.
        state.gateway = gateway;
        state.limits = limits;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self {
            state,
            clock,
            port,
            base: format!("http://127.0.0.1:{port}"),
            http,
            upstream,
            secrets,
            dir,
            server: Running::new(stop, task),
        }
    }

    /// Shuts both servers down through their shutdown futures.
    pub async fn stop(self) {
        let Self {
            http,
            server,
            upstream,
            state,
            ..
        } = self;
        drop(http);
        server.stop().await;
        drop(state);
        upstream.running.stop().await;
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The fake clock's time.
    pub fn now(&self) -> i64 {
        self.state.now()
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Reply {
        Reply::read(self.http.get(self.url(path)).send().await.expect("GET")).await
    }

    /// POST a form to `path`.
    pub async fn post_form(&self, path: &str, params: &Params) -> Reply {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(params.encode())
            .send()
            .await
            .expect("POST");
        Reply::read(resp).await
    }

    /// POST a JSON text with a content type to `/oauth/register`.
    pub async fn register_raw(&self, content_type: &str, body: impl Into<reqwest::Body>) -> Reply {
        let resp = self
            .http
            .post(self.url("/oauth/register"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST register");
        Reply::read(resp).await
    }

    /// Registers a client; returns its id.
    pub async fn register(&self, redirect_uris: &[&str]) -> String {
        let r = self
            .register_raw(
                "application/json",
                json!({ "client_name": CLIENT_NAME, "redirect_uris": redirect_uris }).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "register: {}", r.text);
        r.json()["client_id"]
            .as_str()
            .expect("client_id")
            .to_string()
    }

    /// Stores an account for `pat` (org `org`) on the fake upstream, directly.
    pub async fn add_account(&self, pat: &str, org: &str) -> String {
        let mcp = format!("{}/mcp", self.upstream.url);
        self.add_account_with_mcp(pat, org, &mcp).await
    }

    /// Like [`Self::add_account`] with a given MCP URL.
    pub async fn add_account_with_mcp(&self, pat: &str, org: &str, mcp_url: &str) -> String {
        self.upstream.allow(pat, org);
        let id = format!("acct_{org}");
        let server = self.upstream.url.clone();
        self.store_account(&id, &server, mcp_url, org, pat).await;
        id
    }

    /// Stores an account row and its PAT directly, for any server (the fake
    /// upstream is not told about the PAT).
    pub async fn store_account(&self, id: &str, server: &str, mcp_url: &str, org: &str, pat: &str) {
        self.state
            .store
            .upsert_account(
                id.to_string(),
                NewAccount {
                    kind: AccountKind::Spor,
                    server: server.to_string(),
                    mcp_url: mcp_url.to_string(),
                    org: org.to_string(),
                    person: Some("p_alice".into()),
                    name: Some("Alice Example".into()),
                    email: Some("alice@example.com".into()),
                    bound: true,
                    is_admin: false,
                    pat_hash: tokens::hash(pat),
                },
                self.now(),
            )
            .await
            .expect("upsert account");
        self.state
            .secrets
            .set(id, &Sensitive::new(pat.to_string()))
            .expect("store PAT");
    }

    /// The authorization request parameters of a well-behaved client.
    pub fn authorize_params(&self, client_id: &str, redirect_uri: &str, pkce: &Pkce) -> Params {
        Params::default()
            .add("response_type", "code")
            .add("client_id", client_id)
            .add("redirect_uri", redirect_uri)
            .add("code_challenge", &pkce.challenge)
            .add("code_challenge_method", "S256")
            .add("state", "st-123")
            .add("scope", "mcp")
            .add("resource", &self.url("/mcp"))
    }

    /// GET `/oauth/authorize` with `params`.
    pub async fn authorize_raw(&self, params: &Params) -> Reply {
        self.get(&format!("/oauth/authorize?{}", params.encode()))
            .await
    }

    /// Sends a valid authorization request; returns the pending request id.
    pub async fn authorize(&self, params: &Params) -> String {
        let r = self.authorize_raw(params).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "authorize: {}", r.text);
        let loc = r.header("location").expect("Location").to_string();
        loc.strip_prefix("/oauth/consent/")
            .unwrap_or_else(|| panic!("not sent to consent: {loc}"))
            .to_string()
    }

    /// The consent page's CSRF token.
    pub async fn csrf(&self, request_id: &str) -> String {
        let page = self.get(&format!("/oauth/consent/{request_id}")).await;
        assert_eq!(page.status, StatusCode::OK, "consent page: {}", page.text);
        scrape_csrf(&page.text)
    }

    /// POSTs a consent decision the way our page does.
    pub async fn decide(
        &self,
        request_id: &str,
        csrf: &str,
        decision: &str,
        account_id: &str,
    ) -> Reply {
        let resp = self
            .http
            .post(self.url(&format!("/oauth/consent/{request_id}")))
            .header("origin", &self.base)
            .form(&[
                ("csrf", csrf),
                ("decision", decision),
                ("account_id", account_id),
            ])
            .send()
            .await
            .expect("POST consent");
        Reply::read(resp).await
    }

    /// Register-free part of the flow: authorize, approve; returns the code.
    pub async fn code_for(
        &self,
        client_id: &str,
        redirect_uri: &str,
        pkce: &Pkce,
        account_id: &str,
    ) -> String {
        let id = self
            .authorize(&self.authorize_params(client_id, redirect_uri, pkce))
            .await;
        let csrf = self.csrf(&id).await;
        let r = self.decide(&id, &csrf, "allow", account_id).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "approve: {}", r.text);
        let q = query_of(&r.location(&self.base));
        q.get("code").expect("code in redirect").clone()
    }

    /// The authorization-code token request of a well-behaved client.
    pub fn exchange_params(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Params {
        Params::default()
            .add("grant_type", "authorization_code")
            .add("code", code)
            .add("redirect_uri", redirect_uri)
            .add("code_verifier", verifier)
            .add("client_id", client_id)
    }

    /// POST `/oauth/token`.
    pub async fn token(&self, params: &Params) -> Reply {
        self.post_form("/oauth/token", params).await
    }

    /// A refresh request.
    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> Reply {
        self.token(
            &Params::default()
                .add("grant_type", "refresh_token")
                .add("refresh_token", refresh_token)
                .add("client_id", client_id),
        )
        .await
    }

    /// Registers, adds the `acme` account for [`PAT`], authorizes, approves
    /// and exchanges the code.
    pub async fn connect(&self) -> Connected {
        let account_id = self.add_account(PAT, "acme").await;
        self.connect_as(&account_id).await
    }

    /// Like [`Self::connect`] for an already stored account.
    pub async fn connect_as(&self, account_id: &str) -> Connected {
        let client_id = self.register(&[REDIRECT]).await;
        let pkce = Pkce::new();
        let code = self.code_for(&client_id, REDIRECT, &pkce, account_id).await;
        let r = self
            .token(&self.exchange_params(&client_id, &code, REDIRECT, &pkce.verifier))
            .await;
        let tokens = Tokens::from_reply(&r);
        let grant_id = self.grant_of(&tokens.access).await;
        Connected {
            client_id,
            account_id: account_id.to_string(),
            grant_id,
            tokens,
        }
    }

    /// Whether the client is (still) registered.
    pub async fn has_client(&self, id: &str) -> bool {
        self.state
            .store
            .client(id.to_string())
            .await
            .expect("client lookup")
            .is_some()
    }

    /// Disconnects a live grant as the app and the CLI do.
    pub async fn disconnect(&self, grant_id: &str) {
        let revoked = spor_companion::grants::disconnect(&self.state, grant_id)
            .await
            .expect("disconnect");
        assert!(revoked, "grant {grant_id} was not live");
    }

    /// The grant an access token belongs to.
    pub async fn grant_of(&self, access: &str) -> String {
        let hash = tokens::hash(access);
        self.state
            .store
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT grant_id FROM access_tokens WHERE token_hash = ?1",
                    [&hash],
                    |r| r.get::<_, String>(0),
                )?)
            })
            .await
            .expect("grant of access token")
    }

    /// A grant as the list shows it, revoked or not.
    pub async fn grant(&self, id: &str) -> spor_companion::store::GrantSummary {
        self.state
            .store
            .grants(true)
            .await
            .expect("grants")
            .into_iter()
            .find(|g| g.id == id)
            .unwrap_or_else(|| panic!("no grant {id}"))
    }

    /// The grant's call log once it holds at least `n` rows (it is written
    /// off the request path, after the response ends); bounded.
    pub async fn calls_when(&self, grant_id: &str, n: usize) -> Vec<CallRecord> {
        let mut calls = Vec::new();
        for _ in 0..250 {
            self.state.gateway.calls.flush().await;
            calls = self
                .state
                .store
                .calls(grant_id.to_string(), 10)
                .await
                .expect("calls");
            if calls.len() >= n {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the call log never reached {n} rows: {calls:?}");
    }

    /// How many rows each table has.
    pub async fn counts(&self) -> Counts {
        self.state
            .store
            .call(|c| {
                let n = |t: &str| -> rusqlite::Result<i64> {
                    c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                };
                Ok(Counts {
                    clients: n("clients")?,
                    accounts: n("accounts")?,
                    codes: n("auth_codes")?,
                    grants: n("grants")?,
                    access_tokens: n("access_tokens")?,
                    refresh_tokens: n("refresh_tokens")?,
                })
            })
            .await
            .expect("counts")
    }

    /// POST a JSON-RPC request to `/mcp` with the given `Authorization`.
    pub async fn mcp_with(&self, authorization: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(self.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        Reply::read(req.send().await.expect("POST /mcp")).await
    }

    /// POST `body` to `/mcp` with `Bearer <token>` and, if given, a session id.
    pub async fn mcp_post(&self, token: &str, session: Option<&str>, body: &str) -> Reply {
        let mut req = self
            .http
            .post(self.url("/mcp"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        Reply::read(req.send().await.expect("POST /mcp")).await
    }

    /// POST a JSON-RPC request to `/mcp` with `Bearer <token>`.
    pub async fn mcp(&self, token: &str) -> Reply {
        self.mcp_with(Some(&format!("Bearer {token}"))).await
    }

    /// The `WWW-Authenticate` challenge without an error.
    pub fn bare_challenge(&self) -> String {
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            self.base
        )
    }

    /// Asserts `/mcp` refuses `token` as an invalid token.
    pub async fn assert_token_refused(&self, token: &str) {
        let r = self.mcp(token).await;
        assert_invalid_token(self, &r);
    }

    /// Asserts `/mcp` accepts `token` (the fake upstream answers 200).
    pub async fn assert_token_works(&self, token: &str) {
        let r = self.mcp(token).await;
        assert_eq!(r.status, StatusCode::OK, "/mcp: {}", r.text);
        assert_eq!(r.json()["id"], 7);
    }
}

/// Asserts a `401` with `error="invalid_token"` and our resource metadata.
pub fn assert_invalid_token(h: &Harness, r: &Reply) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "body: {}", r.text);
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(
        challenge.starts_with(&format!("{}, error=\"invalid_token\"", h.bare_challenge())),
        "challenge: {challenge}"
    );
    assert_eq!(r.json()["error"], "invalid_token");
}

/// The hidden `csrf` input of a consent page.
pub fn scrape_csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf input in page: {html}"))
        + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html[start..end].to_string()
}

/// A loopback port nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("address").port()
}

/// A port other than `port` (for "same host, wrong port" cases).
pub fn other_port(port: u16) -> u16 {
    if port == u16::MAX {
        port - 1
    } else {
        port + 1
    }
}
