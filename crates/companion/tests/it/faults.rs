//! Fault injection and hostile upstreams: whatever the upstream does (refuse,
//! stall, cut a body, send malformed or oversized answers, set cookies), the
//! host gets a prompt, specific answer, nothing leaks, nothing is stored, and
//! the companion keeps serving everyone else. The keychain side (a failing
//! secret store) is at the end; the real-keychain cases are in
//! tests/keychain/run.sh.
//!
//! Already covered elsewhere and extended there with "keeps serving":
//! refused connections (mcp.rs `an_unreachable_upstream_is_a_502_…`), stall
//! before headers, 5xx and 429 (gateway.rs).
//!
//! Every wait is bounded by [`HANG`], a hang detector, never a timing
//! assertion.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use serde_json::{json, Value};
use spor_companion::accounts::{self, AccountError};
use spor_companion::gateway::Gateway;
use spor_companion::secrets::{MemoryStore, SecretBackend, SecretError, SecretStore};
use spor_companion::sensitive::Sensitive;
use spor_companion::upstream::{Upstream, MAX_REST_BODY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::support::{
    assert_invalid_token, Connected, Harness, Reply, PAT, PAT_BETA, UPSTREAM_HEADER_TIMEOUT,
};

/// Far longer than any answer should take: only a hang reaches it.
const HANG: Duration = Duration::from_secs(30);
/// The companion's idle bound on upstream bodies in these tests.
const IDLE: Duration = Duration::from_secs(1);
/// A tools/call whose id the errors must carry.
const CALL: &str = r#"{"jsonrpc":"2.0","id":"f-1","method":"tools/call","params":{"name":"query_graph","arguments":{}}}"#;
/// The companion's bound on a non-streamed answer (forward.rs).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

// ---------------------------------------------------------------- a hostile upstream

/// One step of a hand-made HTTP/1.1 answer.
#[derive(Clone)]
enum Step {
    /// Writes these bytes.
    Send(Vec<u8>),
    /// Writes this chunk (HTTP chunked framing) again and again.
    Endless(Vec<u8>),
    /// Waits until the test releases it.
    Wait(Arc<Notify>),
    /// Keeps the socket open until the companion hangs up (counted).
    HoldUntilHangup,
    /// Closes the socket.
    Close,
}

type Script = Arc<dyn Fn(&str) -> Vec<Step> + Send + Sync>;

/// A TCP server on `127.0.0.1:0` that answers every request by a script:
/// raw bytes, stalls, cuts. Dropping it ends every connection.
struct Hostile {
    url: String,
    /// Every request received (head and body).
    requests: Arc<Mutex<Vec<String>>>,
    arrived: Arc<Notify>,
    /// How often the companion hung up while the script held the socket.
    hangups: Arc<AtomicUsize>,
    hung_up: Arc<Notify>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Hostile {
    async fn start(script: impl Fn(&str) -> Vec<Step> + Send + Sync + 'static) -> Self {
        let script: Script = Arc::new(script);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let hangups = Arc::new(AtomicUsize::new(0));
        let hung_up = Arc::new(Notify::new());
        let (r, a, h, n) = (
            requests.clone(),
            arrived.clone(),
            hangups.clone(),
            hung_up.clone(),
        );
        let accept = tokio::spawn(async move {
            // Owned here, so aborting this task ends every connection.
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                let (script, r, a, h, n) =
                    (script.clone(), r.clone(), a.clone(), h.clone(), n.clone());
                conns.spawn(async move {
                    let _ = serve_one(sock, script, r, a, h, n).await;
                });
            }
        });
        Self {
            url,
            requests,
            arrived,
            hangups,
            hung_up,
            accept,
        }
    }

    fn mcp_url(&self) -> String {
        format!("{}/mcp", self.url)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests").clone()
    }

    /// Waits (bounded) until `n` requests have arrived.
    async fn wait_requests(&self, n: usize) {
        tokio::time::timeout(HANG, async {
            loop {
                let notified = self.arrived.notified();
                if self.requests().len() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("the request reached the upstream");
    }

    /// Waits (bounded) until the companion has hung up `n` times.
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
        .expect("the companion let go of the upstream connection");
    }
}

/// Reads one request (head and `Content-Length` body), then plays the script.
async fn serve_one(
    mut sock: TcpStream,
    script: Script,
    requests: Arc<Mutex<Vec<String>>>,
    arrived: Arc<Notify>,
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
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf).into_owned();
    requests.lock().expect("requests").push(request.clone());
    arrived.notify_waiters();
    for step in script(&request) {
        match step {
            Step::Send(bytes) => sock.write_all(&bytes).await?,
            Step::Endless(data) => {
                let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
                framed.extend_from_slice(&data);
                framed.extend_from_slice(b"\r\n");
                // Until the companion hangs up (counted).
                while sock.write_all(&framed).await.is_ok() {}
                hangups.fetch_add(1, Ordering::SeqCst);
                hung_up.notify_waiters();
                return Ok(());
            }
            Step::Wait(n) => n.notified().await,
            Step::HoldUntilHangup => {
                while sock.read(&mut chunk).await.unwrap_or(0) > 0 {}
                hangups.fetch_add(1, Ordering::SeqCst);
                hung_up.notify_waiters();
                return Ok(());
            }
            Step::Close => return Ok(()),
        }
    }
    Ok(())
}

/// A response head; `extra` lines end with `\r\n`.
fn head(status: &str, content_type: &str, extra: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{extra}\r\n").into_bytes()
}

/// A `200` head promising a chunked body of `content_type`.
fn chunked_ok(content_type: &str) -> Step {
    Step::Send(head(
        "200 OK",
        content_type,
        "transfer-encoding: chunked\r\n",
    ))
}

/// One HTTP chunk.
fn chunk(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

/// The id of a JSON-RPC request inside a raw HTTP request.
fn request_id(request: &str) -> Value {
    request
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------- helpers

/// A harness whose gateway gives up on silent upstream bodies after [`IDLE`].
async fn harness() -> Harness {
    Harness::start_with_gateway(
        Gateway::new(UPSTREAM_HEADER_TIMEOUT).with_stream_idle_timeout(IDLE),
    )
    .await
}

/// A grant on an account whose MCP server is `mcp_url`, plus a grant on a
/// second, healthy account (the fake upstream): the "others" that must keep
/// being served.
async fn victim_and_bystander(h: &Harness, mcp_url: &str) -> (Connected, Connected) {
    let hostile = h.add_account_with_mcp(PAT, "acme", mcp_url).await;
    let victim = h.connect_as(&hostile).await;
    let healthy = h.add_account(PAT_BETA, "beta").await;
    let bystander = h.connect_as(&healthy).await;
    (victim, bystander)
}

/// POST `body` to `/mcp`, read whole, bounded.
async fn post(h: &Harness, token: &str, body: &str) -> Reply {
    tokio::time::timeout(HANG, h.mcp_post(token, None, body))
        .await
        .expect("the host got an answer (no hang)")
}

/// Asserts the bystander's call is answered normally.
async fn assert_served(h: &Harness, c: &Connected) {
    let r = post(h, &c.tokens.access, CALL).await;
    assert_eq!(r.status, StatusCode::OK, "bystander: {}", r.text);
    assert_eq!(r.json()["id"], "f-1");
    assert_eq!(r.json()["result"], json!({ "tools": [] }));
}

/// Asserts a JSON-RPC error answer: status, the request's id, code -32000,
/// a message containing `says`, and no token in it.
fn assert_rpc_error(r: &Reply, status: StatusCode, says: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["jsonrpc"], "2.0", "{}", r.text);
    assert_eq!(body["id"], "f-1", "{}", r.text);
    assert_eq!(body["error"]["code"], -32000, "{}", r.text);
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains(says), "{message}");
    r.assert_leaks_nothing(&[PAT, PAT_BETA]);
}

/// Asserts the grant's latest log entry.
async fn assert_logged(h: &Harness, c: &Connected, outcome: &str, status: Option<u16>) {
    let calls = h.calls_when(&c.grant_id, 1).await;
    assert_eq!(calls[0].outcome, outcome, "{calls:?}");
    assert_eq!(calls[0].status, status, "{calls:?}");
    assert_eq!(calls[0].method, "tools/call");
    assert_eq!(calls[0].tool.as_deref(), Some("query_graph"));
}

/// Opens a POST whose answer is an event stream; returns status, content
/// type and the stream.
async fn post_streaming(
    h: &Harness,
    token: &str,
) -> (
    StatusCode,
    Option<String>,
    impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>>,
) {
    let resp = tokio::time::timeout(
        HANG,
        h.http
            .post(h.url("/mcp"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(CALL)
            .send(),
    )
    .await
    .expect("headers (no hang)")
    .expect("POST /mcp");
    let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ASCII").to_string());
    (status, ct, resp.bytes_stream())
}

/// Reads a stream to its end (bounded): the bytes, and whether it ended
/// cleanly (`Ok`) or was cut (`Err` after the bytes).
async fn drain(
    mut s: impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin,
) -> (String, bool) {
    tokio::time::timeout(HANG, async {
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            match c {
                Ok(b) => out.extend_from_slice(&b),
                Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
            }
        }
        (String::from_utf8_lossy(&out).into_owned(), true)
    })
    .await
    .expect("the stream ended (no hang)")
}

/// The `data:` lines of an SSE text, parsed.
fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).expect("event data is JSON"))
        .collect()
}

const PROGRESS: &str = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n";

// ---------------------------------------------------------------- Task A: faults

#[tokio::test]
async fn an_upstream_that_accepts_then_hangs_up_is_a_502_naming_it_and_others_are_served() {
    let h = harness().await;
    let up = Hostile::start(|_| vec![Step::Close]).await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let r = post(&h, &victim.tokens.access, CALL).await;
    assert_rpc_error(
        &r,
        StatusCode::BAD_GATEWAY,
        &format!(
            "the upstream MCP server at {} closed the connection or sent an invalid HTTP answer",
            up.mcp_url()
        ),
    );
    r.assert_leaks_nothing(&[&victim.tokens.access]);
    assert_logged(&h, &victim, "bad_response", None).await;
    assert!(
        h.grant(&victim.grant_id).await.revoked_at.is_none(),
        "an outage revokes nothing"
    );
    assert_served(&h, &bystander).await;
    h.stop().await;
}

#[tokio::test]
async fn a_stalled_upstream_does_not_hold_up_other_callers_and_ends_in_a_504() {
    let h = harness().await;
    let released = Arc::new(Notify::new());
    let gate = released.clone();
    let up = Hostile::start(move |_| vec![Step::Wait(gate.clone())]).await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let stalled = {
        let (http, url, token) = (h.http.clone(), h.url("/mcp"), victim.tokens.access.clone());
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(CALL)
                .send()
                .await
                .expect("POST /mcp");
            Reply::read(resp).await
        })
    };
    // The stalled call is in the upstream's hands...
    up.wait_requests(1).await;
    // ...while another assistant, and the same one on another call, are served.
    assert_served(&h, &bystander).await;
    assert_served(&h, &bystander).await;
    let r = tokio::time::timeout(HANG, stalled)
        .await
        .expect("the stalled call was answered (no hang)")
        .expect("task");
    assert_rpc_error(&r, StatusCode::GATEWAY_TIMEOUT, "did not answer in time");
    assert_logged(&h, &victim, "timeout", None).await;
    released.notify_waiters();
    h.stop().await;
}

#[tokio::test]
async fn a_401_for_one_account_makes_only_its_hosts_reauthorize_and_others_are_served() {
    let h = harness().await;
    let a = h.connect().await;
    let other = h.add_account(PAT_BETA, "beta").await;
    let b = h.connect_as(&other).await;
    // The server revoked PAT (only): every call with it is refused.
    h.upstream.revoke(PAT);
    let r = post(&h, &a.tokens.access, CALL).await;
    assert_invalid_token(&h, &r);
    assert!(
        r.header("www-authenticate")
            .unwrap_or_default()
            .contains("the server rejected the stored Spor token"),
        "{:?}",
        r.header("www-authenticate")
    );
    r.assert_leaks_nothing(&[PAT, &a.tokens.access]);
    assert_logged(&h, &a, "rejected", Some(401)).await;
    assert_served(&h, &b).await;
    h.stop().await;
}

#[tokio::test]
async fn a_json_answer_cut_before_its_content_length_is_a_502_and_the_upstream_recovers() {
    let h = harness().await;
    let cut = Arc::new(AtomicUsize::new(1));
    let c2 = cut.clone();
    let up = Hostile::start(move |req| {
        let id = request_id(req);
        let full = json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [] } }).to_string();
        let mut steps = vec![Step::Send(head(
            "200 OK",
            "application/json",
            &format!("content-length: {}\r\n", full.len() + 100),
        ))];
        if c2.load(Ordering::SeqCst) > 0 {
            // A prefix of the promised body, then the socket closes.
            steps.push(Step::Send(full.as_bytes()[..10].to_vec()));
            steps.push(Step::Close);
        } else {
            steps[0] = Step::Send(head(
                "200 OK",
                "application/json",
                &format!("content-length: {}\r\n", full.len()),
            ));
            steps.push(Step::Send(full.into_bytes()));
        }
        steps
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let r = post(&h, &victim.tokens.access, CALL).await;
    assert_rpc_error(
        &r,
        StatusCode::BAD_GATEWAY,
        "closed the connection before finishing its answer",
    );
    assert!(!r.text.contains("\"result\""), "no half answer: {}", r.text);
    assert_logged(&h, &victim, "stream_broken", Some(200)).await;
    assert_served(&h, &bystander).await;
    // The fault clears: the same assistant is served again.
    cut.store(0, Ordering::SeqCst);
    let again = post(&h, &victim.tokens.access, CALL).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["id"], "f-1");
    h.stop().await;
}

#[tokio::test]
async fn a_json_answer_that_stalls_mid_body_is_a_504_after_the_idle_bound() {
    let h = harness().await;
    let up = Hostile::start(|_| {
        vec![
            Step::Send(head(
                "200 OK",
                "application/json",
                "content-length: 200\r\n",
            )),
            Step::Send(b"{\"jsonrpc\":\"2.0\",".to_vec()),
            Step::HoldUntilHangup,
        ]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let r = post(&h, &victim.tokens.access, CALL).await;
    assert_rpc_error(
        &r,
        StatusCode::GATEWAY_TIMEOUT,
        &format!(
            "the upstream MCP server at {} stopped sending its answer (nothing for 1 s)",
            up.mcp_url()
        ),
    );
    up.wait_hangups(1).await;
    assert_logged(&h, &victim, "stream_idle", Some(200)).await;
    assert_served(&h, &bystander).await;
    h.stop().await;
}

#[tokio::test]
async fn an_event_stream_that_stalls_after_an_event_ends_with_a_json_rpc_error_for_the_call() {
    let h = harness().await;
    let up = Hostile::start(|_| {
        vec![
            chunked_ok("text/event-stream"),
            Step::Send(chunk(PROGRESS)),
            Step::HoldUntilHangup,
        ]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let (status, ct, stream) = post_streaming(&h, &victim.tokens.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("text/event-stream"));
    // Meanwhile, another assistant is served.
    assert_served(&h, &bystander).await;
    let (text, clean) = drain(Box::pin(stream)).await;
    assert!(clean, "ended, not cut: {text}");
    assert!(
        text.starts_with(PROGRESS),
        "the event came through untouched: {text}"
    );
    let evs = events(&text);
    assert_eq!(evs.len(), 2, "{text}");
    assert_eq!(evs[1]["id"], "f-1");
    assert_eq!(evs[1]["error"]["code"], -32000);
    assert_eq!(
        evs[1]["error"]["message"],
        format!(
            "the upstream MCP server at {} sent nothing for 1 s; the call was ended",
            up.mcp_url()
        )
    );
    up.wait_hangups(1).await;
    assert_logged(&h, &victim, "stream_idle", Some(200)).await;
    h.stop().await;
}

#[tokio::test]
async fn an_event_stream_that_stalls_mid_event_is_cut_never_completed_with_ours() {
    let h = harness().await;
    let up = Hostile::start(|_| {
        vec![
            chunked_ok("text/event-stream"),
            Step::Send(chunk(PROGRESS)),
            Step::Send(chunk(
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"f-1\",",
            )),
            Step::HoldUntilHangup,
        ]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let (status, _, stream) = post_streaming(&h, &victim.tokens.access).await;
    assert_eq!(status, StatusCode::OK);
    let (text, clean) = drain(Box::pin(stream)).await;
    assert!(!clean, "the host's connection is cut: {text}");
    assert!(
        !text.contains("-32000"),
        "no event appended to a half event: {text}"
    );
    up.wait_hangups(1).await;
    assert_logged(&h, &victim, "stream_idle", Some(200)).await;
    assert_served(&h, &bystander).await;
    h.stop().await;
}

#[tokio::test]
async fn a_get_stream_that_goes_silent_is_ended_and_the_upstream_connection_closed() {
    let h = harness().await;
    let up = Hostile::start(|_| {
        vec![
            chunked_ok("text/event-stream"),
            Step::Send(chunk(PROGRESS)),
            Step::HoldUntilHangup,
        ]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let resp = tokio::time::timeout(
        HANG,
        h.http
            .get(h.url("/mcp"))
            .bearer_auth(&victim.tokens.access)
            .header("accept", "text/event-stream")
            .send(),
    )
    .await
    .expect("headers")
    .expect("GET /mcp");
    assert_eq!(resp.status(), StatusCode::OK);
    let (text, clean) = drain(Box::pin(resp.bytes_stream())).await;
    // A GET stream has no call to answer: it ends, and the host reopens it.
    assert!(clean, "{text}");
    assert_eq!(text, PROGRESS);
    up.wait_hangups(1).await;
    assert_served(&h, &bystander).await;
    h.stop().await;
}

#[tokio::test]
async fn an_event_stream_cut_mid_stream_ends_with_a_json_rpc_error_for_the_call() {
    let h = harness().await;
    // Chunked framing promised, then the socket closes without its last chunk.
    let up = Hostile::start(|_| {
        vec![
            chunked_ok("text/event-stream"),
            Step::Send(chunk(PROGRESS)),
            Step::Close,
        ]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let (_, _, stream) = post_streaming(&h, &victim.tokens.access).await;
    let (text, clean) = drain(Box::pin(stream)).await;
    assert!(clean, "{text}");
    let evs = events(&text);
    assert_eq!(evs.len(), 2, "{text}");
    assert_eq!(evs[1]["id"], "f-1");
    assert_eq!(
        evs[1]["error"]["message"],
        format!(
            "the upstream MCP server at {} closed the connection in the middle of its answer",
            up.mcp_url()
        )
    );
    assert_logged(&h, &victim, "stream_broken", Some(200)).await;
    assert_served(&h, &bystander).await;
    h.stop().await;
}

#[tokio::test]
async fn malformed_sse_is_passed_through_byte_for_byte_and_logged() {
    // The gateway forwards at the transport level (DESIGN §3): it does not
    // re-parse SSE, so a malformed stream reaches the host unchanged and the
    // host's MCP client judges it, as it would talking to the server itself.
    let h = harness().await;
    let garbage = "this is not sse\r\ndata: {\"jsonrpc\":\"2.0\",broken\n\n:comment\n\nevent:\ndata\n\n\u{0}\u{7f}data: \u{fffd}\n\n";
    let up = Hostile::start(move |_| {
        vec![
            chunked_ok("text/event-stream"),
            Step::Send(chunk(garbage)),
            Step::Send(b"0\r\n\r\n".to_vec()),
        ]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let (status, ct, stream) = post_streaming(&h, &victim.tokens.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("text/event-stream"));
    let (text, clean) = drain(Box::pin(stream)).await;
    assert!(clean);
    assert_eq!(text, garbage);
    assert_logged(&h, &victim, "ok", Some(200)).await;
    assert_served(&h, &bystander).await;
    h.stop().await;
}

// ---------------------------------------------------------------- Task B: hostile answers

#[tokio::test]
async fn only_mcp_headers_cross_from_a_hostile_upstream_to_the_host() {
    let h = harness().await;
    let hostile_headers = "set-cookie: session=stolen; Path=/; HttpOnly\r\n\
        set-cookie: other=1\r\n\
        access-control-allow-origin: *\r\n\
        access-control-allow-credentials: true\r\n\
        strict-transport-security: max-age=31536000\r\n\
        www-authenticate: Bearer resource_metadata=\"https://evil.example/.well-known/oauth-protected-resource\"\r\n\
        location: https://evil.example/\r\n\
        refresh: 0; url=https://evil.example/\r\n\
        content-security-policy: default-src *\r\n\
        x-powered-by: hostile\r\n\
        keep-alive: timeout=999\r\n\
        proxy-authenticate: Basic\r\n\
        alt-svc: h3=\":443\"\r\n\
        mcp-session-id: s-1\r\n\
        mcp-protocol-version: 2025-06-18\r\n";
    let up = Hostile::start(move |req| {
        let body = json!({ "jsonrpc": "2.0", "id": request_id(req), "result": {} }).to_string();
        vec![
            Step::Send(head(
                "200 OK",
                "application/json",
                &format!("{hostile_headers}content-length: {}\r\n", body.len()),
            )),
            Step::Send(body.into_bytes()),
        ]
    })
    .await;
    let (victim, _) = victim_and_bystander(&h, &up.mcp_url()).await;
    let r = post(&h, &victim.tokens.access, CALL).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["id"], "f-1");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("mcp-session-id"), Some("s-1"));
    assert_eq!(r.header("mcp-protocol-version"), Some("2025-06-18"));
    for name in [
        "set-cookie",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "strict-transport-security",
        "www-authenticate",
        "location",
        "refresh",
        "content-security-policy",
        "x-powered-by",
        "keep-alive",
        "proxy-authenticate",
        "alt-svc",
    ] {
        assert_eq!(r.header(name), None, "{name} crossed to the host");
    }
    for (name, value) in &r.headers {
        assert!(
            !value.to_str().unwrap_or_default().contains("evil")
                && !value.to_str().unwrap_or_default().contains("stolen"),
            "{name}: {value:?}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_json_answer_larger_than_the_bound_is_cut_off_with_a_502() {
    let h = harness().await;
    // No Content-Length: an endless chunked body, so only reading can tell.
    let up = Hostile::start(|_| {
        vec![
            chunked_ok("application/json"),
            Step::Send(chunk("{\"jsonrpc\":\"2.0\",\"id\":\"f-1\",\"result\":[")),
            Step::Endless("0,".repeat(32 * 1024).into_bytes()),
        ]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let r = post(&h, &victim.tokens.access, CALL).await;
    assert_rpc_error(
        &r,
        StatusCode::BAD_GATEWAY,
        &format!("sent an answer larger than {MAX_ANSWER} bytes"),
    );
    assert!(r.text.len() < 1024, "the host got an error, not the body");
    assert_logged(&h, &victim, "too_large", Some(200)).await;
    assert_served(&h, &bystander).await;
    h.stop().await;
}

#[tokio::test]
async fn a_json_answer_announcing_a_huge_content_length_is_refused_before_reading_it() {
    let h = harness().await;
    let up = Hostile::start(|_| {
        vec![
            Step::Send(head(
                "200 OK",
                "application/json",
                "content-length: 104857600\r\n",
            )),
            Step::HoldUntilHangup,
        ]
    })
    .await;
    let (victim, _) = victim_and_bystander(&h, &up.mcp_url()).await;
    let r = post(&h, &victim.tokens.access, CALL).await;
    assert_rpc_error(
        &r,
        StatusCode::BAD_GATEWAY,
        &format!("sent an answer larger than {MAX_ANSWER} bytes"),
    );
    up.wait_hangups(1).await;
    h.stop().await;
}

#[tokio::test]
async fn oversized_response_headers_are_a_502_not_a_crash() {
    let h = harness().await;
    let up = Hostile::start(|_| {
        let huge = format!("x-filler: {}\r\n", "a".repeat(1024 * 1024));
        vec![
            Step::Send(head("200 OK", "application/json", &huge)),
            Step::HoldUntilHangup,
        ]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let r = post(&h, &victim.tokens.access, CALL).await;
    assert_rpc_error(
        &r,
        StatusCode::BAD_GATEWAY,
        "closed the connection or sent an invalid HTTP answer",
    );
    assert_logged(&h, &victim, "bad_response", None).await;
    assert_served(&h, &bystander).await;
    h.stop().await;
}

/// Reads more of an endless event stream through the companion than any
/// buffer it has, then hangs up; the companion must let go of the upstream.
async fn read_endless_then_hang_up(payload: &'static str) {
    let h = harness().await;
    let up = Hostile::start(move |_| {
        vec![
            chunked_ok("text/event-stream"),
            Step::Endless(payload.repeat(4096).into_bytes()),
        ]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let (status, _, stream) = post_streaming(&h, &victim.tokens.access).await;
    assert_eq!(status, StatusCode::OK);
    // Far more than the answer bound: an event stream is relayed, not held.
    let want = MAX_ANSWER + 1024 * 1024;
    let mut stream = Box::pin(stream);
    let got = tokio::time::timeout(HANG * 4, async {
        let mut got = 0usize;
        while got < want {
            let c = stream.next().await.expect("more").expect("bytes");
            got += c.len();
        }
        got
    })
    .await
    .expect("the stream kept flowing");
    assert!(got >= want);
    drop(stream);
    // The host left; the companion stops reading and closes the upstream.
    up.wait_hangups(1).await;
    assert_logged(&h, &victim, "ok", Some(200)).await;
    assert_served(&h, &bystander).await;
    h.stop().await;
}

#[tokio::test]
async fn an_endless_event_stream_is_relayed_without_buffering_and_released_when_the_host_leaves() {
    read_endless_then_hang_up(PROGRESS).await;
}

#[tokio::test]
async fn an_endless_single_sse_line_is_relayed_without_buffering() {
    read_endless_then_hang_up("data-without-end-of-line-").await;
}

// ---------------------------------------------------------------- Task B: REST side

/// A `/v1/me` server playing `steps`, and the request log.
async fn rest_upstream(steps: Vec<Step>) -> Hostile {
    Hostile::start(move |_| steps.clone()).await
}

async fn add_against(h: &Harness, server: &str, timeout: Duration) -> AccountError {
    let mut state = h.state.clone();
    state.upstream = Upstream::with_timeout(timeout);
    let err = tokio::time::timeout(
        HANG,
        accounts::add_spor_account(&state, server, None, Sensitive::new(PAT.to_string())),
    )
    .await
    .expect("account add ended (no hang)")
    .expect_err("the account add fails");
    assert!(!err.to_string().contains(PAT), "{err}");
    assert!(!format!("{err:?}").contains(PAT), "{err:?}");
    assert_eq!(h.counts().await.accounts, 0, "no account row");
    assert!(h.secrets.entries().is_empty(), "no PAT stored");
    err
}

#[tokio::test]
async fn a_huge_v1_me_body_is_refused_and_nothing_is_stored() {
    let h = harness().await;
    // Announced: refused without reading it.
    let announced = rest_upstream(vec![
        Step::Send(head(
            "200 OK",
            "application/json",
            "content-length: 104857600\r\n",
        )),
        Step::HoldUntilHangup,
    ])
    .await;
    let err = add_against(&h, &announced.url, Duration::from_secs(15)).await;
    assert_eq!(
        err.to_string(),
        format!(
            "unexpected answer from the server: {}/v1/me sent an answer larger than {MAX_REST_BODY} bytes",
            announced.url
        )
    );
    announced.wait_hangups(1).await;
    // Unannounced, endless: cut at the bound.
    let endless = rest_upstream(vec![
        chunked_ok("application/json"),
        Step::Send(chunk("{\"person\":\"")),
        Step::Endless("a".repeat(64 * 1024).into_bytes()),
    ])
    .await;
    let err = add_against(&h, &endless.url, Duration::from_secs(15)).await;
    assert_eq!(
        err.to_string(),
        format!(
            "unexpected answer from the server: {}/v1/me sent an answer larger than {MAX_REST_BODY} bytes",
            endless.url
        )
    );
    h.stop().await;
}

#[tokio::test]
async fn a_v1_me_body_that_never_ends_times_out_and_nothing_is_stored() {
    let h = harness().await;
    let gate = Arc::new(Notify::new());
    let up = rest_upstream(vec![
        Step::Send(head(
            "200 OK",
            "application/json",
            "content-length: 500\r\n",
        )),
        Step::Send(b"{\"person\":\"p\",".to_vec()),
        Step::Wait(gate.clone()),
    ])
    .await;
    let err = add_against(&h, &up.url, Duration::from_secs(1)).await;
    assert_eq!(err.code(), "timeout");
    assert_eq!(
        err.to_string(),
        format!(
            "no answer from {}/v1/me within 1 s. A Spor graph that was asleep can take up to about a minute to wake up; nothing was stored, so try again",
            up.url
        )
    );
    gate.notify_waiters();
    h.stop().await;
}

#[tokio::test]
async fn a_cookie_set_by_the_server_is_never_sent_back() {
    let h = harness().await;
    let up = Hostile::start(|req| {
        let body = if req.starts_with("GET /v1/me/org-choices") {
            json!({ "org_choices": [{ "slug": "acme" }], "source": "idp" })
        } else {
            json!({ "person": "p", "bound": true, "org": "acme" })
        }
        .to_string();
        vec![
            Step::Send(head(
                "200 OK",
                "application/json",
                &format!(
                    "set-cookie: tracker=1; Path=/\r\ncontent-length: {}\r\n",
                    body.len()
                ),
            )),
            Step::Send(body.into_bytes()),
        ]
    })
    .await;
    let pat = Sensitive::new(PAT.to_string());
    h.state.upstream.me(&up.url, &pat).await.expect("me");
    h.state
        .upstream
        .org_choices(&up.url, &pat)
        .await
        .expect("org choices");
    let requests = up.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        !requests[1].to_ascii_lowercase().contains("cookie"),
        "{}",
        requests[1]
    );
    h.stop().await;
}

// ---------------------------------------------------------------- Task C: a failing keychain

/// A secret store over a [`MemoryStore`] whose chosen operations fail the
/// way a locked or absent keychain does.
#[derive(Clone)]
struct FailingStore {
    inner: MemoryStore,
    fail_get: bool,
    fail_set: bool,
    fail_delete: bool,
}

fn locked() -> SecretError {
    SecretError::KeychainLocked("the collection is locked".into())
}

impl SecretBackend for FailingStore {
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>, SecretError> {
        if self.fail_get {
            return Err(locked());
        }
        self.inner.get(account)
    }

    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<(), SecretError> {
        if self.fail_set {
            return Err(locked());
        }
        self.inner.set(account, secret)
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        if self.fail_delete {
            return Err(locked());
        }
        self.inner.delete(account)
    }

    fn describe(&self) -> String {
        "failing store (tests only)".into()
    }
}

const LOCKED_MESSAGE: &str =
    "the OS keychain refused access (the collection is locked); unlock it and try again";

#[tokio::test]
async fn account_add_with_a_locked_keychain_fails_clearly_and_stores_nothing() {
    let h = harness().await;
    h.upstream.allow(PAT, "acme");
    let inner = MemoryStore::default();
    let mut state = h.state.clone();
    state.secrets = SecretStore::new(FailingStore {
        inner: inner.clone(),
        fail_get: false,
        fail_set: true,
        fail_delete: false,
    });
    let err = tokio::time::timeout(
        HANG,
        accounts::add_spor_account(
            &state,
            &h.upstream.url,
            None,
            Sensitive::new(PAT.to_string()),
        ),
    )
    .await
    .expect("no hang")
    .expect_err("a locked keychain fails the add");
    assert!(
        matches!(err, AccountError::Secret(SecretError::KeychainLocked(_))),
        "{err:?}"
    );
    assert_eq!(err.to_string(), LOCKED_MESSAGE);
    assert!(!format!("{err:?}").contains(PAT));
    assert!(inner.entries().is_empty());
    assert!(h.secrets.entries().is_empty());
    assert_eq!(h.counts().await.accounts, 0, "no account row");
    h.stop().await;
}

#[tokio::test]
async fn account_remove_with_a_locked_keychain_fails_and_leaves_everything_in_place() {
    let h = harness().await;
    let c = h.connect().await;
    for (fail_get, fail_delete) in [(true, false), (false, true)] {
        let mut state = h.state.clone();
        state.secrets = SecretStore::new(FailingStore {
            inner: h.secrets.clone(),
            fail_get,
            fail_set: false,
            fail_delete,
        });
        let err = accounts::remove_account(&state, &c.account_id, false)
            .await
            .expect_err("a locked keychain fails the removal");
        assert_eq!(err.to_string(), LOCKED_MESSAGE);
        // Nothing half-done: the row, the PAT and the grant are all there.
        assert!(h
            .state
            .store
            .account(c.account_id.clone())
            .await
            .expect("read")
            .is_some());
        assert_eq!(
            h.secrets.entries().get(&c.account_id).map(String::as_str),
            Some(PAT)
        );
        assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
        h.assert_token_works(&c.tokens.access).await;
    }
    // Unlocked again, the same removal goes through completely.
    let removed = accounts::remove_account(&h.state, &c.account_id, false)
        .await
        .expect("remove");
    assert_eq!(removed.revoked_grants, vec![c.grant_id.clone()]);
    assert!(h.secrets.entries().is_empty());
    assert_eq!(h.counts().await.accounts, 0);
    h.stop().await;
}

#[tokio::test]
async fn a_pat_missing_from_the_secret_store_is_a_502_for_that_account_only() {
    let h = harness().await;
    let (victim, bystander) = victim_and_bystander(&h, &format!("{}/mcp", h.upstream.url)).await;
    h.secrets
        .delete(&victim.account_id)
        .expect("forget the PAT");
    let r = post(&h, &victim.tokens.access, CALL).await;
    assert_rpc_error(
        &r,
        StatusCode::BAD_GATEWAY,
        "Spor Companion cannot read this account's token from the secret store",
    );
    assert!(
        h.upstream
            .mcp_seen()
            .iter()
            .all(|s| s.header("authorization") != Some(&format!("Bearer {PAT}"))),
        "nothing was sent upstream for the victim"
    );
    assert_served(&h, &bystander).await;
    h.stop().await;
}

#[tokio::test]
async fn a_redirect_from_the_upstream_is_never_followed_so_the_pat_stays_put() {
    let h = harness().await;
    // Where a hostile upstream would like the PAT to go next.
    let elsewhere = Hostile::start(|_| vec![Step::Close]).await;
    let target = elsewhere.mcp_url();
    let up = Hostile::start(move |_| {
        vec![Step::Send(head(
            "307 Temporary Redirect",
            "text/plain",
            &format!("location: {target}\r\ncontent-length: 0\r\n"),
        ))]
    })
    .await;
    let (victim, bystander) = victim_and_bystander(&h, &up.mcp_url()).await;
    let r = post(&h, &victim.tokens.access, CALL).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "{}", r.text);
    assert_eq!(r.header("location"), None, "the redirect reached the host");
    r.assert_leaks_nothing(&[PAT, PAT_BETA]);
    assert_eq!(up.requests().len(), 1);
    assert!(
        elsewhere.requests().is_empty(),
        "the companion followed the redirect: {:?}",
        elsewhere.requests()
    );
    assert_served(&h, &bystander).await;
    h.stop().await;
}
