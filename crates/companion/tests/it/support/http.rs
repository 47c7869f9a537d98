//! Plain HTTP pieces every test module uses: form/query parameters, a
//! response read whole with the assertions shared by many tests, and loopback
//! ports for "nothing listens here" and "same host, wrong port" cases.

use std::collections::HashMap;

use axum::http::StatusCode;
use reqwest::header::HeaderMap as ReplyHeaders;
use serde_json::Value;
use tokio::net::TcpListener;

/// Query or form parameters, in order, repeats allowed.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Replaces every `k` with one `k=v`.
    pub fn set(self, k: &str, v: &str) -> Self {
        let mut p = self.remove(k);
        p.0.push((k.into(), v.into()));
        p
    }

    /// Drops every `k`.
    pub fn remove(mut self, k: &str) -> Self {
        self.0.retain(|(n, _)| n != k);
        self
    }

    /// Appends `k=v` even if `k` is already there.
    pub fn add(mut self, k: &str, v: &str) -> Self {
        self.0.push((k.into(), v.into()));
        self
    }

    /// `application/x-www-form-urlencoded` serialization.
    pub fn encode(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// A response, read completely.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: ReplyHeaders,
    /// Body text.
    pub text: String,
}

impl Reply {
    /// Reads a reqwest response.
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("response body");
        Self {
            status,
            headers,
            text,
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    /// One header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    /// The `Location` header parsed against `base`.
    pub fn location(&self, base: &str) -> url::Url {
        let loc = self
            .header("location")
            .unwrap_or_else(|| panic!("no Location header ({}): {}", self.status, self.text));
        url::Url::parse(base)
            .expect("base")
            .join(loc)
            .expect("Location is a URL")
    }

    /// Asserts an OAuth JSON error: exact status and `error`, `no-store`.
    pub fn assert_oauth_error(&self, status: StatusCode, error: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "body: {}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["error"], error, "body: {}", self.text);
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "error_description missing: {}",
            self.text
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    /// Asserts a shown (never redirected) HTML error page.
    pub fn assert_shown_error(&self, status: StatusCode) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("location"),
            None,
            "an error page never redirects"
        );
        assert_eq!(
            self.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            self.text.contains("Can't connect this assistant"),
            "not the error page: {}",
            self.text
        );
    }

    /// Asserts the loopback guard's refusal.
    pub fn assert_forbidden_by_guard(&self) {
        assert_eq!(self.status, StatusCode::FORBIDDEN, "body: {}", self.text);
        assert_eq!(self.json()["error"], "forbidden", "body: {}", self.text);
    }

    /// Asserts that none of `secrets`, nor anything shaped like one of our
    /// tokens or a PAT, is in the body.
    pub fn assert_leaks_nothing(&self, secrets: &[&str]) {
        for s in secrets {
            assert!(!self.text.contains(s), "a secret leaked: {}", self.text);
        }
        // A prefix followed by token characters; the page's own
        // "spor_pat_…" placeholder is fine.
        for prefix in ["spor_pat_", "spor_oat_", "spor_ort_"] {
            for (at, _) in self.text.match_indices(prefix) {
                let tail = self.text[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .count();
                assert!(tail < 8, "something like a token leaked: {}", self.text);
            }
        }
    }
}

/// The query parameters of a URL, refusing repeats.
pub fn query_of(url: &url::Url) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url.query_pairs() {
        assert!(
            out.insert(k.to_string(), v.to_string()).is_none(),
            "parameter {k} repeated in {url}"
        );
    }
    out
}

/// A loopback port nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("address").port()
}

/// A port other than `port` (for "same host, wrong port" cases).
pub fn other_port(port: u16) -> u16 {
    if port == u16::MAX {
        port - 1
    } else {
        port + 1
    }
}
