//! The MCP workload: each simulated client opens a session (`initialize`,
//! `notifications/initialized`) and then calls a trivial tool in a loop;
//! every answer is checked, not just its status.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};

/// The MCP protocol version the workload speaks.
const PROTOCOL_VERSION: &str = "2025-06-18";
/// One call may take at most this long before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a workload sends its calls, and how it authenticates.
#[derive(Clone)]
pub struct Target {
    /// Short name for the report.
    pub name: &'static str,
    /// The `/mcp` URL.
    pub url: String,
    /// The bearer token the client sends, if any (nginx injects its own).
    pub bearer: Option<String>,
    http: reqwest::Client,
}

impl Target {
    /// A target with its own connection pool.
    pub fn new(name: &'static str, url: String, bearer: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            name,
            url,
            bearer,
            http,
        })
    }

    fn headers(&self, session: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(b) = &self.bearer {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {b}")) {
                h.insert(AUTHORIZATION, v);
            }
        }
        if let Some(s) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
            h.insert("mcp-session-id", s);
            h.insert(
                "mcp-protocol-version",
                HeaderValue::from_static(PROTOCOL_VERSION),
            );
        }
        h
    }

    /// Opens a session the way an MCP host does.
    pub async fn open(&self, client_no: usize) -> anyhow::Result<Session> {
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": format!("spor-bench-{client_no}"), "version": "1" }
            }
        });
        let resp = self
            .http
            .post(&self.url)
            .headers(self.headers(None))
            .body(init.to_string())
            .send()
            .await
            .with_context(|| format!("{}: initialize", self.name))?;
        let status = resp.status();
        let id = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("{}: initialize answered {status}: {body}", self.name);
        }
        let id = id.ok_or_else(|| anyhow!("{}: initialize gave no session id", self.name))?;
        let answer = find_answer(&body, 0)?;
        if answer["result"]["protocolVersion"].as_str().is_none() {
            bail!(
                "{}: initialize answer has no protocolVersion: {answer}",
                self.name
            );
        }
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let resp = self
            .http
            .post(&self.url)
            .headers(self.headers(Some(&id)))
            .body(note.to_string())
            .send()
            .await?;
        if resp.status().as_u16() != 202 {
            bail!(
                "{}: notifications/initialized answered {}",
                self.name,
                resp.status()
            );
        }
        Ok(Session {
            target: self.clone(),
            id,
        })
    }
}

/// One simulated client's MCP session.
#[derive(Clone)]
pub struct Session {
    target: Target,
    id: String,
}

impl Session {
    /// The session id the server assigned.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The same session, presenting another bearer token (e.g. the access
    /// token of a refreshed pair of the same grant).
    pub fn with_bearer(&self, bearer: &str) -> Session {
        let mut target = self.target.clone();
        target.bearer = Some(bearer.to_string());
        Session {
            target,
            id: self.id.clone(),
        }
    }

    /// Calls the trivial tool once and returns only the HTTP status (for
    /// calls that are expected to be refused).
    pub async fn call_status(&self, rpc_id: u64) -> anyhow::Result<u16> {
        let resp = self.send_call(rpc_id).await?;
        let status = resp.status().as_u16();
        resp.bytes().await?;
        Ok(status)
    }

    /// Calls the trivial tool once and checks the answer.
    pub async fn call(&self, rpc_id: u64) -> anyhow::Result<()> {
        let resp = self.send_call(rpc_id).await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("HTTP {status}: {}", clip(&text));
        }
        let answer = find_answer(&text, rpc_id)?;
        if answer["result"]["content"][0]["text"] != "counted 1"
            || answer["result"]["isError"] == true
        {
            bail!("unexpected tool result: {}", clip(&answer.to_string()));
        }
        Ok(())
    }

    /// POSTs one call of the trivial tool on this session.
    async fn send_call(&self, rpc_id: u64) -> reqwest::Result<reqwest::Response> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{rpc_id},"method":"tools/call","params":{{"name":"slow_count","arguments":{{"steps":1,"delay_ms":0}}}}}}"#
        );
        self.target
            .http
            .post(&self.target.url)
            .headers(self.target.headers(Some(&self.id)))
            .body(body)
            .send()
            .await
    }

    /// Ends the session (`DELETE`).
    pub async fn close(&self) {
        let _ = self
            .target
            .http
            .delete(&self.target.url)
            .headers(self.target.headers(Some(&self.id)))
            .send()
            .await;
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The JSON-RPC answer with `id` in a JSON or SSE body.
fn find_answer(body: &str, id: u64) -> anyhow::Result<Value> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(trimmed)?;
        if v["id"] == id {
            return Ok(v);
        }
        bail!("answer with the wrong id: {}", clip(body));
    }
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
            if v["id"] == id {
                return Ok(v);
            }
        }
    }
    bail!("no answer with id {id} in: {}", clip(body))
}

/// What one chunk of calls measured.
#[derive(Default)]
pub struct Chunk {
    /// Latency of every successful call, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Failed calls.
    pub errors: usize,
    /// The first few failures, for the report.
    pub samples: Vec<String>,
    /// Wall time of the chunk.
    pub elapsed: Duration,
}

/// Makes `calls` tool calls spread over `sessions` (one task each, each
/// waiting for its answer before the next call).
pub async fn run_chunk(sessions: &[Session], calls: usize, first_id: u64) -> Chunk {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(sessions.len());
    for s in sessions {
        let s = s.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut part = Chunk::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= calls {
                    break;
                }
                let t = Instant::now();
                match tokio::time::timeout(CALL_TIMEOUT, s.call(first_id + n as u64)).await {
                    Ok(Ok(())) => part
                        .latencies_us
                        .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    Ok(Err(e)) => part.fail(format!("{e:#}")),
                    Err(_) => part.fail(format!("no answer within {} s", CALL_TIMEOUT.as_secs())),
                }
            }
            part
        }));
    }
    let mut all = Chunk::default();
    for t in tasks {
        match t.await {
            Ok(part) => all.absorb(part),
            Err(e) => all.fail(format!("worker failed: {e}")),
        }
    }
    all.elapsed = started.elapsed();
    all
}

impl Chunk {
    fn fail(&mut self, why: String) {
        self.errors += 1;
        if self.samples.len() < 3 {
            self.samples.push(why);
        }
    }

    /// Adds another chunk's measurements to this one.
    pub fn absorb(&mut self, other: Chunk) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        for s in other.samples {
            if self.samples.len() < 3 {
                self.samples.push(s);
            }
        }
        self.elapsed += other.elapsed;
    }
}
