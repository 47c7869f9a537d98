//! Reading an upstream's tool list with the account's PAT, into the
//! catalogue: for the consent's checklist, and for a read-only decision
//! about a tool the catalogue has not seen (at most once a minute). A
//! minimal MCP client that does one thing: `tools/list`, every page.

use std::time::Duration;

use serde_json::{json, Value};

use super::catalogue::ToolInfo;
use crate::http_body::read_whole;
use crate::sse;
use crate::state::AppState;
use crate::store::Account;

/// The protocol revision the catalogue's own requests speak first: every
/// dual-era server and every legacy one answers it.
const LEGACY_VERSION: &str = "2025-11-25";
/// The revision tried when a server refuses the legacy handshake.
const MODERN_VERSION: &str = "2026-07-28";
/// Pages of `tools/list` read at most.
const MAX_PAGES: usize = 20;
/// Largest answer read.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// How long one fetch may take in all.
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the catalogue could not read an upstream's tools.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// The account's PAT could not be read.
    #[error("the account's token could not be read from the secret store")]
    PatUnreadable,
    /// The upstream failed, refused or answered something else.
    #[error("the MCP server at {url} did not list its tools ({why})")]
    Upstream {
        /// Its MCP endpoint.
        url: String,
        /// What went wrong, in words.
        why: String,
    },
}

impl CatalogueError {
    /// A stable code for every wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PatUnreadable => "pat_unreadable",
            Self::Upstream { .. } => "tools_unavailable",
        }
    }
}

/// The account's tools: as already seen, or fetched now with its PAT.
pub async fn tools_of(
    state: &AppState,
    account: &Account,
) -> Result<Vec<ToolInfo>, CatalogueError> {
    if let Some(tools) = state.gateway.catalogue.tools(&account.id) {
        return Ok(tools);
    }
    refresh(state, account).await?;
    Ok(state
        .gateway
        .catalogue
        .tools(&account.id)
        .unwrap_or_default())
}

/// Whether `tool` is read-only for `account`, fetching the list once (at
/// most every minute) when the tool was not seen; `false` when unknown.
pub(crate) async fn is_read_only(state: &AppState, account: &Account, tool: &str) -> bool {
    let catalogue = &state.gateway.catalogue;
    if let Some(known) = catalogue.read_only(&account.id, tool) {
        return known;
    }
    if catalogue.fetched_recently(&account.id, state.now()) {
        return false;
    }
    if let Err(e) = refresh(state, account).await {
        tracing::warn!(account = %account.id, code = e.code(), "could not list the upstream's tools: {e}");
        return false;
    }
    catalogue.read_only(&account.id, tool).unwrap_or(false)
}

/// Reads the upstream's whole tool list with the account's PAT and puts
/// it in place of what the catalogue knew.
pub async fn refresh(state: &AppState, account: &Account) -> Result<(), CatalogueError> {
    let Some(pat) = state.gateway.pats.get(&state.secrets, account).await else {
        return Err(CatalogueError::PatUnreadable);
    };
    let fail = |why: String| CatalogueError::Upstream {
        url: account.mcp_url.clone(),
        why,
    };
    let client = Lister {
        http: &state.gateway.http,
        url: &account.mcp_url,
        pat: pat.expose(),
    };
    let tools = match tokio::time::timeout(FETCH_TIMEOUT, client.list()).await {
        Ok(Ok(tools)) => tools,
        Ok(Err(why)) => return Err(fail(why)),
        Err(_) => {
            return Err(fail(format!(
                "no answer within {} s",
                FETCH_TIMEOUT.as_secs()
            )))
        }
    };
    state
        .gateway
        .catalogue
        .replace(&account.id, tools, state.now());
    Ok(())
}

/// A minimal MCP client for one thing: `tools/list`, every page.
struct Lister<'a> {
    http: &'a reqwest::Client,
    url: &'a str,
    pat: &'a str,
}

impl Lister<'_> {
    async fn list(&self) -> Result<Vec<Value>, String> {
        match self.list_legacy().await {
            Ok(tools) => Ok(tools),
            // A server that speaks only the newest revision refuses the
            // handshake; it lists without one.
            Err(legacy) => self
                .list_modern()
                .await
                .map_err(|modern| format!("{legacy}; as {MODERN_VERSION}: {modern}")),
        }
    }

    async fn list_legacy(&self) -> Result<Vec<Value>, String> {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "spor-companion", "version": env!("CARGO_PKG_VERSION")},
        }});
        let resp = self.post(&init, None, None).await?;
        let session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let answer = answer_to(resp, &json!(1)).await?;
        let version = answer
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(LEGACY_VERSION)
            .to_string();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(&initialized, session.as_deref(), Some(&version))
            .await?;
        let listed = self
            .pages(
                |cursor, id| {
                    let mut params = json!({});
                    if let Some(c) = cursor {
                        params["cursor"] = c.into();
                    }
                    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params})
                },
                session.as_deref(),
                Some(&version),
            )
            .await;
        if let Some(s) = &session {
            let _ = self
                .http
                .delete(self.url)
                .bearer_auth(self.pat)
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", &version)
                .send()
                .await;
        }
        listed
    }

    async fn list_modern(&self) -> Result<Vec<Value>, String> {
        self.pages(
            |cursor, id| {
                let mut params = json!({"_meta": {
                    spor_wire::peek::PROTOCOL_VERSION_META: MODERN_VERSION,
                    "io.modelcontextprotocol/clientInfo": {"name": "spor-companion", "version": env!("CARGO_PKG_VERSION")},
                    "io.modelcontextprotocol/clientCapabilities": {},
                }});
                if let Some(c) = cursor {
                    params["cursor"] = c.into();
                }
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params})
            },
            None,
            Some(MODERN_VERSION),
        )
        .await
    }

    /// Every page of `tools/list`, following `nextCursor`.
    async fn pages(
        &self,
        request: impl Fn(Option<String>, i64) -> Value,
        session: Option<&str>,
        version: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let mut tools = Vec::new();
        let mut cursor = None;
        for page in 0..MAX_PAGES {
            let id = json!(page as i64 + 2);
            let body = request(cursor.take(), page as i64 + 2);
            let resp = self.post(&body, session, version).await?;
            let answer = answer_to(resp, &id).await?;
            if let Some(e) = answer.get("error") {
                return Err(format!(
                    "tools/list failed: {}",
                    e.get("message").and_then(Value::as_str).unwrap_or("error")
                ));
            }
            let listed = answer
                .pointer("/result/tools")
                .and_then(Value::as_array)
                .ok_or("tools/list answered without tools")?;
            tools.extend(listed.iter().cloned());
            match answer.pointer("/result/nextCursor").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => cursor = Some(next.to_string()),
                _ => return Ok(tools),
            }
        }
        Err(format!("more than {MAX_PAGES} pages of tools"))
    }

    async fn post(
        &self,
        body: &Value,
        session: Option<&str>,
        version: Option<&str>,
    ) -> Result<reqwest::Response, String> {
        let mut req = self
            .http
            .post(self.url)
            .bearer_auth(self.pat)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(v) = version {
            req = req.header("mcp-protocol-version", v);
        }
        // A modern request mirrors its method (2026-07-28).
        if spor_wire::mirror::protocol_version(body).is_some() {
            if let Some(m) = body.get("method").and_then(Value::as_str) {
                req = req.header("mcp-method", m);
            }
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                "unreachable".to_string()
            } else {
                "the connection failed".to_string()
            }
        })?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        Ok(resp)
    }
}

/// The JSON-RPC response to `id` in a JSON or event-stream answer.
async fn answer_to(mut resp: reqwest::Response, id: &Value) -> Result<Value, String> {
    let is_sse = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.trim_start().starts_with("text/event-stream"));
    if !is_sse {
        let body = read_whole(&mut resp, MAX_ANSWER, None)
            .await
            .map_err(|_| "its answer could not be read".to_string())?;
        return serde_json::from_slice(&body).map_err(|_| "its answer is not JSON".to_string());
    }
    // An event stream may carry notifications first; read until the answer.
    let mut parser = sse::Parser::new(MAX_ANSWER);
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| "its answer was cut".to_string())?
    {
        for ev in parser.feed(&chunk).map_err(|e| e.to_string())? {
            if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                if v.get("id") == Some(id) && v.get("method").is_none() {
                    return Ok(v);
                }
            }
        }
    }
    Err("its event stream ended without an answer".into())
}
