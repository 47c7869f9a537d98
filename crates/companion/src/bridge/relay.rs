//! The relay itself: each host message from stdin becomes a POST, renewing
//! the token or the session once each when the server asks for it, and
//! every request the host sent gets an answer — the server's, or a
//! JSON-RPC error that says why not. Stops when stdin closes, the host
//! stops reading, or a signal arrives, letting in-flight messages drain.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncBufRead;
use tokio::sync::{mpsc, watch, Mutex, OnceCell};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use spor_wire::{jsonrpc, mirror};

use super::args::{BridgeArgs, BridgeError};
use super::forward;
use super::mcp::{failure, mirrored_headers, session_id, Failure, Mcp};
use super::oauth::{self, AuthError, ClientSettings, OAuthClient};
use super::session::{self, Session};
use super::stdio::{read_line, spawn_writer, Host, Out, DRAIN, MAX_MESSAGE};
use super::stream::Listener;
use crate::clock::SystemClock;
use crate::secrets::SecretStore;
use crate::sensitive::Sensitive;

/// JSON-RPC error code for failures of the bridge itself.
const BRIDGE_ERROR: i64 = jsonrpc::SERVER_ERROR;
/// JSON-RPC error code for input that is not JSON.
const PARSE_ERROR: i64 = jsonrpc::PARSE_ERROR;

/// One host's bridge to the MCP endpoint.
pub(super) struct Relay {
    mcp: Mcp,
    args: BridgeArgs,
    data_dir: PathBuf,
    store: SecretStore,
    auth: OnceCell<Arc<OAuthClient>>,
    session: Arc<Mutex<Session>>,
    host: Host,
    stopping: watch::Sender<bool>,
    /// The `Mcp-Param-*` declarations of each tool, learnt from the
    /// `tools/list` answers the host receives.
    tool_params: std::sync::Mutex<HashMap<String, Vec<mirror::ParamHeader>>>,
    /// Modern requests still in flight, by JSON id: the host cancels one
    /// (`notifications/cancelled`, its only way on stdio) and the bridge
    /// closes its POST, which is how 2026-07-28 cancels over HTTP.
    in_flight: std::sync::Mutex<HashMap<String, CancellationToken>>,
}

/// What a POST came back with.
enum Reply {
    Done,
    Unauthorized(Option<String>),
    NoSession,
    Failed(String),
}

/// The key of a request id in [`Relay::in_flight`].
fn id_key(id: &Value) -> String {
    id.to_string()
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

/// The host's display name from an `initialize` request, or from the
/// client info a 2026-07-28 request carries in its `_meta`.
fn host_name(init: &Value) -> Option<String> {
    let params = init.get("params")?;
    let info = params.get("clientInfo").or_else(|| {
        params
            .get("_meta")?
            .get("io.modelcontextprotocol/clientInfo")
    })?;
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

impl Relay {
    /// The relay, and the receiving end of what it writes to the host
    /// (handed to [`Relay::serve`]).
    pub(super) fn new(
        url: Url,
        args: BridgeArgs,
        data_dir: PathBuf,
        store: SecretStore,
    ) -> Result<(Arc<Self>, mpsc::Receiver<Out>), BridgeError> {
        let mcp = Mcp::new(url)?;
        let (host, out_rx) = Host::channel();
        let (stopping, _) = watch::channel(false);
        let relay = Arc::new(Self {
            mcp,
            args,
            data_dir,
            store,
            auth: OnceCell::new(),
            session: Arc::new(Mutex::new(Session::default())),
            host,
            stopping,
            tool_params: std::sync::Mutex::default(),
            in_flight: std::sync::Mutex::default(),
        });
        Ok((relay, out_rx))
    }

    /// Relays `input` until it ends (or the host or a signal stops us),
    /// writing to `output`.
    pub(super) async fn serve<R, W>(
        self: Arc<Self>,
        rx: mpsc::Receiver<Out>,
        mut input: R,
        output: W,
    ) -> Result<(), BridgeError>
    where
        R: AsyncBufRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let writer = spawn_writer(rx, output, self.stopping.clone());
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
                    self.host
                        .emit(error_response(&Value::Null, BRIDGE_ERROR, &msg))
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
                self.host.emit(parse_error).await;
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
                self.cancel_if_asked(&msg);
                let cancel = self.track(&msg);
                let relay = self.clone();
                tasks.spawn(async move {
                    let id = msg.get("id").cloned();
                    match cancel {
                        Some(cancel) => {
                            tokio::select! {
                                () = relay.clone().relay(line, msg) => {}
                                () = cancel.cancelled() => {}
                            }
                            relay.untrack(id.as_ref());
                        }
                        None => relay.relay(line, msg).await,
                    }
                });
            }
        }
        let _ = self.stopping.send(true);
        let _ =
            tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
        session::end(&self.mcp, &self.session, self.auth.get()).await;
        self.host.end().await;
        let _ = tokio::time::timeout(DRAIN, writer).await;
        Ok(())
    }

    /// Starts tracking a modern request, so the host can cancel it.
    fn track(&self, msg: &Value) -> Option<CancellationToken> {
        let id = msg.get("id")?;
        msg.get("method")?;
        mirror::protocol_version(msg)?;
        let token = CancellationToken::new();
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.insert(id_key(id), token.clone());
        Some(token)
    }

    fn untrack(&self, id: Option<&Value>) {
        if let Some(id) = id {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight.remove(&id_key(id));
        }
    }

    /// Closes the POST of a modern request the host cancels. The
    /// notification itself still travels (a legacy server acts on it; a
    /// modern one ignores a cancellation it cannot place).
    fn cancel_if_asked(&self, msg: &Value) {
        if msg.get("method").and_then(Value::as_str) != Some("notifications/cancelled") {
            return;
        }
        let Some(id) = msg.pointer("/params/requestId") else {
            return;
        };
        let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = in_flight.get(&id_key(id)) {
            tracing::debug!("the host cancelled a request; closing its stream");
            token.cancel();
        }
    }

    /// Remembers the parameter headers of each tool in a `tools/list`
    /// answer (a later page adds to, never clears, what earlier ones said).
    fn learn_tools(&self, answer: &Value) {
        let Some(tools) = answer.pointer("/result/tools").and_then(Value::as_array) else {
            return;
        };
        let mut known = self.tool_params.lock().unwrap_or_else(|e| e.into_inner());
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            let declared = tool
                .get("inputSchema")
                .and_then(mirror::param_declarations)
                .unwrap_or_default();
            known.insert(name.to_string(), declared);
        }
    }

    /// The headers a host message mirrors, with what is known of its tool.
    fn mirrored(&self, msg: &Value) -> reqwest::header::HeaderMap {
        let tool = (msg.get("method").and_then(Value::as_str) == Some("tools/call"))
            .then(|| msg.pointer("/params/name").and_then(Value::as_str))
            .flatten();
        let known = self.tool_params.lock().unwrap_or_else(|e| e.into_inner());
        let declared = tool.and_then(|t| known.get(t)).map(Vec::as_slice);
        mirrored_headers(msg, declared.unwrap_or_default())
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
                let url = self.mcp.url();
                let key = format!("{url}#{name}");
                let settings = ClientSettings {
                    resource: url.clone(),
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
                    (true, Some(id)) => {
                        relay
                            .host
                            .emit(error_response(&id, BRIDGE_ERROR, &why))
                            .await
                    }
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
            let sid = if is_init {
                None
            } else {
                self.session.lock().await.id.clone()
            };
            match self
                .post(&body, &msg, &token, sid.as_deref(), is_init)
                .await
            {
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
                    match session::reinitialize(&self.mcp, &self.session, sid, &token).await {
                        Ok(Some(generation)) => self.spawn_listener(generation),
                        Ok(None) => {}
                        Err(why) => return fail(why).await,
                    }
                }
                Reply::NoSession => {
                    return fail("Spor Companion does not know this session any more".into()).await
                }
                Reply::Failed(why) => return fail(why).await,
            }
        }
    }

    async fn post(
        self: &Arc<Self>,
        body: &[u8],
        msg: &Value,
        token: &Sensitive<String>,
        session: Option<&str>,
        is_init: bool,
    ) -> Reply {
        let protocol = self.session.lock().await.protocol.clone();
        let request = self.mcp.post_mirrored(
            token,
            session,
            protocol.as_deref(),
            self.mirrored(msg),
            body.to_vec(),
        );
        let resp = match self.mcp.send(request).await {
            Ok(r) => r,
            Err(why) => return Reply::Failed(why),
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
            s => {
                return match failure(s, resp, msg.get("id")).await {
                    Failure::Answer(line) => {
                        self.host.emit(line).await;
                        Reply::Done
                    }
                    Failure::Text(why) => Reply::Failed(why),
                }
            }
        }
        if is_init {
            let sid = session_id(&resp);
            let mut s = self.session.lock().await;
            s.id = sid;
        }
        let lists_tools = msg.get("method").and_then(Value::as_str) == Some("tools/list");
        let on_message = |v: &Value| {
            if lists_tools {
                self.learn_tools(v);
            }
            if is_init {
                if let Some(p) = v.pointer("/result/protocolVersion").and_then(Value::as_str) {
                    return Some(p.to_string());
                }
            }
            None
        };
        let started = match forward::body(&self.host, &self.mcp, resp, on_message).await {
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

    /// Starts the server's own stream for the session of `generation`, once
    /// there is a token to open it with.
    fn spawn_listener(&self, generation: u64) {
        let Some(auth) = self.auth.get().cloned() else {
            return;
        };
        Listener {
            mcp: self.mcp.clone(),
            session: self.session.clone(),
            auth,
            host: self.host.clone(),
            stop: self.stopping.subscribe(),
        }
        .spawn(generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_host_is_named_by_title_then_name_without_control_characters() {
        let init = json!({"params": {"clientInfo": {"name": "claude-ai", "title": "Claude\u{7}"}}});
        assert_eq!(host_name(&init).as_deref(), Some("Claude"));
        let init = json!({"params": {"clientInfo": {"name": "claude-ai", "title": "  "}}});
        assert_eq!(host_name(&init).as_deref(), Some("claude-ai"));
        assert_eq!(host_name(&json!({"params": {}})), None);
    }
}
