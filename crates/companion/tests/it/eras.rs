//! `/mcp` for both MCP eras on one endpoint (2025-11-25 sessions and
//! 2026-07-28 stateless requests): headers forwarded by rule in both
//! directions, answers relayed while they stream, listen streams that no
//! idle bound cuts, the host's close cancelling the upstream request,
//! revocation ending a modern listen stream, and the era and header checks
//! in the call log.
//!
//! The upstream here is a scripted HTTP/1.1 server on raw TCP: it records
//! every request as it arrived and answers exactly what a test says, so
//! response headers, chunking and the moment it sees the companion hang up
//! are all under the test's control. Every wait is bounded; the quiet
//! periods run on tokio's paused clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use serde_json::{json, Value};
use spor_companion::control::{self, Command};
use spor_companion::store::{Era, HeaderCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;

use crate::support::{Connected, Harness, Reply, INIT, PAT};

/// Far longer than any step should take: only a hang reaches it.
const HANG: Duration = Duration::from_secs(30);
/// The revision these tests speak when modern.
const V: &str = "2026-07-28";

// ---------------------------------------------------------------- a scripted upstream

/// One request the upstream received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Every header as sent, names lowercased, in order.
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The JSON-RPC method of the body.
    fn rpc_method(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["method"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// What the upstream answers.
enum Answer {
    /// A status line's text, header lines, and a body sent with its length.
    Whole(&'static str, Vec<(String, String)>, String),
    /// A `200` with these headers and a chunked body: `first`, then what
    /// the test feeds, until the feed closes (the body ends) or the
    /// companion hangs up (counted).
    Streaming(Vec<(String, String)>, Vec<String>, Feed),
}

/// What a streaming answer sends after its first chunks.
type Feed = Option<mpsc::UnboundedReceiver<String>>;

type Script = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

struct Scripted {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    hangups: Arc<AtomicUsize>,
    hung_up: Arc<Notify>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Scripted {
    async fn start(script: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Self {
        let script: Script = Arc::new(script);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hangups = Arc::new(AtomicUsize::new(0));
        let hung_up = Arc::new(Notify::new());
        let (s, h, n) = (seen.clone(), hangups.clone(), hung_up.clone());
        let accept = tokio::spawn(async move {
            // Owned here, so aborting this task ends every connection.
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                let (script, s, h, n) = (script.clone(), s.clone(), h.clone(), n.clone());
                conns.spawn(async move {
                    let _ = serve(sock, script, s, h, n).await;
                });
            }
        });
        Self {
            url,
            seen,
            hangups,
            hung_up,
            accept,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    fn last(&self) -> Seen {
        self.seen().pop().expect("a request reached the upstream")
    }

    /// Waits (bounded) until the companion has hung up on `n` streams.
    async fn wait_hangups(&self, n: usize) {
        tokio::time::timeout(HANG, async {
            loop {
                let notified = self.hung_up.notified();
                if self.hangups.load(Ordering::SeqCst) >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("the companion closed the upstream request");
    }
}

/// Reads one request, answers it by the script, and closes the connection
/// (every answer says `connection: close`, so nothing is pooled).
async fn serve(
    mut sock: TcpStream,
    script: Script,
    seen: Arc<Mutex<Vec<Seen>>>,
    hangups: Arc<AtomicUsize>,
    hung_up: Arc<Notify>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let method = lines
        .next()
        .and_then(|l| l.split(' ').next())
        .unwrap_or_default()
        .to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = Seen {
        method,
        headers,
        body: String::from_utf8_lossy(&buf[head_end..]).into_owned(),
    };
    seen.lock().expect("seen").push(request.clone());
    let head_of = |status: &str, extra: &[(String, String)], framing: String| {
        let mut h = format!("HTTP/1.1 {status}\r\nconnection: close\r\n{framing}");
        for (n, v) in extra {
            h.push_str(&format!("{n}: {v}\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    };
    match script(&request) {
        Answer::Whole(status, extra, body) => {
            let framing = format!("content-length: {}\r\n", body.len());
            sock.write_all(&head_of(status, &extra, framing)).await?;
            sock.write_all(body.as_bytes()).await?;
        }
        Answer::Streaming(extra, first, mut feed) => {
            let framing = "transfer-encoding: chunked\r\n".to_string();
            sock.write_all(&head_of("200 OK", &extra, framing)).await?;
            for c in first {
                sock.write_all(&chunk_of(&c)).await?;
            }
            loop {
                tokio::select! {
                    more = async {
                        match feed.as_mut() {
                            Some(rx) => rx.recv().await,
                            None => std::future::pending().await,
                        }
                    } => match more {
                        Some(c) => sock.write_all(&chunk_of(&c)).await?,
                        None => {
                            sock.write_all(b"0\r\n\r\n").await?;
                            return Ok(());
                        }
                    },
                    n = sock.read(&mut chunk) => {
                        if n.unwrap_or(0) == 0 {
                            hangups.fetch_add(1, Ordering::SeqCst);
                            hung_up.notify_waiters();
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn chunk_of(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A JSON-RPC result answering `seen`'s request.
fn result_for(seen: &Seen, result: Value) -> String {
    let id = serde_json::from_str::<Value>(&seen.body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null);
    json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string()
}

/// The upstream most tests want: JSON answers with the given extra headers.
fn json_answers(extra: &'static [(&'static str, &'static str)]) -> impl Fn(&Seen) -> Answer {
    move |seen| {
        let mut h = headers(&[("content-type", "application/json")]);
        h.extend(headers(extra));
        Answer::Whole("200 OK", h, result_for(seen, json!({})))
    }
}

/// One SSE event carrying `message`.
fn event(message: &Value) -> String {
    format!("event: message\ndata: {message}\n\n")
}

/// The acknowledgment a 2026-07-28 listen stream opens with.
fn acknowledged(id: i64) -> Value {
    json!({ "jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
            "params": { "_meta": { "io.modelcontextprotocol/subscriptionId": id },
                        "notifications": { "toolsListChanged": true } } })
}

fn list_changed(id: i64) -> Value {
    json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed",
            "params": { "_meta": { "io.modelcontextprotocol/subscriptionId": id } } })
}

// ---------------------------------------------------------------- requests as hosts send them

/// A modern (2026-07-28) request body: `_meta` names the revision.
fn modern(id: i64, method: &str, mut params: Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": { "name": "it", "version": "0" },
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

/// The headers a 2026-07-28 client mirrors from `method` (and `name`).
/// A modern `subscriptions/listen` for tool-list changes, as request `id`.
fn listen_body(id: i64) -> String {
    modern(
        id,
        "subscriptions/listen",
        json!({ "notifications": { "toolsListChanged": true } }),
    )
}

/// Opens a listen stream (request `id`) with its mirrored headers.
async fn open_listen(h: &Harness, token: &str, id: i64) -> reqwest::Response {
    send(
        h,
        token,
        &listen_body(id),
        &mirrored("subscriptions/listen", None),
    )
    .await
}

fn mirrored(method: &str, name: Option<&str>) -> Vec<(String, String)> {
    let mut h = headers(&[("MCP-Protocol-Version", V), ("Mcp-Method", method)]);
    if let Some(n) = name {
        h.push(("Mcp-Name".into(), n.into()));
    }
    h
}

/// A POST to `/mcp` with `token`, `body` and extra headers; the response
/// unread. The client has no overall timeout: on the paused clock it would
/// fire during a quiet period.
async fn send(
    h: &Harness,
    token: &str,
    body: &str,
    extra: &[(String, String)],
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut req = client
        .post(h.url("/mcp"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (n, v) in extra {
        req = req.header(n.as_str(), v.as_str());
    }
    tokio::time::timeout(HANG, req.send())
        .await
        .expect("headers (no hang)")
        .expect("POST /mcp")
}

async fn post(h: &Harness, token: &str, body: &str, extra: &[(String, String)]) -> Reply {
    let resp = send(h, token, body, extra).await;
    tokio::time::timeout(HANG, Reply::read(resp))
        .await
        .expect("the whole answer (no hang)")
}

/// The host's side of a streaming answer.
struct Stream {
    inner: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>,
    >,
    text: String,
}

impl Stream {
    fn of(resp: reqwest::Response) -> Self {
        Self {
            inner: Box::pin(resp.bytes_stream()),
            text: String::new(),
        }
    }

    /// Reads (bounded) until the text received so far contains `what`.
    async fn until(&mut self, what: &str) {
        tokio::time::timeout(HANG, async {
            while !self.text.contains(what) {
                let chunk = self
                    .inner
                    .next()
                    .await
                    .unwrap_or_else(|| panic!("the stream ended before {what:?}: {}", self.text))
                    .expect("bytes");
                self.text.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what:?} never arrived: {}", self.text));
    }

    /// Reads (bounded) to the end: whether it ended cleanly.
    async fn end(&mut self) -> bool {
        tokio::time::timeout(HANG, async {
            while let Some(c) = self.inner.next().await {
                match c {
                    Ok(b) => self.text.push_str(&String::from_utf8_lossy(&b)),
                    Err(_) => return false,
                }
            }
            true
        })
        .await
        .expect("the stream ended (no hang)")
    }
}

/// A grant on an account whose MCP endpoint is `up`.
async fn grant_on(h: &Harness, up: &Scripted) -> Connected {
    let account = h.add_account_with_mcp(PAT, "acme", &up.url).await;
    h.connect_as(&account).await
}

/// A streaming upstream answer: SSE (or JSON lines) whose chunks after the
/// first come from the returned sender.
fn streaming_upstream(
    content_type: &'static str,
    first: impl Fn(&Seen) -> Vec<String> + Send + Sync + 'static,
) -> (
    impl Fn(&Seen) -> Answer + Send + Sync + 'static,
    mpsc::UnboundedSender<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Mutex::new(Some(rx));
    let script = move |seen: &Seen| {
        Answer::Streaming(
            headers(&[("content-type", content_type)]),
            first(seen),
            rx.lock().expect("feed").take(),
        )
    };
    (script, tx)
}

// ---------------------------------------------------------------- headers, request side

#[tokio::test]
async fn every_mcp_request_header_travels_upstream_as_sent() {
    let h = Harness::start().await;
    let c = h.connect().await;
    // A session the legacy handshake bound to this grant.
    let init = h.mcp_post(&c.tokens.access, None, INIT).await;
    let session = init.header("mcp-session-id").expect("session").to_string();
    let greeting = "=?base64?SGVsbG8sIOS4lueVjA==?=";
    let mut extra = mirrored("tools/call", Some("execute_sql"));
    extra.extend(headers(&[
        ("Mcp-Session-Id", &session),
        ("Mcp-Param-Region", "us-west1"),
        ("mcp-param-greeting", greeting),
        ("MCP-Some-Future-Header", "1"),
    ]));
    let body = modern(
        3,
        "tools/call",
        json!({ "name": "execute_sql", "arguments": { "region": "us-west1" } }),
    );
    let r = post(&h, &c.tokens.access, &body, &extra).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let seen = h.upstream.mcp_seen();
    let s = seen.last().expect("forwarded");
    for (name, value) in [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "execute_sql"),
        ("mcp-session-id", session.as_str()),
        ("mcp-param-region", "us-west1"),
        ("mcp-param-greeting", greeting),
        ("mcp-some-future-header", "1"),
    ] {
        assert_eq!(s.header(name), Some(value), "{name}: {:?}", s.headers);
    }
    assert_eq!(s.body, body, "the body is forwarded untouched");
    h.stop().await;
}

#[tokio::test]
async fn the_generic_request_headers_travel_upstream() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let extra = headers(&[("traceparent", trace), ("tracestate", "spor=1")]);
    let r = post(
        &h,
        &c.tokens.access,
        &modern(1, "tools/list", json!({})),
        &extra,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s = h.upstream.mcp_seen().pop().expect("forwarded");
    assert_eq!(s.header("content-type"), Some("application/json"));
    assert_eq!(
        s.header("accept"),
        Some("application/json, text/event-stream")
    );
    assert_eq!(s.header("traceparent"), Some(trace));
    assert_eq!(s.header("tracestate"), Some("spor=1"));
    // A legacy stream resumes where it stopped.
    let resp = tokio::time::timeout(
        HANG,
        h.http
            .get(h.url("/mcp"))
            .bearer_auth(&c.tokens.access)
            .header("accept", "text/event-stream")
            .header("last-event-id", "ev-41")
            .send(),
    )
    .await
    .expect("no hang")
    .expect("GET");
    assert_eq!(resp.status(), StatusCode::OK);
    drop(resp);
    let s = h.upstream.mcp_seen().pop().expect("forwarded");
    assert_eq!(
        (s.method.as_str(), s.header("last-event-id")),
        ("GET", Some("ev-41"))
    );
    h.stop().await;
}

#[tokio::test]
async fn credentials_and_cookies_never_travel_upstream() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let extra = headers(&[
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
        ("Cookie", "companion_session=1"),
        ("X-Api-Key", "host-secret"),
    ]);
    let r = post(
        &h,
        &c.tokens.access,
        &modern(1, "tools/list", json!({})),
        &extra,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s = h.upstream.mcp_seen().pop().expect("forwarded");
    let authorizations: Vec<_> = s
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .collect();
    assert_eq!(
        authorizations,
        [&("authorization".to_string(), format!("Bearer {PAT}"))],
        "the account's PAT, once, in place of the host's token"
    );
    for name in ["proxy-authorization", "cookie", "x-api-key"] {
        assert_eq!(s.header(name), None, "{name} crossed");
    }
    for (name, value) in &s.headers {
        assert!(
            !value.contains(&c.tokens.access) && !value.contains("host-secret"),
            "{name} carried a host secret"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn hop_by_hop_request_headers_never_travel_upstream_even_mcp_ones() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let extra = headers(&[
        ("Connection", "keep-alive, Mcp-Param-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("TE", "trailers"),
        ("Mcp-Param-Hop", "for-the-next-hop-only"),
        ("Mcp-Param-Kept", "end-to-end"),
    ]);
    let r = post(
        &h,
        &c.tokens.access,
        &modern(1, "tools/list", json!({})),
        &extra,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s = h.upstream.mcp_seen().pop().expect("forwarded");
    for name in ["keep-alive", "proxy-connection", "te", "mcp-param-hop"] {
        assert_eq!(s.header(name), None, "{name} crossed: {:?}", s.headers);
    }
    assert_ne!(s.header("connection"), Some("keep-alive, Mcp-Param-Hop"));
    assert_eq!(s.header("mcp-param-kept"), Some("end-to-end"));
    h.stop().await;
}

// ---------------------------------------------------------------- headers, response side

#[tokio::test]
async fn every_mcp_response_header_and_the_generic_ones_come_back() {
    let h = Harness::start().await;
    let up = Scripted::start(json_answers(&[
        ("MCP-Protocol-Version", V),
        ("Mcp-Future-Header", "kept"),
        ("Cache-Control", "no-store"),
        ("Retry-After", "3"),
    ]))
    .await;
    let c = grant_on(&h, &up).await;
    let r = post(
        &h,
        &c.tokens.access,
        &modern(1, "tools/list", json!({})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (name, value) in [
        ("content-type", "application/json"),
        ("mcp-protocol-version", V),
        ("mcp-future-header", "kept"),
        ("cache-control", "no-store"),
        ("retry-after", "3"),
    ] {
        assert_eq!(r.header(name), Some(value), "{name}");
    }
    h.stop().await;
}

#[tokio::test]
async fn credentials_cookies_and_hop_by_hop_response_headers_never_come_back() {
    let h = Harness::start().await;
    let up = Scripted::start(json_answers(&[
        ("Set-Cookie", "upstream=1"),
        ("WWW-Authenticate", "Bearer realm=\"upstream\""),
        ("Proxy-Authenticate", "Basic"),
        ("Keep-Alive", "timeout=999"),
        ("Connection", "Mcp-Hop"),
        ("Mcp-Hop", "for-the-companion-only"),
        ("Mcp-Session-Id", "s-1"),
    ]))
    .await;
    let c = grant_on(&h, &up).await;
    let r = post(&h, &c.tokens.access, INIT, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for name in [
        "set-cookie",
        "www-authenticate",
        "proxy-authenticate",
        "keep-alive",
        "mcp-hop",
    ] {
        assert_eq!(r.header(name), None, "{name} crossed to the host");
    }
    assert_eq!(r.header("mcp-session-id"), Some("s-1"));
    h.stop().await;
}

// ---------------------------------------------------------------- both eras, one endpoint

#[tokio::test]
async fn modern_requests_bind_no_session_and_legacy_sessions_stay_bound_to_their_grant() {
    let h = Harness::start().await;
    // Legacy answers carry a session; modern ones none, as a dual-era
    // server answers them.
    let up = Scripted::start(|seen: &Seen| {
        let mut extra = headers(&[("content-type", "application/json")]);
        match seen.method.as_str() {
            "GET" | "DELETE" if !seen.has("mcp-session-id") => {
                return Answer::Whole(
                    "405 Method Not Allowed",
                    headers(&[("allow", "POST")]),
                    String::new(),
                )
            }
            _ => {}
        }
        if seen.rpc_method() == "initialize" {
            extra.push(("mcp-session-id".into(), "legacy-1".into()));
        }
        if seen.rpc_method() == "unknown/method" {
            let error = json!({ "jsonrpc": "2.0", "id": 5, "error": { "code": -32601, "message": "Method not found" } });
            return Answer::Whole("404 Not Found", extra, error.to_string());
        }
        Answer::Whole(
            "200 OK",
            extra,
            result_for(seen, json!({ "supportedVersions": [V] })),
        )
    })
    .await;
    let a = grant_on(&h, &up).await;
    let b = h.connect_as(&a.account_id).await;
    let sessions = || async {
        h.state
            .store
            .call(|c| {
                Ok(c.query_row("SELECT count(*) FROM mcp_sessions", [], |r| {
                    r.get::<_, i64>(0)
                })?)
            })
            .await
            .expect("count")
    };

    let discover = post(
        &h,
        &a.tokens.access,
        &modern(1, "server/discover", json!({})),
        &mirrored("server/discover", None),
    )
    .await;
    assert_eq!(discover.status, StatusCode::OK, "{}", discover.text);
    assert_eq!(discover.json()["result"]["supportedVersions"], json!([V]));
    assert_eq!(discover.header("mcp-session-id"), None);
    assert!(!up.last().has("mcp-session-id"));
    assert_eq!(sessions().await, 0, "a modern request binds nothing");

    let init = post(&h, &a.tokens.access, INIT, &[]).await;
    assert_eq!(init.header("mcp-session-id"), Some("legacy-1"));
    assert_eq!(sessions().await, 1);

    // Modern GET and DELETE go to the upstream, which answers them.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = Reply::read(
            h.http
                .request(method.clone(), h.url("/mcp"))
                .bearer_auth(&a.tokens.access)
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}: {}",
            r.text
        );
        assert_eq!(up.last().method, method.as_str());
    }

    // The legacy session is still this grant's alone, modern request or not.
    let forwarded = up.seen().len();
    let mut stolen = mirrored("tools/list", None);
    stolen.push(("Mcp-Session-Id".into(), "legacy-1".into()));
    let r = post(
        &h,
        &b.tokens.access,
        &modern(9, "tools/list", json!({})),
        &stolen,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(
        (r.json()["id"].clone(), r.json()["error"]["code"].clone()),
        (json!(9), json!(-32001))
    );
    assert_eq!(up.seen().len(), forwarded, "nothing forwarded");
    let own = post(
        &h,
        &a.tokens.access,
        &modern(9, "tools/list", json!({})),
        &stolen,
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);

    // A modern 404 names an unknown method, not a session that ended: the
    // binding stays.
    let mut unknown = mirrored("unknown/method", None);
    unknown.push(("Mcp-Session-Id".into(), "legacy-1".into()));
    let r = post(
        &h,
        &a.tokens.access,
        &modern(5, "unknown/method", json!({})),
        &unknown,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!(-32601))
    );
    assert_eq!(sessions().await, 1);
    let call = r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#;
    let legacy = post(
        &h,
        &a.tokens.access,
        call,
        &headers(&[("Mcp-Session-Id", "legacy-1")]),
    )
    .await;
    assert_eq!(legacy.status, StatusCode::OK, "{}", legacy.text);
    h.stop().await;
}

// ---------------------------------------------------------------- streaming answers

#[tokio::test]
async fn a_listen_answered_with_streamed_json_is_relayed_as_it_arrives() {
    let h = Harness::start().await;
    let (script, feed) = streaming_upstream("application/json", |_| {
        vec![format!("{}\n", acknowledged(5))]
    });
    let up = Scripted::start(script).await;
    let c = grant_on(&h, &up).await;
    let resp = open_listen(&h, &c.tokens.access, 5).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let mut host = Stream::of(resp);
    host.until("notifications/subscriptions/acknowledged").await;
    feed.send(format!("{}\n", list_changed(5))).expect("feed");
    host.until("notifications/tools/list_changed").await;
    drop(feed);
    assert!(host.end().await, "ended cleanly with the upstream's end");
    let lines: Vec<Value> = host
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines, [acknowledged(5), list_changed(5)], "byte for byte");
    h.stop().await;
}

#[tokio::test]
async fn a_chunked_json_answer_that_goes_on_after_its_first_value_is_relayed_as_it_arrives() {
    let h = Harness::start().await;
    let (script, feed) = streaming_upstream("application/json", |seen| {
        vec![result_for(seen, json!({ "n": 1 }))]
    });
    let up = Scripted::start(script).await;
    let c = grant_on(&h, &up).await;
    let resp = send(
        &h,
        &c.tokens.access,
        &modern(4, "tools/call", json!({ "name": "x" })),
        &mirrored("tools/call", Some("x")),
    )
    .await;
    let mut host = Stream::of(resp);
    // Arrives while the upstream's body is still open.
    host.until("\"n\":1").await;
    feed.send("\n".into()).expect("feed");
    drop(feed);
    assert!(host.end().await);
    assert_eq!(
        serde_json::from_str::<Value>(&host.text).expect("JSON")["result"]["n"],
        1
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_quiet_listen_stream_outlives_the_idle_bound_that_ends_a_quiet_call() {
    let h = Harness::start().await;
    let idle = spor_companion::gateway::DEFAULT_STREAM_IDLE_TIMEOUT;
    let (script, feed) = streaming_upstream("text/event-stream", |seen| {
        let id = serde_json::from_str::<Value>(&seen.body).expect("body")["id"]
            .as_i64()
            .expect("id");
        if seen.rpc_method() == "subscriptions/listen" {
            vec![event(&acknowledged(id))]
        } else {
            vec![event(
                &json!({ "jsonrpc": "2.0", "method": "notifications/progress", "params": { "progress": 1 } }),
            )]
        }
    });
    let up = Scripted::start(script).await;
    let c = grant_on(&h, &up).await;

    let listen = open_listen(&h, &c.tokens.access, 1).await;
    let mut listen = Stream::of(listen);
    listen.until("acknowledged").await;
    // A call whose stream goes quiet the same way, for contrast.
    let call = send(
        &h,
        &c.tokens.access,
        &modern(2, "tools/call", json!({ "name": "slow" })),
        &mirrored("tools/call", Some("slow")),
    )
    .await;
    let mut call = Stream::of(call);
    call.until("notifications/progress").await;

    // Ten times the idle bound of silence, on the paused clock.
    tokio::time::sleep(idle * 10).await;

    // The call was given up on at the bound, with an error for its id...
    assert!(call.end().await);
    assert!(
        call.text
            .contains(&format!("sent nothing for {} s", idle.as_secs()))
            && call.text.contains("\"id\":2"),
        "{}",
        call.text
    );
    // ... while the listen stream is still open and delivers what comes.
    feed.send(event(&list_changed(1)))
        .expect("the listen stream's upstream is still connected");
    listen.until("notifications/tools/list_changed").await;
    assert_eq!(
        up.hangups.load(Ordering::SeqCst),
        1,
        "only the call's upstream request was closed"
    );
    h.stop().await;
}

#[tokio::test]
async fn closing_the_hosts_stream_cancels_the_upstream_request() {
    let h = Harness::start().await;
    let (script, _feed) =
        streaming_upstream("text/event-stream", |_| vec![event(&acknowledged(1))]);
    let up = Scripted::start(script).await;
    let c = grant_on(&h, &up).await;
    let resp = open_listen(&h, &c.tokens.access, 1).await;
    let mut host = Stream::of(resp);
    host.until("acknowledged").await;
    assert_eq!(up.hangups.load(Ordering::SeqCst), 0);

    drop(host);
    up.wait_hangups(1).await;

    // A call still running is cancelled the same way.
    let call = send(
        &h,
        &c.tokens.access,
        &modern(2, "tools/call", json!({ "name": "slow" })),
        &mirrored("tools/call", Some("slow")),
    )
    .await;
    let mut call = Stream::of(call);
    call.until("acknowledged").await;
    drop(call);
    up.wait_hangups(2).await;

    let calls = h.calls_when(&c.grant_id, 2).await;
    let logged: Vec<_> = calls.iter().map(|r| (r.method.as_str(), r.era)).collect();
    assert_eq!(
        logged,
        [
            ("tools/call", Some(Era::Modern)),
            ("subscriptions/listen", Some(Era::Modern))
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn revoking_a_grant_ends_its_modern_listen_stream_and_only_its_own() {
    let h = Harness::start().await;
    let (script, _feed) =
        streaming_upstream("text/event-stream", |_| vec![event(&acknowledged(1))]);
    let up = Scripted::start(script).await;
    let a = grant_on(&h, &up).await;
    let b = h.connect_as(&a.account_id).await;
    let mut stream_a = Stream::of(open_listen(&h, &a.tokens.access, 1).await);
    let mut stream_b = Stream::of(open_listen(&h, &b.tokens.access, 1).await);
    stream_a.until("acknowledged").await;
    stream_b.until("acknowledged").await;

    let reply = control::execute(
        &h.state,
        Command::GrantsRevoke {
            id: a.grant_id.clone(),
        },
    )
    .await;
    assert!(reply.ok, "{reply:?}");
    stream_a.end().await;
    up.wait_hangups(1).await;
    let still_open = tokio::time::timeout(Duration::from_millis(300), stream_b.inner.next()).await;
    assert!(
        still_open.is_err(),
        "the other grant's listen stream stays open"
    );
    assert_eq!(up.hangups.load(Ordering::SeqCst), 1);
    // And the revoked grant cannot open another.
    let again = post(
        &h,
        &a.tokens.access,
        &listen_body(1),
        &mirrored("subscriptions/listen", None),
    )
    .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text);
    h.stop().await;
}

// ---------------------------------------------------------------- the call log

#[tokio::test]
async fn the_call_log_records_the_era_and_flags_headers_that_disagree_with_the_body() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let call = |name: &str| modern(2, "tools/call", json!({ "name": name, "arguments": {} }));
    let cases: Vec<(String, Vec<(String, String)>)> = vec![
        (INIT.to_string(), vec![]),
        (call("put_node"), mirrored("tools/call", Some("put_node"))),
        // Says another tool than the body calls: forwarded as is.
        (call("put_node"), mirrored("tools/call", Some("get_node"))),
        // No Mcp-Method.
        (
            call("put_node"),
            headers(&[("MCP-Protocol-Version", V), ("Mcp-Name", "put_node")]),
        ),
    ];
    for (body, extra) in &cases {
        let r = post(&h, &c.tokens.access, body, extra).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(&h.upstream.mcp_seen().pop().expect("forwarded").body, body);
    }
    let forwarded = h.upstream.mcp_seen();
    assert_eq!(
        forwarded[2].header("mcp-name"),
        Some("get_node"),
        "the disagreeing header went as sent"
    );

    let calls = h.calls_when(&c.grant_id, 4).await;
    let got: Vec<_> = calls
        .iter()
        .rev()
        .map(|r| (r.method.as_str(), r.tool.as_deref(), r.era, r.header_check))
        .collect();
    assert_eq!(
        got,
        [
            ("initialize", None, Some(Era::Legacy), None),
            (
                "tools/call",
                Some("put_node"),
                Some(Era::Modern),
                Some(HeaderCheck::Consistent)
            ),
            (
                "tools/call",
                Some("put_node"),
                Some(Era::Modern),
                Some(HeaderCheck::Mismatch)
            ),
            (
                "tools/call",
                Some("put_node"),
                Some(Era::Modern),
                Some(HeaderCheck::Missing)
            ),
        ],
        "the tool comes from the body, whatever the header says"
    );
    let activity = control::execute(
        &h.state,
        Command::GrantsActivity {
            id: c.grant_id.clone(),
            limit: 1,
        },
    )
    .await;
    assert_eq!(
        (
            activity.data[0]["era"].clone(),
            activity.data[0]["header_check"].clone()
        ),
        (json!("modern"), json!("missing"))
    );
    h.stop().await;
}
