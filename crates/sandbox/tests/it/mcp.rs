//! The `/mcp` endpoint over raw HTTP/1.1: sessions, auth, tools, SSE streaming
//! and a server→client request, against the real binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::{json, Value};

use crate::support::{assert_error, assert_unauthorized, Response, Sandbox, TIMEOUT};

const PROTOCOL: &str = "2025-06-18";
const ALICE: &[&str] = &[
    "--name",
    "Alice",
    "--email",
    "alice@example.com",
    "--org",
    "acme",
];
const BOB: &[&str] = &[
    "--name",
    "Bob",
    "--email",
    "bob@example.com",
    "--org",
    "beta",
];

// ---------------------------------------------------------------------------
// A streaming HTTP/1.1 client that reads SSE events as they arrive.

/// A response whose body is read incrementally.
struct Streaming {
    status: u16,
    headers: Vec<(String, String)>,
    body: BufReader<Box<dyn Read + Send>>,
}

impl Streaming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next SSE event's data parsed as JSON; skips comments and events
    /// without data (priming); `None` once the stream ends.
    fn next_message(&mut self) -> Option<Value> {
        let mut data: Option<String> = None;
        loop {
            let mut line = String::new();
            let n = self.body.read_line(&mut line).expect("read SSE line");
            if n == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                match data.take() {
                    Some(d) if !d.is_empty() => {
                        return Some(
                            serde_json::from_str(&d)
                                .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {d}")),
                        )
                    }
                    _ => continue,
                }
            }
            if let Some(rest) = line.strip_prefix("data:") {
                let rest = rest.strip_prefix(' ').unwrap_or(rest);
                let d = data.get_or_insert_with(String::new);
                if !d.is_empty() {
                    d.push('\n');
                }
                d.push_str(rest);
            }
            // `id:`, `retry:`, `event:` and `:` comments carry nothing we check.
        }
    }

    /// Reads the rest of the body into a plain response.
    fn finish(mut self) -> Response {
        let mut body = Vec::new();
        self.body.read_to_end(&mut body).expect("read body");
        Response {
            status: self.status,
            headers: self.headers,
            body,
        }
    }
}

/// Decodes `Transfer-Encoding: chunked` as the bytes arrive.
struct Dechunk<R> {
    inner: R,
    remaining: usize,
    after_chunk: bool,
    done: bool,
}

impl<R: BufRead> Read for Dechunk<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut line = String::new();
            if self.after_chunk {
                self.inner.read_line(&mut line)?; // CRLF ending the previous chunk
                line.clear();
                self.after_chunk = false;
            }
            if self.inner.read_line(&mut line)? == 0 {
                self.done = true;
                return Ok(0);
            }
            let size = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size")
            })?;
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.remaining = size;
        }
        let want = buf.len().min(self.remaining);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= n;
        if self.remaining == 0 {
            self.after_chunk = true;
        }
        Ok(n)
    }
}

/// Sends one request (`Connection: close`) and returns once the headers arrived.
fn send(
    addr: SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Streaming {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    (&stream).write_all(req.as_bytes()).expect("write request");

    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let body: Box<dyn Read + Send> =
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            Box::new(Dechunk {
                inner: reader,
                remaining: 0,
                after_chunk: false,
                done: false,
            })
        } else if let Some(len) = find("content-length").and_then(|v| v.parse::<u64>().ok()) {
            Box::new(reader.take(len))
        } else {
            Box::new(reader)
        };
    Streaming {
        status,
        headers,
        body: BufReader::new(body),
    }
}

// ---------------------------------------------------------------------------
// An MCP client session on top of it.

struct Client {
    addr: SocketAddr,
    auth: String,
    session: String,
}

fn accept_both() -> (&'static str, &'static str) {
    ("Accept", "application/json, text/event-stream")
}

fn initialize_body() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": { "elicitation": {} },
            "clientInfo": { "name": "spor-sandbox-it", "version": "0" }
        }
    })
}

/// POSTs `initialize` without a session id.
fn post_initialize(addr: SocketAddr, auth: Option<&str>) -> Streaming {
    let mut headers = vec![accept_both(), ("Content-Type", "application/json")];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    send(addr, "POST", &headers, Some(&initialize_body()))
}

impl Client {
    /// Initializes a session (declaring elicitation support) and confirms it.
    fn connect(sb: &Sandbox, token: &str) -> Self {
        let (client, result) = Self::connect_with_result(sb, token);
        assert_eq!(result["serverInfo"]["name"], "spor-sandbox");
        client
    }

    fn connect_with_result(sb: &Sandbox, token: &str) -> (Self, Value) {
        let auth = format!("Bearer {token}");
        let mut resp = post_initialize(sb.addr, Some(&auth));
        assert_eq!(resp.status, 200, "initialize: {:?}", resp.headers);
        let session = resp
            .header("mcp-session-id")
            .expect("Mcp-Session-Id on initialize")
            .to_owned();
        let reply = resp.next_message().expect("initialize reply");
        assert_eq!(reply["id"], 0, "{reply}");
        let client = Self {
            addr: sb.addr,
            auth,
            session,
        };
        let ack = client.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert_eq!(ack.status, 202);
        (client, reply["result"].clone())
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        vec![
            accept_both(),
            ("Content-Type", "application/json"),
            ("Authorization", self.auth.as_str()),
            ("Mcp-Session-Id", self.session.as_str()),
            ("MCP-Protocol-Version", PROTOCOL),
        ]
    }

    /// POSTs one JSON-RPC message in this session.
    fn post(&self, msg: &Value) -> Streaming {
        send(self.addr, "POST", &self.headers(), Some(msg))
    }

    /// The same session id presented with someone else's token.
    fn as_token(&self, token: &str) -> Self {
        Self {
            addr: self.addr,
            auth: format!("Bearer {token}"),
            session: self.session.clone(),
        }
    }

    /// Sends a request and returns its `result`, skipping other messages.
    fn request(&self, id: u64, method: &str, params: Value) -> Value {
        let mut resp = self.post(&json!({
            "jsonrpc": "2.0", "id": id, "method": method, "params": params
        }));
        assert_eq!(resp.status, 200, "{method}: {:?}", resp.headers);
        assert_eq!(resp.header("content-type"), Some("text/event-stream"));
        reply_to(&mut resp, id)
    }

    /// `tools/call` and its result.
    fn call(&self, id: u64, tool: &str, arguments: Value) -> Value {
        self.request(
            id,
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
        )
    }

    /// Opens the standalone GET stream of this session.
    fn open_stream(&self) -> Streaming {
        let headers = [
            ("Accept", "text/event-stream"),
            ("Authorization", self.auth.as_str()),
            ("Mcp-Session-Id", self.session.as_str()),
            ("MCP-Protocol-Version", PROTOCOL),
        ];
        send(self.addr, "GET", &headers, None)
    }

    fn delete(&self) -> Response {
        let headers = [
            ("Authorization", self.auth.as_str()),
            ("Mcp-Session-Id", self.session.as_str()),
            ("MCP-Protocol-Version", PROTOCOL),
        ];
        send(self.addr, "DELETE", &headers, None).finish()
    }
}

/// Reads messages until the response to `id`; returns its `result`.
fn reply_to(resp: &mut Streaming, id: u64) -> Value {
    loop {
        let msg = resp.next_message().expect("stream ended before the reply");
        if msg["id"] == id && msg.get("method").is_none() {
            assert!(msg.get("error").is_none(), "JSON-RPC error: {msg}");
            return msg["result"].clone();
        }
    }
}

/// The single text content of a tool result.
fn text_of(result: &Value) -> &str {
    let content = result["content"].as_array().expect("content array");
    assert_eq!(content.len(), 1, "{result}");
    assert_eq!(content[0]["type"], "text");
    content[0]["text"].as_str().expect("text")
}

/// The structured node of a successful tool result, checked against its text twin.
fn node_of(result: &Value) -> Value {
    assert_eq!(result["isError"], false, "{result}");
    let from_text: Value = serde_json::from_str(text_of(result)).expect("text is JSON");
    assert_eq!(from_text, result["structuredContent"]);
    result["structuredContent"].clone()
}

fn person_of(sb: &Sandbox, token: &str) -> String {
    let me = sb.get("/v1/me", token).json();
    me["person"].as_str().expect("bound person").to_owned()
}

// ---------------------------------------------------------------------------
// Sessions and auth.

#[test]
fn initialize_opens_a_session_with_server_info_and_instructions() {
    let sb = Sandbox::start();
    let token = sb.mint(ALICE);
    let mut resp = post_initialize(sb.addr, Some(&format!("Bearer {token}")));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let session = resp
        .header("mcp-session-id")
        .expect("session id")
        .to_owned();
    assert!(session.len() >= 16, "{session}");
    let reply = resp.next_message().expect("reply");
    let result = &reply["result"];
    assert_eq!(result["serverInfo"]["name"], "spor-sandbox");
    assert_eq!(result["protocolVersion"], PROTOCOL);
    assert!(result["capabilities"]["tools"].is_object(), "{result}");
    assert!(
        result["instructions"]
            .as_str()
            .is_some_and(|s| s.contains("author")),
        "{result}"
    );
}

#[test]
fn tools_list_has_the_six_tools_with_schemas() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let result = client.request(1, "tools/list", json!({}));
    let tools = result["tools"].as_array().expect("tools");
    let mut names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "ask_user",
            "capture",
            "get_node",
            "put_node",
            "query_graph",
            "slow_count"
        ]
    );
    let schema = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["inputSchema"].clone())
            .expect("tool")
    };
    let put = schema("put_node");
    assert_eq!(put["type"], "object");
    assert_eq!(put["required"], json!(["title"]));
    for field in ["kind", "title", "body", "tags", "author"] {
        assert!(put["properties"][field].is_object(), "{field}: {put}");
    }
    assert_eq!(put["properties"]["kind"]["default"], "note");
    assert_eq!(schema("get_node")["required"], json!(["id"]));
    assert_eq!(schema("capture")["required"], json!(["text"]));
    assert_eq!(schema("ask_user")["required"], json!(["question"]));
    let slow = schema("slow_count");
    let mut required: Vec<&str> = slow["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["delay_ms", "steps"]);
    assert_eq!(slow["properties"]["steps"]["maximum"], 20);
    assert_eq!(schema("query_graph")["properties"]["limit"]["maximum"], 100);
}

#[test]
fn every_mcp_method_without_a_live_token_is_401() {
    let sb = Sandbox::start();
    let token = sb.mint(ALICE);
    let client = Client::connect(&sb, &token);

    assert_unauthorized(
        &post_initialize(sb.addr, None).finish(),
        "missing bearer token",
    );
    assert_unauthorized(
        &post_initialize(sb.addr, Some("Bearer spor_pat_nope")).finish(),
        "invalid token",
    );
    assert_unauthorized(
        &post_initialize(sb.addr, Some("Basic YWxpY2U6eA==")).finish(),
        "missing bearer token",
    );
    let bad = client.as_token("spor_pat_nope");
    assert_unauthorized(
        &bad.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .finish(),
        "invalid token",
    );
    assert_unauthorized(&bad.open_stream().finish(), "invalid token");
    assert_unauthorized(&bad.delete(), "invalid token");

    // A revoked token stops working on the session it opened.
    let me_tokens = sb.get("/v1/me/tokens", &token).json();
    let prefix = me_tokens["tokens"][0]["hash_prefix"]
        .as_str()
        .expect("prefix")
        .to_owned();
    assert_eq!(
        sb.delete(&format!("/v1/me/tokens/{prefix}"), &token).status,
        200
    );
    assert_unauthorized(
        &client
            .post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
            .finish(),
        "token revoked",
    );
}

#[test]
fn unknown_session_id_is_404() {
    let sb = Sandbox::start();
    let token = sb.mint(ALICE);
    let client = Client {
        addr: sb.addr,
        auth: format!("Bearer {token}"),
        session: "00000000-0000-4000-8000-000000000000".to_owned(),
    };
    let resp = client
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .finish();
    assert_eq!(assert_error(&resp, 404, "not_found"), "no such session");
    assert_eq!(
        assert_error(&client.open_stream().finish(), 404, "not_found"),
        "no such session"
    );
}

#[test]
fn a_session_is_bound_to_the_person_who_opened_it() {
    let sb = Sandbox::start();
    let alice = sb.mint(ALICE);
    let bob = sb.mint(BOB);
    let client = Client::connect(&sb, &alice);

    let hijack = client.as_token(&bob);
    let resp = hijack
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .finish();
    assert_eq!(assert_error(&resp, 404, "not_found"), "no such session");
    assert_eq!(
        assert_error(&hijack.delete(), 404, "not_found"),
        "no such session"
    );

    // Another token of the same person may use it; the session survived.
    let alice2 = sb.mint(ALICE);
    let same_person = client.as_token(&alice2);
    let tools = same_person.request(2, "tools/list", json!({}));
    assert_eq!(tools["tools"].as_array().map(Vec::len), Some(6));
}

#[test]
fn delete_ends_the_session() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let resp = client.delete();
    assert_eq!(resp.status, 202, "{}", resp.text());
    let after = client
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .finish();
    assert_eq!(assert_error(&after, 404, "not_found"), "no such session");
}

// ---------------------------------------------------------------------------
// Tools.

#[test]
fn put_node_stamps_the_author_from_the_token_and_ignores_the_payload_author() {
    let sb = Sandbox::start();
    let token = sb.mint(ALICE);
    let person = person_of(&sb, &token);
    let client = Client::connect(&sb, &token);
    let result = client.call(
        1,
        "put_node",
        json!({
            "title": "  Launch plan  ",
            "body": "Ship it",
            "tags": ["q3", "plan"],
            "author": { "person": "per_mallory", "name": "Mallory" },
        }),
    );
    let node = node_of(&result);
    let id = node["id"].as_str().expect("id");
    assert!(
        id.len() == 18 && id.starts_with("n_") && id[2..].chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(node["author"], person.as_str());
    assert_eq!(node["author_name"], "Alice");
    assert_eq!(node["author_email"], "alice@example.com");
    assert_eq!(node["org"], "acme");
    assert_eq!(node["kind"], "note");
    assert_eq!(node["title"], "Launch plan");
    assert_eq!(node["body"], "Ship it");
    assert_eq!(node["tags"], json!(["q3", "plan"]));
    assert!(node["created"].as_str().is_some_and(|s| s.ends_with('Z')));
}

#[test]
fn put_node_rejects_a_blank_title_as_a_tool_error() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let result = client.call(1, "put_node", json!({ "title": "   " }));
    assert_eq!(result["isError"], true);
    assert_eq!(text_of(&result), "title must not be blank");
    let all = client.call(2, "query_graph", json!({}));
    assert_eq!(all["structuredContent"]["count"], 0, "nothing stored");
}

#[test]
fn unbound_token_writes_nodes_without_an_author() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(&["--unbound", "--org", "acme"]));
    let node = node_of(&client.call(1, "put_node", json!({ "title": "anon", "author": "x" })));
    assert_eq!(node["author"], Value::Null);
    assert_eq!(node["author_name"], Value::Null);
}

#[test]
fn get_node_returns_the_stored_node() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let stored = node_of(&client.call(1, "put_node", json!({ "kind": "idea", "title": "T" })));
    let fetched = node_of(&client.call(2, "get_node", json!({ "id": stored["id"] })));
    assert_eq!(fetched, stored);
    assert_eq!(fetched["kind"], "idea");
}

#[test]
fn get_node_of_an_unknown_id_is_a_tool_error() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let result = client.call(1, "get_node", json!({ "id": "n_0000000000000000" }));
    assert_eq!(result["isError"], true);
    assert_eq!(text_of(&result), "no such node");
}

#[test]
fn query_graph_matches_title_or_body_case_insensitively_newest_first() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let first = node_of(&client.call(1, "put_node", json!({ "title": "Ärger mit SPOR" })));
    node_of(&client.call(
        2,
        "put_node",
        json!({ "title": "unrelated", "body": "nothing" }),
    ));
    let third = node_of(&client.call(3, "capture", json!({ "text": "about spor\nmore" })));

    let found = client.call(4, "query_graph", json!({ "query": "Spor" }));
    assert_eq!(found["isError"], false);
    let found = &found["structuredContent"];
    assert_eq!(found["count"], 2);
    assert_eq!(found["nodes"], json!([third, first]));

    let unicode = client.call(5, "query_graph", json!({ "query": "ärger" }));
    assert_eq!(unicode["structuredContent"]["nodes"], json!([first]));

    let kind = client.call(6, "query_graph", json!({ "query": "spor", "kind": "note" }));
    assert_eq!(kind["structuredContent"]["nodes"], json!([first]));

    let limited = client.call(7, "query_graph", json!({ "limit": 1 }));
    assert_eq!(limited["structuredContent"]["nodes"], json!([third]));

    let too_many = client.call(8, "query_graph", json!({ "limit": 101 }));
    assert_eq!(too_many["isError"], true);
    assert_eq!(text_of(&too_many), "limit must be between 1 and 100");
}

#[test]
fn another_orgs_token_cannot_see_the_node() {
    let sb = Sandbox::start();
    let alice = Client::connect(&sb, &sb.mint(ALICE));
    let node = node_of(&alice.call(1, "put_node", json!({ "title": "secret plan" })));

    let bob = Client::connect(&sb, &sb.mint(BOB));
    let got = bob.call(1, "get_node", json!({ "id": node["id"] }));
    assert_eq!(got["isError"], true);
    assert_eq!(text_of(&got), "no such node");
    let found = bob.call(2, "query_graph", json!({ "query": "secret" }));
    assert_eq!(found["structuredContent"]["count"], 0);
}

#[test]
fn capture_stores_a_capture_node_titled_by_its_first_line() {
    let sb = Sandbox::start();
    let token = sb.mint(ALICE);
    let person = person_of(&sb, &token);
    let client = Client::connect(&sb, &token);
    let long_line = "é".repeat(100);
    let text = format!("\n  {long_line}\nsecond line");
    let node = node_of(&client.call(1, "capture", json!({ "text": text, "source": "clipboard" })));
    assert_eq!(node["kind"], "capture");
    assert_eq!(node["title"], "é".repeat(80));
    assert_eq!(node["body"], text);
    assert_eq!(node["source"], "clipboard");
    assert_eq!(node["author"], person.as_str());
}

// ---------------------------------------------------------------------------
// Streaming and server→client requests.

#[test]
fn slow_count_streams_progress_notifications_before_the_result() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let mut resp = client.post(&json!({
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "slow_count",
            "arguments": { "steps": 3, "delay_ms": 20 },
            "_meta": { "progressToken": "count-1" }
        }
    }));
    assert_eq!(resp.status, 200);
    let mut seen = Vec::new();
    while let Some(msg) = resp.next_message() {
        seen.push(msg);
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    for (i, note) in seen[..3].iter().enumerate() {
        assert_eq!(note["method"], "notifications/progress", "{note}");
        assert_eq!(note["params"]["progressToken"], "count-1");
        assert_eq!(note["params"]["progress"], json!(i as f64 + 1.0));
        assert_eq!(note["params"]["total"], json!(3.0));
    }
    assert_eq!(seen[3]["id"], 7);
    assert_eq!(text_of(&seen[3]["result"]), "counted 3");
}

#[test]
fn slow_count_without_a_progress_token_sends_only_the_result() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let mut resp = client.post(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "slow_count", "arguments": { "steps": 2, "delay_ms": 0 } }
    }));
    let only = resp.next_message().expect("result");
    assert_eq!(text_of(&only["result"]), "counted 2");
    assert!(resp.next_message().is_none());

    let bad = client.call(2, "slow_count", json!({ "steps": 21, "delay_ms": 0 }));
    assert_eq!(bad["isError"], true);
    assert_eq!(text_of(&bad), "steps must be between 1 and 20");
}

/// Starts `ask_user`, answers its elicitation with `answer`, returns the tool's text.
fn ask_and_answer(answer: Value) -> String {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let mut stream = client.open_stream();
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));

    let mut call = client.post(&json!({
        "jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": { "name": "ask_user", "arguments": { "question": "Favourite colour?" } }
    }));
    assert_eq!(call.status, 200);

    // rmcp sends server→client requests on the standalone GET stream.
    let ask = stream.next_message().expect("elicitation request");
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    assert_eq!(ask["params"]["message"], "Favourite colour?");
    let schema = &ask["params"]["requestedSchema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["properties"]["answer"]["type"], "string");
    assert_eq!(schema["required"], json!(["answer"]));

    let reply = client.post(&json!({ "jsonrpc": "2.0", "id": ask["id"], "result": answer }));
    assert_eq!(reply.status, 202);

    let result = reply_to(&mut call, 9);
    assert_eq!(result["isError"], false, "{result}");
    text_of(&result).to_owned()
}

#[test]
fn ask_user_returns_the_answer_to_its_elicitation_request() {
    let text = ask_and_answer(json!({ "action": "accept", "content": { "answer": "blue" } }));
    assert_eq!(text, "answer: blue");
}

#[test]
fn ask_user_reports_a_declined_elicitation() {
    assert_eq!(ask_and_answer(json!({ "action": "decline" })), "declined");
}

#[test]
fn sigterm_ends_open_mcp_streams_and_exits_cleanly() {
    let sb = Sandbox::start();
    let client = Client::connect(&sb, &sb.mint(ALICE));
    let mut stream = client.open_stream();
    assert_eq!(stream.status, 200);
    let (status, _dir) = sb.terminate();
    assert!(status.success(), "{status:?}");
    assert!(stream.next_message().is_none());
}

// ---------------------------------------------------------------------------
// Faults.

#[test]
fn fault_mcp_401_rejects_every_mcp_request_but_not_rest() {
    let sb = Sandbox::start_with_env(&[("SPOR_SANDBOX_FAULTS", "mcp-401")]);
    let token = sb.mint(ALICE);
    let resp = post_initialize(sb.addr, Some(&format!("Bearer {token}"))).finish();
    assert_unauthorized(&resp, "unauthorized (injected fault mcp-401)");
    assert_eq!(sb.get("/v1/me", &token).status, 200);
}

#[test]
fn fault_mcp_500_fails_every_mcp_post() {
    let sb = Sandbox::start_with_env(&[("SPOR_SANDBOX_FAULTS", "mcp-500")]);
    let token = sb.mint(ALICE);
    let resp = post_initialize(sb.addr, Some(&format!("Bearer {token}"))).finish();
    assert_eq!(
        assert_error(&resp, 500, "internal"),
        "internal server error (injected fault mcp-500)"
    );
    // Only POSTs fail: a GET still reaches the transport (no session → 400).
    let get = send(
        sb.addr,
        "GET",
        &[
            ("Accept", "text/event-stream"),
            ("Authorization", &format!("Bearer {token}")),
        ],
        None,
    )
    .finish();
    assert_eq!(get.status, 400, "{}", get.text());
}
