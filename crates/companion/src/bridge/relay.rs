//! The relay itself: host messages from stdin to POSTs, answers (JSON or
//! SSE) and the server's own GET stream back to stdout, one message per line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Mutex, OnceCell};
use tokio::task::JoinSet;
use url::Url;

use spor_wire::jsonrpc;

use super::args::{BridgeArgs, BridgeError};
use super::oauth::{self, AuthError, ClientSettings, OAuthClient};
use super::sse;
use crate::clock::SystemClock;
use crate::secrets::SecretStore;
use crate::sensitive::Sensitive;

const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const LAST_EVENT_HEADER: &str = "last-event-id";
/// Largest message accepted from the host or the server.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;
/// How long in-flight messages may finish after stdin closes.
const DRAIN: Duration = Duration::from_secs(3);
/// JSON-RPC error code for failures of the bridge itself.
const BRIDGE_ERROR: i64 = jsonrpc::SERVER_ERROR;
/// JSON-RPC error code for input that is not JSON.
const PARSE_ERROR: i64 = jsonrpc::PARSE_ERROR;

/// What the bridge knows about the MCP session.
#[derive(Default)]
struct Session {
    id: Option<String>,
    protocol: Option<String>,
    /// The host's `initialize` message, replayed if the session is lost.
    init: Option<Vec<u8>>,
    /// Bumped on every (re)initialization; ends the old GET stream.
    generation: u64,
}

pub(super) struct Relay {
    url: Url,
    args: BridgeArgs,
    data_dir: PathBuf,
    store: SecretStore,
    http: reqwest::Client,
    auth: OnceCell<Arc<OAuthClient>>,
    session: Mutex<Session>,
    out: mpsc::Sender<Out>,
    stopping: watch::Sender<bool>,
}

/// What goes to the host's stdout, in order.
pub(super) enum Out {
    Line(Vec<u8>),
    /// Everything before this has been queued: flush and stop.
    End,
}

/// What a POST came back with.
enum Reply {
    Done,
    Unauthorized(Option<String>),
    NoSession,
    Failed(String),
}

fn lock_path(data_dir: &Path, key: &str) -> PathBuf {
    let digest = crate::tokens::hash(key);
    data_dir
        .join("bridge")
        .join(format!("{}.lock", &digest[..16]))
}

fn error_response(id: &Value, code: i64, message: &str) -> Vec<u8> {
    jsonrpc::error_response(id, code, message)
        .to_string()
        .into_bytes()
}

/// The host's display name from an `initialize` request.
fn host_name(init: &Value) -> Option<String> {
    let info = init.get("params")?.get("clientInfo")?;
    let name = info
        .get("title")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .or_else(|| info.get("name").and_then(Value::as_str))?;
    let name: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// One JSON message per line: valid JSON has raw line breaks only as
/// whitespace, so dropping them keeps the message and makes it one line.
fn one_line(bytes: &[u8]) -> Option<Vec<u8>> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).ok()?;
    Some(
        bytes
            .iter()
            .copied()
            .filter(|b| *b != b'\n' && *b != b'\r')
            .collect(),
    )
}

/// Reads one line (without its terminator); `Ok(None)` at end of input.
/// A line over `max` bytes is skipped and reported as `Err`.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<Result<Vec<u8>, usize>>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let ended = done > chunk.len();
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        r.consume(done);
        if ended {
            break;
        }
    }
    if too_long {
        return Ok(Some(Err(max)));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(Ok(line)))
}

impl Relay {
    /// The relay, and the receiving end of what it writes to the host
    /// (handed to [`Relay::serve`]).
    pub(super) fn new(
        url: Url,
        args: BridgeArgs,
        data_dir: PathBuf,
        store: SecretStore,
    ) -> Result<(Arc<Self>, mpsc::Receiver<Out>), BridgeError> {
        // No overall timeout: answers may be long SSE streams.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BridgeError::Url(e.to_string()))?;
        let (out, out_rx) = mpsc::channel(256);
        let (stopping, _) = watch::channel(false);
        let relay = Arc::new(Self {
            url,
            args,
            data_dir,
            store,
            http,
            auth: OnceCell::new(),
            session: Mutex::new(Session::default()),
            out,
            stopping,
        });
        Ok((relay, out_rx))
    }

    pub(super) async fn serve<R, W>(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Out>,
        mut input: R,
        mut output: W,
    ) -> Result<(), BridgeError>
    where
        R: AsyncBufRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let stopping = self.stopping.clone();
        let writer = tokio::spawn(async move {
            while let Some(Out::Line(mut line)) = rx.recv().await {
                line.push(b'\n');
                if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                    // The host is gone: nothing more can be delivered.
                    let _ = stopping.send(true);
                    break;
                }
            }
        });
        let mut tasks = JoinSet::new();
        let mut stop = self.stopping.subscribe();
        // Registered once, so a signal between two messages is not missed.
        let signal = crate::shutdown::signal();
        tokio::pin!(signal);
        loop {
            let next = tokio::select! {
                r = read_line(&mut input, MAX_MESSAGE) => r?,
                _ = stop.wait_for(|s| *s) => None,
                _ = &mut signal => None,
            };
            let Some(line) = next else { break };
            let line = match line {
                Ok(l) => l,
                Err(max) => {
                    let msg = format!("message larger than {max} bytes");
                    self.emit(error_response(&Value::Null, BRIDGE_ERROR, &msg))
                        .await;
                    continue;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
                let parse_error =
                    error_response(&Value::Null, PARSE_ERROR, "Parse error: not JSON");
                self.emit(parse_error).await;
                continue;
            };
            if msg.get("method").and_then(Value::as_str) == Some("initialize") {
                // Everything after initialize needs its session: finish it
                // first, but a host quitting during consent still ends us.
                tokio::select! {
                    () = self.clone().initialize(line, msg) => {}
                    _ = stop.wait_for(|s| *s) => break,
                    _ = &mut signal => break,
                }
            } else {
                while tasks.try_join_next().is_some() {}
                tasks.spawn(self.clone().relay(line, msg));
            }
        }
        let _ = self.stopping.send(true);
        let _ =
            tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
        self.end_session().await;
        let _ = self.out.send(Out::End).await;
        let _ = tokio::time::timeout(DRAIN, writer).await;
        Ok(())
    }

    async fn emit(&self, line: Vec<u8>) {
        let _ = self.out.send(Out::Line(line)).await;
    }

    /// Tells the server the session is over (best effort, bounded).
    async fn end_session(&self) {
        let (id, protocol) = {
            let s = self.session.lock().await;
            (s.id.clone(), s.protocol.clone())
        };
        let (Some(id), Some(auth)) = (id, self.auth.get()) else {
            return;
        };
        let Ok(Ok(token)) = tokio::time::timeout(DRAIN, auth.current_token()).await else {
            return;
        };
        let request = self
            .http
            .delete(self.url.clone())
            .headers(self.headers(&token, Some(&id), protocol.as_deref()))
            .send();
        let _ = tokio::time::timeout(Duration::from_secs(2), request).await;
    }

    async fn auth(&self, init: Option<&Value>) -> Result<Arc<OAuthClient>, AuthError> {
        self.auth
            .get_or_try_init(|| async {
                let name = self
                    .args
                    .name
                    .clone()
                    .or_else(|| {
                        init.and_then(host_name)
                            .map(|n| format!("{n} via Spor bridge"))
                    })
                    .unwrap_or_else(|| "Spor bridge".to_string());
                let key = format!("{}#{name}", self.url);
                let settings = ClientSettings {
                    resource: self.url.clone(),
                    client_name: name,
                    callback_port: self.args.callback_port,
                    auth_timeout: Duration::from_secs(self.args.auth_timeout),
                    lock_path: lock_path(&self.data_dir, &key),
                };
                OAuthClient::new(settings, self.store.clone(), Arc::new(SystemClock)).map(Arc::new)
            })
            .await
            .cloned()
    }

    async fn initialize(self: Arc<Self>, body: Vec<u8>, msg: Value) {
        {
            let mut s = self.session.lock().await;
            s.init = Some(body.clone());
            s.id = None;
            s.generation += 1;
        }
        self.clone().relay(body, msg).await;
    }

    /// Relays one host message, renewing the token or the session once
    /// each if the server asks for it; a request that still fails gets a
    /// JSON-RPC error, so the host never waits forever.
    async fn relay(self: Arc<Self>, body: Vec<u8>, msg: Value) {
        let id = msg.get("id").cloned();
        let is_request = id.is_some() && msg.get("method").is_some();
        let is_init = msg.get("method").and_then(Value::as_str) == Some("initialize");
        let fail = |why: String| {
            let relay = self.clone();
            let id = id.clone();
            async move {
                match (is_request, id) {
                    (true, Some(id)) => relay.emit(error_response(&id, BRIDGE_ERROR, &why)).await,
                    _ => tracing::warn!("could not deliver a message: {why}"),
                }
            }
        };
        let auth = match self.auth(Some(&msg)).await {
            Ok(a) => a,
            Err(e) => return fail(e.to_string()).await,
        };
        let mut hint = None;
        let mut renewed = false;
        let mut reinitialized = false;
        let mut token = match auth.access_token(None).await {
            Ok(t) => t,
            Err(e) => return fail(e.to_string()).await,
        };
        loop {
            let session = if is_init {
                None
            } else {
                self.session.lock().await.id.clone()
            };
            match self.post(&body, &token, session.as_deref(), is_init).await {
                Reply::Done => return,
                Reply::Unauthorized(h) if !renewed => {
                    renewed = true;
                    hint = h.or(hint);
                    token = match auth.renew(Some(&token), hint.as_deref()).await {
                        Ok(t) => t,
                        Err(e) => return fail(e.to_string()).await,
                    };
                }
                Reply::Unauthorized(_) => {
                    return fail("Spor Companion refused the bridge's new token".into()).await
                }
                Reply::NoSession if !reinitialized && !is_init => {
                    reinitialized = true;
                    if let Err(why) = self.reinitialize(session, &token).await {
                        return fail(why).await;
                    }
                }
                Reply::NoSession => {
                    return fail("Spor Companion does not know this session any more".into()).await
                }
                Reply::Failed(why) => return fail(why).await,
            }
        }
    }

    fn headers(
        &self,
        token: &Sensitive<String>,
        session: Option<&str>,
        protocol: Option<&str>,
    ) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
            v.set_sensitive(true);
            h.insert(AUTHORIZATION, v);
        }
        if let Some(s) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
            h.insert(SESSION_HEADER, s);
        }
        if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
            h.insert(PROTOCOL_HEADER, p);
        }
        h
    }

    /// A POST of one JSON-RPC message, accepting JSON or SSE back.
    fn post_message(
        &self,
        token: &Sensitive<String>,
        session: Option<&str>,
        protocol: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        self.http
            .post(self.url.clone())
            .headers(self.headers(token, session, protocol))
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
    }

    fn unreachable(&self, e: &reqwest::Error) -> String {
        if e.is_connect() {
            format!(
                "cannot reach Spor Companion at {} (connection refused). Is the app running?",
                self.url
            )
        } else if e.is_timeout() {
            format!("Spor Companion at {} did not answer in time", self.url)
        } else {
            format!("the connection to Spor Companion at {} failed", self.url)
        }
    }

    async fn post(
        self: &Arc<Self>,
        body: &[u8],
        token: &Sensitive<String>,
        session: Option<&str>,
        is_init: bool,
    ) -> Reply {
        let protocol = self.session.lock().await.protocol.clone();
        let resp = self
            .post_message(token, session, protocol.as_deref(), body.to_vec())
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Reply::Failed(self.unreachable(&e)),
        };
        match resp.status() {
            StatusCode::UNAUTHORIZED => {
                let hint = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(oauth::resource_metadata_hint);
                return Reply::Unauthorized(hint);
            }
            StatusCode::NOT_FOUND if session.is_some() => return Reply::NoSession,
            s if s.is_success() => {}
            s => return Reply::Failed(self.describe_failure(s, resp).await),
        }
        if is_init {
            let sid = resp
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut s = self.session.lock().await;
            s.id = sid;
        }
        let on_message = |v: &Value| {
            if is_init {
                if let Some(p) = v.pointer("/result/protocolVersion").and_then(Value::as_str) {
                    return Some(p.to_string());
                }
            }
            None
        };
        let started = match self.forward_body(resp, on_message).await {
            Ok(p) => p,
            Err(why) => return Reply::Failed(why),
        };
        if is_init {
            let mut s = self.session.lock().await;
            if let Some(p) = started {
                s.protocol = Some(p);
            }
            let generation = s.generation;
            drop(s);
            self.spawn_listener(generation);
        }
        Reply::Done
    }

    async fn describe_failure(&self, status: StatusCode, resp: reqwest::Response) -> String {
        let mut resp = resp;
        let mut buf = Vec::new();
        while let Ok(Some(c)) = resp.chunk().await {
            buf.extend_from_slice(&c);
            if buf.len() > 4096 {
                break;
            }
        }
        let json: Value = serde_json::from_slice(&buf).unwrap_or(Value::Null);
        let detail = json
            .pointer("/error/message")
            .or_else(|| json.get("error_description"))
            .or_else(|| json.get("error"))
            .and_then(Value::as_str)
            .map(|s| s.chars().take(300).collect::<String>());
        match detail {
            Some(d) => format!("Spor Companion answered {status}: {d}"),
            None => format!("Spor Companion answered {status}"),
        }
    }

    /// Writes a JSON or SSE body's messages to the host; returns what
    /// `pick` found in any of them.
    async fn forward_body<F>(
        &self,
        resp: reqwest::Response,
        pick: F,
    ) -> Result<Option<String>, String>
    where
        F: Fn(&Value) -> Option<String>,
    {
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.trim_start().starts_with("text/event-stream"));
        let mut resp = resp;
        let mut found = None;
        if !is_sse {
            let mut buf = Vec::new();
            while let Some(c) = resp.chunk().await.map_err(|e| self.unreachable(&e))? {
                if buf.len() + c.len() > MAX_MESSAGE {
                    return Err("Spor Companion sent an answer that is too large".into());
                }
                buf.extend_from_slice(&c);
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            let line = one_line(&buf).ok_or("Spor Companion sent an answer that is not JSON")?;
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                found = pick(&v);
            }
            self.emit(line).await;
            return Ok(found);
        }
        let mut parser = sse::Parser::new(MAX_MESSAGE);
        while let Some(c) = resp.chunk().await.map_err(|e| self.unreachable(&e))? {
            for ev in parser.feed(&c).map_err(|e| e.to_string())? {
                if let Some(p) = self.forward_event(&ev, &pick).await {
                    found = Some(p);
                }
            }
        }
        Ok(found)
    }

    async fn forward_event<F>(&self, ev: &sse::Event, pick: &F) -> Option<String>
    where
        F: Fn(&Value) -> Option<String>,
    {
        if ev.event.as_deref().is_some_and(|e| e != "message") {
            return None;
        }
        let line = one_line(ev.data.as_bytes())?;
        let found = serde_json::from_slice::<Value>(&line)
            .ok()
            .and_then(|v| pick(&v));
        self.emit(line).await;
        found
    }

    /// Starts a new session after the old one was lost (e.g. the grant was
    /// disconnected and authorized again): replays the host's `initialize`,
    /// keeps its answer to ourselves, and confirms with `initialized`.
    async fn reinitialize(
        self: &Arc<Self>,
        stale: Option<String>,
        token: &Sensitive<String>,
    ) -> Result<(), String> {
        let mut s = self.session.lock().await;
        if s.id != stale {
            return Ok(()); // another message already did it
        }
        let init = s
            .init
            .clone()
            .ok_or("the host never initialized a session")?;
        let resp = self
            .post_message(token, None, None, init)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        if !resp.status().is_success() {
            return Err(self.describe_failure(resp.status(), resp).await);
        }
        s.id = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        s.generation += 1;
        let generation = s.generation;
        let session = s.id.clone();
        let protocol = s.protocol.clone();
        drop(s);
        // Read the answer to the end; it is the server's, not the host's.
        let mut resp = resp;
        while let Ok(Some(_)) = resp.chunk().await {}
        let initialized =
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
        let _ = self
            .post_message(token, session.as_deref(), protocol.as_deref(), initialized)
            .send()
            .await;
        tracing::info!("session re-established");
        self.spawn_listener(generation);
        Ok(())
    }

    /// The server's own stream (GET): requests and notifications not tied
    /// to a host request. Reconnects with `Last-Event-ID` until the session
    /// changes or the bridge stops.
    fn spawn_listener(self: &Arc<Self>, generation: u64) {
        let Some(auth) = self.auth.get().cloned() else {
            return;
        };
        let relay = self.clone();
        let mut stop = self.stopping.subscribe();
        tokio::spawn(async move {
            let mut last_id: Option<String> = None;
            let mut backoff = Duration::from_millis(500);
            loop {
                let (sid, protocol) = {
                    let s = relay.session.lock().await;
                    match (&s.id, s.generation == generation) {
                        (Some(id), true) => (id.clone(), s.protocol.clone()),
                        _ => return,
                    }
                };
                if *stop.borrow() {
                    return;
                }
                let Ok(token) = auth.access_token(None).await else {
                    return;
                };
                let mut h = relay.headers(&token, Some(&sid), protocol.as_deref());
                if let Some(v) = last_id
                    .as_deref()
                    .and_then(|p| HeaderValue::from_str(p).ok())
                {
                    h.insert(LAST_EVENT_HEADER, v);
                }
                let sent = tokio::select! {
                    r = relay.http.get(relay.url.clone()).headers(h).header(ACCEPT, "text/event-stream").send() => r,
                    _ = stop.wait_for(|s| *s) => return,
                };
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        backoff = Duration::from_millis(500);
                        let mut resp = resp;
                        let mut parser = sse::Parser::new(MAX_MESSAGE);
                        loop {
                            let chunk = tokio::select! {
                                c = resp.chunk() => c,
                                _ = stop.wait_for(|s| *s) => return,
                            };
                            let Ok(Some(c)) = chunk else { break };
                            let Ok(events) = parser.feed(&c) else { break };
                            for ev in events {
                                if ev.event.as_deref().is_some_and(|e| e != "message") {
                                    continue;
                                }
                                if let Some(line) = one_line(ev.data.as_bytes()) {
                                    relay.emit(line).await;
                                }
                            }
                        }
                        last_id = parser.last_id().map(str::to_string).or(last_id);
                    }
                    // No standalone stream offered, or the session is gone
                    // (a re-initialization starts a new listener).
                    Ok(resp)
                        if matches!(
                            resp.status(),
                            StatusCode::METHOD_NOT_ALLOWED
                                | StatusCode::NOT_FOUND
                                | StatusCode::BAD_REQUEST
                        ) =>
                    {
                        return
                    }
                    Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                        let Ok(_) = auth.renew(Some(&token), None).await else {
                            return;
                        };
                    }
                    _ => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut r = tokio::io::BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        while let Some(l) = read_line(&mut r, max).await.expect("in-memory read") {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn lines_are_split_on_newlines_and_overlong_ones_skipped() {
        let got = lines(b"{\"a\":1}\r\n0123456789abc\n\n{}", 8).await;
        assert_eq!(
            got,
            vec![
                Ok(b"{\"a\":1}".to_vec()),
                Err(8),
                Ok(Vec::new()),
                Ok(b"{}".to_vec())
            ]
        );
    }

    #[test]
    fn answers_become_one_line_and_non_json_is_refused() {
        assert_eq!(
            one_line(b"{\n  \"a\": \"x\\ny\"\r\n}").as_deref(),
            Some(&b"{  \"a\": \"x\\ny\"}"[..])
        );
        assert_eq!(one_line(b"{\"a\":"), None);
        assert_eq!(one_line(b"<html>"), None);
    }

    #[test]
    fn the_host_is_named_by_title_then_name_without_control_characters() {
        let init = json!({"params": {"clientInfo": {"name": "claude-ai", "title": "Claude\u{7}"}}});
        assert_eq!(host_name(&init).as_deref(), Some("Claude"));
        let init = json!({"params": {"clientInfo": {"name": "claude-ai", "title": "  "}}});
        assert_eq!(host_name(&init).as_deref(), Some("claude-ai"));
        assert_eq!(host_name(&json!({"params": {}})), None);
    }
}
