//! The companion's MCP endpoint as the bridge calls it: one HTTP client,
//! the headers every request carries (bearer token, session, protocol
//! version), the POST, GET and DELETE requests, sent only to a socket of
//! our own OS user, and failures as the text the host shows.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use spor_wire::mirror;
use url::Url;

use super::args::BridgeError;
use super::socket_owner::check;
use crate::http_body::read_prefix;
use crate::sensitive::Sensitive;

const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const LAST_EVENT_HEADER: &str = "last-event-id";

/// The MCP endpoint and the HTTP client that talks to it.
#[derive(Clone)]
pub(super) struct Mcp {
    http: reqwest::Client,
    url: Url,
}

impl Mcp {
    /// A client for the endpoint at `url`.
    pub(super) fn new(url: Url) -> Result<Self, BridgeError> {
        // No overall timeout: answers may be long SSE streams.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BridgeError::Url(e.to_string()))?;
        Ok(Self { http, url })
    }

    /// The endpoint's URL.
    pub(super) fn url(&self) -> &Url {
        &self.url
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
    pub(super) fn post(
        &self,
        token: &Sensitive<String>,
        session: Option<&str>,
        protocol: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        self.post_mirrored(token, session, protocol, HeaderMap::new(), body)
    }

    /// A POST of one message with the headers that mirror its body
    /// ([`mirrored_headers`]); a modern message's own protocol version
    /// replaces the session's.
    pub(super) fn post_mirrored(
        &self,
        token: &Sensitive<String>,
        session: Option<&str>,
        protocol: Option<&str>,
        mirrored: HeaderMap,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        let mut headers = self.headers(token, session, protocol);
        headers.extend(mirrored);
        self.http
            .post(self.url.clone())
            .headers(headers)
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
    }

    /// The GET that opens the server's own stream, resumed after `last_id`.
    pub(super) fn listen(
        &self,
        token: &Sensitive<String>,
        session: &str,
        protocol: Option<&str>,
        last_id: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut h = self.headers(token, Some(session), protocol);
        if let Some(v) = last_id.and_then(|p| HeaderValue::from_str(p).ok()) {
            h.insert(LAST_EVENT_HEADER, v);
        }
        self.http
            .get(self.url.clone())
            .headers(h)
            .header(ACCEPT, "text/event-stream")
    }

    /// The DELETE that ends `session`.
    pub(super) fn delete(
        &self,
        token: &Sensitive<String>,
        session: &str,
        protocol: Option<&str>,
    ) -> reqwest::RequestBuilder {
        self.http
            .delete(self.url.clone())
            .headers(self.headers(token, Some(session), protocol))
    }

    /// Sends `request` (built by [`Mcp::post`], [`Mcp::listen`] or
    /// [`Mcp::delete`], so it carries the token) once the socket listening
    /// at the endpoint is known to be our own user's; otherwise, or when
    /// the endpoint cannot be reached, why not, for the host.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        check(&self.url).await.map_err(|e| e.to_string())?;
        request.send().await.map_err(|e| self.unreachable(&e))
    }

    /// Why the endpoint could not be reached, for the host.
    pub(super) fn unreachable(&self, e: &reqwest::Error) -> String {
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
}

/// The headers MCP 2026-07-28 asks a modern request to mirror from its
/// body (a stdio host writes none): the protocol version, the method, the
/// name it acts on, and the arguments its tool declares in `declared`.
/// Empty for a legacy message.
pub(super) fn mirrored_headers(msg: &Value, declared: &[mirror::ParamHeader]) -> HeaderMap {
    let mut h = HeaderMap::new();
    let standard = mirror::standard_headers(msg);
    if standard.is_empty() {
        return h;
    }
    for (name, value) in standard {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Some(arguments) = msg.pointer("/params/arguments") {
        for (name, value) in mirror::param_headers(declared, arguments) {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                h.insert(n, v);
            }
        }
    }
    h
}

/// The session a response assigned, if any.
pub(super) fn session_id(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A failed answer as text for the host, with the server's own reason when
/// its body gives one.
pub(super) async fn describe_failure(status: StatusCode, resp: reqwest::Response) -> String {
    match failure(status, resp, None).await {
        Failure::Answer(_) => format!("Spor Companion answered {status}"),
        Failure::Text(t) => t,
    }
}

/// What the host gets for a failed POST.
pub(super) enum Failure {
    /// The server's own JSON-RPC error for the request, as it sent it: its
    /// code matters to the host (e.g. a protocol version the server does
    /// not speak makes a 2026-07-28 host fall back to an older one).
    Answer(Vec<u8>),
    /// Why it failed, in words.
    Text(String),
}

/// A failed answer for the host: the body itself when it is a JSON-RPC
/// error answering request `id`, otherwise text with the server's reason.
pub(super) async fn failure(
    status: StatusCode,
    resp: reqwest::Response,
    id: Option<&Value>,
) -> Failure {
    let mut resp = resp;
    let buf = read_prefix(&mut resp, 64 * 1024, |_| false)
        .await
        .unwrap_or_default();
    let json: Value = serde_json::from_slice(&buf).unwrap_or(Value::Null);
    let answers = id.is_some_and(|id| json.get("id") == Some(id))
        && json.get("jsonrpc").is_some()
        && json.pointer("/error/code").is_some_and(Value::is_i64);
    if answers {
        if let Ok(line) = serde_json::to_vec(&json) {
            return Failure::Answer(line);
        }
    }
    let detail = json
        .pointer("/error/message")
        .or_else(|| json.get("error_description"))
        .or_else(|| json.get("error"))
        .and_then(Value::as_str)
        .map(|s| s.chars().take(300).collect::<String>());
    Failure::Text(match detail {
        Some(d) => format!("Spor Companion answered {status}: {d}"),
        None => format!("Spor Companion answered {status}"),
    })
}
