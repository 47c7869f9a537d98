//! Client ID Metadata Documents, fetched: a `client_id` that is an `https`
//! URL names the JSON document that describes the client, and the host
//! serving it vouches for it. The fetch is made on a stranger's say-so, so
//! it is narrow: `https` to a host name, public addresses only (checked on
//! the address actually connected to, see [`resolver`]), no redirects,
//! `200` and JSON only, bounded in size and time. Checked documents are kept
//! as long as their `Cache-Control` allows, within a day.

pub mod resolver;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::dns::Resolve;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::StatusCode;
use spor_wire::oauth::client_metadata::{
    cache_lifetime, check_document, check_url, ClientDocument, DocumentError, MAX_DOCUMENT,
};

use crate::clock::Timestamp;
use crate::http_body::read_prefix;
use resolver::{PublicOnly, ResolveError};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the whole fetch may take: a person waits on the consent page.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Documents kept at most; beyond that the one expiring first goes.
const MAX_CACHED: usize = 256;

/// Why a client's document could not be used. Each message names what went
/// wrong for the page the person sees; none holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL or the document breaks the rules.
    #[error("{0}")]
    Document(#[from] DocumentError),
    /// The host resolves to nothing Spor Companion may connect to.
    #[error("{0}")]
    Address(#[from] ResolveError),
    /// No connection could be made.
    #[error("its server could not be reached")]
    Unreachable,
    /// The server did not answer in time.
    #[error("its server did not answer within {} seconds", FETCH_TIMEOUT.as_secs())]
    Timeout,
    /// The server answered with a redirect, which is not followed.
    #[error("its server answered with a redirect ({0}), which Spor Companion does not follow")]
    Redirect(u16),
    /// The server answered with another status than `200`.
    #[error("its server answered {0} instead of 200")]
    Status(u16),
    /// The answer is not `application/json`.
    #[error("its server answered with {0}, not application/json")]
    NotJson(String),
    /// The answer is larger than a document may be.
    #[error("the document is larger than {} KiB", MAX_DOCUMENT / 1024)]
    TooLarge,
}

impl FetchError {
    /// A stable code for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Document(e) => e.code(),
            Self::Address(e) => e.code(),
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Redirect(_) => "redirect",
            Self::Status(_) => "bad_status",
            Self::NotJson(_) => "not_json",
            Self::TooLarge => "too_large",
        }
    }
}

struct Cached {
    document: ClientDocument,
    expires_at: Timestamp,
}

/// Fetches and keeps client documents; cheap to clone.
#[derive(Clone)]
pub struct ClientDocuments {
    http: reqwest::Client,
    /// Set when the system names an HTTPS proxy (`https_proxy`,
    /// `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY`): the proxy, usually on a
    /// private address, is the operator's choice, so it is connected to
    /// through the system resolver, and a document host this machine
    /// resolves must resolve to public addresses before each fetch.
    proxied: bool,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for ClientDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientDocuments")
            .field("proxied", &self.proxied)
            .finish_non_exhaustive()
    }
}

impl Default for ClientDocuments {
    fn default() -> Self {
        Self::new()
    }
}

/// The system's HTTPS proxy, as the usual variables name it.
fn system_proxy() -> Option<reqwest::Proxy> {
    ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .and_then(|v| reqwest::Proxy::https(v.trim()).ok())
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(FETCH_TIMEOUT)
        .user_agent(concat!("spor-companion/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
}

impl ClientDocuments {
    /// The fetcher the daemon and the app use: public addresses only, the
    /// built-in web roots, the system's proxy if it names one.
    pub fn new() -> Self {
        match system_proxy() {
            Some(proxy) => Self::through_proxy(proxy, None),
            None => Self::from_builder(builder().dns_resolver(Arc::new(PublicOnly)), false),
        }
    }

    /// A fetcher that goes through `proxy` (trusting `root` besides the
    /// built-in roots): what [`ClientDocuments::new`] makes when the system
    /// names a proxy.
    pub fn through_proxy(proxy: reqwest::Proxy, root: Option<reqwest::Certificate>) -> Self {
        let mut b = builder().proxy(proxy);
        if let Some(root) = root {
            b = b.add_root_certificate(root);
        }
        Self::from_builder(b, true)
    }

    /// A fetcher with another resolver and one more trusted root: for tests
    /// that serve documents from this machine. Only the library offers it;
    /// nothing in the shipped programs' settings reaches it.
    pub fn with_network<R: Resolve + 'static>(
        resolver: Arc<R>,
        root: Option<reqwest::Certificate>,
    ) -> Self {
        let mut b = builder().dns_resolver(resolver);
        if let Some(root) = root {
            b = b.add_root_certificate(root);
        }
        Self::from_builder(b, false)
    }

    fn from_builder(builder: reqwest::ClientBuilder, proxied: bool) -> Self {
        // Building fails only without a TLS backend, which is compiled in.
        let http = builder.build().unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            proxied,
            cache: Arc::default(),
        }
    }

    /// The checked document of `client_id` at `now`: from the cache while
    /// it is fresh, else fetched.
    pub async fn get(&self, client_id: &str, now: Timestamp) -> Result<ClientDocument, FetchError> {
        let url = check_url(client_id)?;
        if let Some(doc) = self.cached(client_id, now) {
            return Ok(doc);
        }
        if self.proxied {
            if let Some(host) = url.host_str() {
                match PublicOnly::lookup(host).await {
                    // Behind a proxy this machine may resolve no outside
                    // name at all: then the proxy decides.
                    Ok(_) | Err(ResolveError::Lookup { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let resp = self
            .http
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| sent_error(&e))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect(status.as_u16()));
        }
        if status != StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let content_type = header(&resp, CONTENT_TYPE).unwrap_or_default();
        if !is_json(&content_type) {
            let shown: String = content_type.chars().take(60).collect();
            return Err(FetchError::NotJson(if shown.is_empty() {
                "no content type".into()
            } else {
                shown
            }));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let lifetime = cache_lifetime(header(&resp, CACHE_CONTROL).as_deref());
        let mut resp = resp;
        let body = read_prefix(&mut resp, MAX_DOCUMENT + 1, |_| false)
            .await
            .map_err(|_| FetchError::Unreachable)?;
        if body.len() > MAX_DOCUMENT {
            return Err(FetchError::TooLarge);
        }
        let document = check_document(client_id, &body)?;
        if lifetime > 0 {
            self.keep(client_id, &document, now + lifetime as i64);
        }
        Ok(document)
    }

    fn cached(&self, client_id: &str, now: Timestamp) -> Option<ClientDocument> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(client_id)
            .filter(|c| c.expires_at > now)
            .map(|c| c.document.clone())
    }

    fn keep(&self, client_id: &str, document: &ClientDocument, expires_at: Timestamp) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED && !cache.contains_key(client_id) {
            let first = cache
                .iter()
                .min_by_key(|(_, c)| c.expires_at)
                .map(|(k, _)| k.clone());
            if let Some(first) = first {
                cache.remove(&first);
            }
        }
        cache.insert(
            client_id.to_string(),
            Cached {
                document: document.clone(),
                expires_at,
            },
        );
    }
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `application/json`, or a `+json` type, with any parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// What a failed send means: our resolver's refusal (found in the error's
/// sources), a timeout, or a server that could not be reached.
fn sent_error(e: &reqwest::Error) -> FetchError {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<ResolveError>() {
            return FetchError::Address(r.clone());
        }
        source = s.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Unreachable
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_and_json_suffixed_types_are_json() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/oauth-client+json"));
        assert!(!is_json("text/html"));
        assert!(!is_json("text/json+html"));
        assert!(!is_json(""));
    }
}
