//! The Spor REST client (`/v1/me`, org choices, token list and revoke), the
//! rules for which server URLs a PAT may be sent to, hosted Spor's addresses
//! (`hosted`) and what each server last answered (`contact`).

mod contact;
mod hosted;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::host::is_on_this_machine;
use crate::http_body::{read_prefix, read_whole, BodyError};
use crate::sensitive::Sensitive;
use crate::sse;
use crate::store::RejectReason;

pub use contact::{Contact, ContactSource, Contacts};
pub use hosted::{HostedSpor, HostedTable, HOSTED_ENV, HOSTED_MCP, HOSTED_REST};

/// Reads why a server refused a token from its error body (Spor's
/// `{"error":{"code","message"}}`, whose code or message names an expired
/// token); anything unreadable counts as refused. The one place a refusal
/// is classified: the REST client and the gateway both read bodies here.
pub fn reject_reason(body: &[u8]) -> RejectReason {
    let text = match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(env) => format!("{} {}", env.error.code, env.error.message),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    if text.to_ascii_lowercase().contains("expired") {
        RejectReason::Expired
    } else {
        RejectReason::Refused
    }
}

/// The MCP revision a server that refuses the `initialize` handshake is
/// probed with.
const MODERN_MCP: &str = "2026-07-28";
/// Most of an MCP server's `initialize` answer read while probing it.
const PROBE_LIMIT: usize = 1024 * 1024;
/// How long a generic server (no token, nothing to wake) gets to answer a probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors talking to an upstream. Messages name the cause, never the token.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The server URL is not one we will send a token to.
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    /// Could not connect.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("no answer from {url} within {secs} s")]
    Timeout {
        /// Where.
        url: String,
        /// How long it was given.
        secs: u64,
    },
    /// The server refused the token (401/403).
    #[error("the server rejected the token: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's own explanation.
        message: String,
        /// Whether it said the token expired, read from its answer.
        reason: RejectReason,
    },
    /// 404 from the server.
    #[error("not found on the server: {0}")]
    NotFound(String),
    /// 429 from the server.
    #[error("the server is rate limiting requests{}", retry_after.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    RateLimited {
        /// Seconds to wait, if given.
        retry_after: Option<u64>,
    },
    /// Any other error status.
    #[error("the server failed with HTTP {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's message, if any.
        message: String,
    },
    /// The answer was not what the contract says.
    #[error("unexpected answer from the server: {0}")]
    BadResponse(String),
}

/// `GET /v1/me`.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    /// Person id, null when unbound.
    pub person: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the token maps to a person.
    pub bound: bool,
    /// Org admin.
    #[serde(default)]
    pub is_admin: bool,
    /// Organization slug the token is scoped to.
    pub org: String,
}

/// One entry of `GET /v1/me/org-choices`.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgChoice {
    /// Slug.
    pub slug: String,
    /// Display label.
    #[serde(default)]
    pub label: Option<String>,
    /// Whether this is the person's default org.
    #[serde(default)]
    pub default: bool,
}

/// Where a server's list of organizations comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgSource {
    /// A live list from the identity provider: every org the person is in.
    Idp,
    /// Only the org the token is bound to.
    Bound,
    /// A source this version does not know; treated like `bound`.
    #[serde(other)]
    Other,
}

/// `GET /v1/me/org-choices`.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgChoices {
    /// The orgs.
    pub org_choices: Vec<OrgChoice>,
    /// Where the list comes from.
    pub source: OrgSource,
}

/// One entry of `GET /v1/me/tokens`. Spor's rows also name the person
/// (`person`, `name`, `email`); older servers and stand-ins leave them out,
/// so everything but the hash prefix is optional and unknown fields pass.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenInfo {
    /// Leading hex characters of the token's hash; Spor's id for it.
    pub hash_prefix: String,
    /// The person the token belongs to, when the server says.
    #[serde(default)]
    pub person: Option<String>,
    /// That person's name.
    #[serde(default)]
    pub name: Option<String>,
    /// That person's email.
    #[serde(default)]
    pub email: Option<String>,
    /// The label given when it was minted.
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Deserialize)]
struct TokenList {
    tokens: Vec<TokenInfo>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Checks a server URL and returns it normalized (no trailing slash). HTTPS
/// anywhere; plain HTTP only to this machine, so a PAT never crosses a
/// network in clear text.
pub fn normalize_server_url(raw: &str) -> Result<String, UpstreamError> {
    let raw = raw.trim();
    let url =
        Url::parse(raw).map_err(|_| UpstreamError::InvalidUrl(format!("{raw:?} is not a URL")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UpstreamError::InvalidUrl(
            "credentials in the URL are not allowed".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(UpstreamError::InvalidUrl(
            "the URL must not have a query or fragment".into(),
        ));
    }
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => {}
        ("http", Some(h)) if is_on_this_machine(&h) => {}
        ("http", Some(_)) => return Err(UpstreamError::InvalidUrl(
            "plain http is only allowed for this machine (127.0.0.1, localhost, [::1]); use https"
                .into(),
        )),
        _ => {
            return Err(UpstreamError::InvalidUrl(
                "the URL must start with https://".into(),
            ))
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A request that got no HTTP answer within `limit`: timed out, or could
/// not connect or send.
fn transport_error(url: &str, e: &reqwest::Error, limit: Duration) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout {
            url: url.to_string(),
            secs: limit.as_secs(),
        }
    } else {
        UpstreamError::Unreachable {
            url: url.to_string(),
            reason: if e.is_connect() {
                "connection failed".into()
            } else {
                "request failed".into()
            },
        }
    }
}

/// Largest REST answer read (`/v1/me`, org choices, the token list are a
/// few hundred bytes); a larger one is refused, never buffered whole.
pub const MAX_REST_BODY: usize = 1024 * 1024;
/// How much of an error answer is read to learn the server's reason.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Connect bound of REST calls: the edge of a sleeping hosted graph still
/// accepts connections at once, so only the answer is waited for.
const REST_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-call bound of REST calls (headers and body). Hosted Spor suspends
/// an idle organization's graph and the next request wakes it, which takes
/// up to about a minute; this leaves room for that and a slow network.
pub const DEFAULT_WAKE_TIMEOUT: Duration = Duration::from_secs(90);
/// Overrides [`DEFAULT_WAKE_TIMEOUT`] (whole seconds, 1 to 600), so tests
/// need not wait a minute to see the bound hold.
pub const WAKE_TIMEOUT_ENV: &str = "SPOR_COMPANION_WAKE_TIMEOUT_SECS";
/// How long a token check may take before the person is told the graph is
/// waking up, so a long wait does not look stuck. The window and the page
/// use the same 2 seconds.
pub const WAKE_NOTICE_AFTER: Duration = Duration::from_secs(2);
/// What the person reads once [`WAKE_NOTICE_AFTER`] has passed.
pub const WAKE_NOTICE: &str = "Waking your Spor graph…";

/// The REST call bound `WAKE_TIMEOUT_ENV` asks for; the default when unset
/// or not a whole number of seconds from 1 to 600.
pub fn wake_timeout(env: Option<&str>) -> Duration {
    env.and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| (1..=600).contains(s))
        .map_or(DEFAULT_WAKE_TIMEOUT, Duration::from_secs)
}

/// The stand-in `HOSTED_ENV` names as hosted Spor (`REST_URL,MCP_URL`, both
/// URLs a PAT may go to); `None` when unset or empty.
pub fn hosted_stand_in(env: Option<&str>) -> Result<Option<HostedSpor>, UpstreamError> {
    let Some(v) = env.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let (rest, mcp) = v.split_once(',').ok_or_else(|| {
        UpstreamError::InvalidUrl(format!("{HOSTED_ENV} must be REST_URL,MCP_URL"))
    })?;
    Ok(Some(HostedSpor {
        rest: normalize_server_url(rest)?,
        mcp: normalize_server_url(mcp)?,
    }))
}

/// An HTTP client for upstream REST calls, with bounded timeouts and no
/// redirects (a redirect could carry the bearer token elsewhere), with the
/// table of hosted addresses and what each server last answered.
#[derive(Debug, Clone)]
pub struct Upstream {
    http: reqwest::Client,
    timeout: Duration,
    hosted: Arc<HostedTable>,
    contacts: Contacts,
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    /// A client with the default bound (or `WAKE_TIMEOUT_ENV`'s) and the
    /// hosted table (with `HOSTED_ENV`'s stand-in first, if set).
    pub fn new() -> Self {
        let upstream = Self::with_timeout(wake_timeout(
            std::env::var(WAKE_TIMEOUT_ENV).ok().as_deref(),
        ));
        match hosted_stand_in(std::env::var(HOSTED_ENV).ok().as_deref()) {
            Ok(Some(stand_in)) => {
                tracing::info!(rest = %stand_in.rest, mcp = %stand_in.mcp, "treating a stand-in as hosted Spor ({HOSTED_ENV})");
                upstream.hosting(stand_in)
            }
            Ok(None) => upstream,
            Err(e) => {
                tracing::error!(error = %e, "{HOSTED_ENV} ignored");
                upstream
            }
        }
    }

    /// A client whose calls (headers and body) must finish within `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(REST_CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("spor-companion/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            http,
            timeout,
            hosted: Arc::new(HostedTable::default()),
            contacts: Contacts::default(),
        }
    }

    /// The same client with `stand_in` offered as hosted Spor (tests and
    /// development; see `HOSTED_ENV`).
    pub fn hosting(mut self, stand_in: HostedSpor) -> Self {
        self.hosted = Arc::new((*self.hosted).clone().with_first(stand_in));
        self
    }

    /// The hosted deployments and their MCP endpoints.
    pub fn hosted(&self) -> &HostedTable {
        &self.hosted
    }

    /// What each server last answered (shared by every clone).
    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    /// The whole-call bound of REST calls.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Remembers what asking `server` on the person's behalf showed (see
    /// [`Contacts`]); a URL refused before sending tells nothing about it.
    pub fn note<T>(
        &self,
        server: &str,
        at: crate::clock::Timestamp,
        source: ContactSource,
        result: &Result<T, UpstreamError>,
    ) {
        let (reachable, message) = match result {
            Ok(_) | Err(UpstreamError::Rejected { .. }) => (true, None),
            Err(UpstreamError::InvalidUrl(_)) => return,
            Err(e @ (UpstreamError::Unreachable { .. } | UpstreamError::Timeout { .. })) => {
                (false, Some(e.to_string()))
            }
            Err(e) => (true, Some(e.to_string())),
        };
        self.contacts.note(
            server,
            Contact {
                at,
                reachable,
                message,
                source,
            },
        );
    }

    /// The MCP endpoint of a Spor server (normalized REST base) when none
    /// is given: hosted Spor's own, else `server/mcp`.
    pub fn default_mcp_url(&self, server: &str) -> String {
        match self.hosted.mcp_for(server) {
            Some(mcp) => mcp.to_string(),
            None => format!("{server}/mcp"),
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        pat: &Sensitive<String>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let resp = req
            .bearer_auth(pat.expose())
            .send()
            .await
            .map_err(|e| transport_error(url, &e, self.timeout))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let mut resp = resp;
        let body = read_whole(&mut resp, MAX_ERROR_BODY, None)
            .await
            .unwrap_or_default();
        let (code, message) = match serde_json::from_slice::<ErrorEnvelope>(&body) {
            Ok(env) => (env.error.code, env.error.message),
            Err(_) => (String::new(), format!("HTTP {status}")),
        };
        let message = if message.is_empty() {
            code.clone()
        } else {
            message
        };
        Err(match status {
            401 | 403 => UpstreamError::Rejected {
                status,
                message,
                reason: reject_reason(&body),
            },
            404 => UpstreamError::NotFound(message),
            429 => UpstreamError::RateLimited { retry_after },
            _ => UpstreamError::Server { status, message },
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: String,
        pat: &Sensitive<String>,
    ) -> Result<T, UpstreamError> {
        let mut resp = self.send(self.http.get(&url), &url, pat).await?;
        let body = match read_whole(&mut resp, MAX_REST_BODY, None).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return Err(UpstreamError::BadResponse(format!(
                    "{url} sent an answer larger than {MAX_REST_BODY} bytes"
                )))
            }
            Err(BodyError::Broken(e)) if e.is_timeout() => {
                return Err(UpstreamError::Timeout {
                    url,
                    secs: self.timeout.as_secs(),
                })
            }
            Err(_) => {
                return Err(UpstreamError::BadResponse(format!(
                    "{url} closed the connection before finishing its answer"
                )))
            }
        };
        serde_json::from_slice(&body).map_err(|_| {
            UpstreamError::BadResponse(format!("{url} did not return the expected JSON"))
        })
    }

    /// Whether anything answers HTTP at `url` (any status counts); sends no
    /// token.
    pub async fn probe(&self, url: &str) -> Result<(), UpstreamError> {
        match tokio::time::timeout(PROBE_TIMEOUT, self.http.get(url).send()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(transport_error(url, &e, PROBE_TIMEOUT)),
            Err(_) => Err(UpstreamError::Timeout {
                url: url.to_string(),
                secs: PROBE_TIMEOUT.as_secs(),
            }),
        }
    }

    /// Who the token belongs to.
    pub async fn me(&self, server: &str, pat: &Sensitive<String>) -> Result<Me, UpstreamError> {
        self.get_json(format!("{server}/v1/me"), pat).await
    }

    /// Which organizations the person can act in.
    pub async fn org_choices(
        &self,
        server: &str,
        pat: &Sensitive<String>,
    ) -> Result<OrgChoices, UpstreamError> {
        self.get_json(format!("{server}/v1/me/org-choices"), pat)
            .await
    }

    /// Checks a token against any MCP server (for generic upstreams, which
    /// have no `/v1/me`): an `initialize` request, ending the session it
    /// opened; a server that speaks only MCP 2026-07-28 (no handshake, so
    /// it refuses `initialize`) is asked `server/discover` instead.
    pub async fn mcp_initialize(
        &self,
        mcp_url: &str,
        token: &Sensitive<String>,
    ) -> Result<(), UpstreamError> {
        let legacy = serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "spor-companion", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let refused = match self.mcp_probe(mcp_url, token, &legacy, &[]).await {
            Ok(Some(session)) => {
                // Courtesy: do not leave a session open on the server.
                let _ = self
                    .send(
                        self.http.delete(mcp_url).header("mcp-session-id", session),
                        mcp_url,
                        token,
                    )
                    .await;
                return Ok(());
            }
            Ok(None) => return Ok(()),
            Err(e @ UpstreamError::BadResponse(_)) => e,
            Err(e) => return Err(e),
        };
        let modern = serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "server/discover",
            "params": { "_meta": {
                spor_wire::peek::PROTOCOL_VERSION_META: MODERN_MCP,
                "io.modelcontextprotocol/clientInfo": { "name": "spor-companion", "version": env!("CARGO_PKG_VERSION") },
                "io.modelcontextprotocol/clientCapabilities": {},
            } },
        });
        let headers = [
            ("mcp-protocol-version", MODERN_MCP),
            ("mcp-method", "server/discover"),
        ];
        match self.mcp_probe(mcp_url, token, &modern, &headers).await {
            Ok(_) => Ok(()),
            // Neither way: say what the first, usual one found.
            Err(UpstreamError::BadResponse(_)) => Err(refused),
            Err(e) => Err(e),
        }
    }

    /// Sends one JSON-RPC request with id 1 and reads until its result;
    /// the session the answer opened, if any. A status below 500 or an
    /// answer without a result is `BadResponse`.
    async fn mcp_probe(
        &self,
        mcp_url: &str,
        token: &Sensitive<String>,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Result<Option<reqwest::header::HeaderValue>, UpstreamError> {
        let method = body["method"].as_str().unwrap_or("request");
        let mut req = self
            .http
            .post(mcp_url)
            .header(
                reqwest::header::ACCEPT,
                "application/json, text/event-stream",
            )
            .json(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let not_mcp = |status: u16| {
            UpstreamError::BadResponse(format!("{mcp_url} is not an MCP server (HTTP {status})"))
        };
        let resp = match self.send(req, mcp_url, token).await {
            Ok(r) => r,
            Err(UpstreamError::NotFound(_)) => return Err(not_mcp(404)),
            Err(UpstreamError::Server { status, .. }) if status < 500 => {
                return Err(not_mcp(status))
            }
            Err(e) => return Err(e),
        };
        let session = resp.headers().get("mcp-session-id").cloned();
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        // An SSE answer may stay open after the message we need: the first
        // complete result is enough.
        let mut resp = resp;
        let first_result = |b: &[u8]| {
            let text = String::from_utf8_lossy(b);
            text.contains("\"result\"") && text.contains("\n\n")
        };
        let bytes = read_prefix(&mut resp, PROBE_LIMIT, first_result)
            .await
            .map_err(|_| {
                UpstreamError::BadResponse(format!("{mcp_url} did not finish its {method} answer"))
            })?;
        let messages: Vec<serde_json::Value> = if is_sse {
            // Only complete events count; a cut last one is not a message.
            sse::Parser::new(PROBE_LIMIT)
                .feed(&bytes)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| serde_json::from_str(&e.data).ok())
                .collect()
        } else {
            serde_json::from_slice(&bytes).into_iter().collect()
        };
        if !messages
            .iter()
            .any(|m| m.get("id") == Some(&serde_json::json!(1)) && m.get("result").is_some())
        {
            return Err(UpstreamError::BadResponse(format!(
                "{mcp_url} is not an MCP server (no {method} result)"
            )));
        }
        Ok(session)
    }

    /// Revokes this very PAT on the server: finds its entry in the person's
    /// token list by hash and deletes it.
    pub async fn revoke_own_token(
        &self,
        server: &str,
        pat: &Sensitive<String>,
    ) -> Result<(), UpstreamError> {
        let list: TokenList = self.get_json(format!("{server}/v1/me/tokens"), pat).await?;
        let full = crate::tokens::hash(pat.expose());
        let entry = list
            .tokens
            .iter()
            .find(|t| {
                !t.hash_prefix.is_empty() && full.starts_with(&t.hash_prefix.to_ascii_lowercase())
            })
            .ok_or_else(|| {
                UpstreamError::NotFound("this token is not in the server's token list".into())
            })?;
        let url = format!("{server}/v1/me/tokens/{}", entry.hash_prefix);
        self.send(self.http.delete(&url), &url, pat).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_https_or_local_http() {
        assert_eq!(
            normalize_server_url("https://api.spor.example/").unwrap(),
            "https://api.spor.example"
        );
        assert_eq!(
            normalize_server_url("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            normalize_server_url("http://localhost:9000/base/").unwrap(),
            "http://localhost:9000/base"
        );
        for bad in [
            "http://api.spor.example",
            "ftp://x",
            "https://u:p@x",
            "https://x/?a=1",
            "not a url",
            "javascript:alert(1)",
        ] {
            assert!(normalize_server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_wake_bound_leaves_room_for_a_cold_wake_and_takes_only_sane_overrides() {
        assert!(DEFAULT_WAKE_TIMEOUT >= Duration::from_secs(75));
        assert_eq!(wake_timeout(None), DEFAULT_WAKE_TIMEOUT);
        assert_eq!(wake_timeout(Some(" 3 ")), Duration::from_secs(3));
        for bad in ["", "0", "601", "-1", "1.5", "soon"] {
            assert_eq!(wake_timeout(Some(bad)), DEFAULT_WAKE_TIMEOUT, "{bad}");
        }
    }

    #[test]
    fn a_hosted_stand_in_is_two_urls_a_pat_may_go_to() {
        assert_eq!(hosted_stand_in(None).unwrap(), None);
        assert_eq!(hosted_stand_in(Some("  ")).unwrap(), None);
        assert_eq!(
            hosted_stand_in(Some("http://127.0.0.1:9000/,http://localhost:9000/mcp")).unwrap(),
            Some(HostedSpor {
                rest: "http://127.0.0.1:9000".into(),
                mcp: "http://localhost:9000/mcp".into(),
            })
        );
        for bad in [
            "http://127.0.0.1:9000",
            "http://api.example,https://mcp.example/mcp",
            "https://api.example,http://mcp.example/mcp",
        ] {
            assert!(
                matches!(
                    hosted_stand_in(Some(bad)),
                    Err(UpstreamError::InvalidUrl(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_rows_are_read_with_or_without_the_person() {
        let documented = r#"{"tokens":[{"hash_prefix":"ab12","person":"p_1","label":"laptop",
            "name":"Ada","email":"ada@example.test","created":"2026-01-01T00:00:00Z",
            "expires":null,"expired":false,"last_used":null}],"count":1}"#;
        let list: TokenList = serde_json::from_str(documented).unwrap();
        assert_eq!(list.tokens[0].hash_prefix, "ab12");
        assert_eq!(list.tokens[0].person.as_deref(), Some("p_1"));
        assert_eq!(list.tokens[0].email.as_deref(), Some("ada@example.test"));
        let older = r#"{"tokens":[{"hash_prefix":"cd34","label":null,"org":"acme",
            "created":"2026-01-01T00:00:00Z","expires":null,"expired":false,"last_used":null}],"count":1}"#;
        let list: TokenList = serde_json::from_str(older).unwrap();
        assert_eq!(list.tokens[0].hash_prefix, "cd34");
        assert_eq!(list.tokens[0].person, None);
        assert_eq!(list.tokens[0].name, None);
    }

    #[test]
    fn only_hosted_spor_gets_another_mcp_host() {
        let u = Upstream::with_timeout(Duration::from_secs(1));
        assert_eq!(
            u.default_mcp_url("https://api.sporhq.io"),
            "https://mcp.sporhq.io/mcp"
        );
        assert_eq!(
            u.default_mcp_url("https://spor.example.com"),
            "https://spor.example.com/mcp"
        );
    }
}
