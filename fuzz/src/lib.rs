//! Oracles shared by the fuzz targets: small, independent statements of the
//! rules (from the RFCs and docs/DESIGN), never copies of the code under test.

use std::collections::HashMap;

use url::{Host, Url};

/// The loopback test instance every target uses as "us".
pub const OUR_HOST: &str = "127.0.0.1:7767";

/// Splits fuzz input into UTF-8 lines (`None` if not UTF-8).
pub fn lines(data: &[u8]) -> Option<Vec<&str>> {
    std::str::from_utf8(data)
        .ok()
        .map(|s| s.split('\n').collect())
}

/// Whether `url`'s host is one of the three loopback spellings DESIGN §4
/// allows for `http` redirect URIs.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// The parameters of a form or query, as a map when no name repeats
/// (RFC 6749 §3.1), `None` when one does.
pub fn unique_params(raw: &str) -> Option<HashMap<String, String>> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let map: HashMap<String, String> = pairs.iter().cloned().collect();
    (map.len() == pairs.len()).then_some(map)
}

/// A parameter as the endpoints read it: empty counts as absent.
pub fn param<'a>(p: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    p.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
pub fn is_pkce_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// RFC 7636 §4.2: an S256 challenge is 43 base64url characters (no padding).
pub fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The scope rule: absent/blank, or only space-separated `mcp`.
pub fn scope_ok(scope: Option<&str>) -> bool {
    scope.is_none_or(|s| s.trim().split(' ').all(|p| p.is_empty() || p == "mcp"))
}

/// The resource rule (RFC 8707, DESIGN §4): our `/mcp` URL on any loopback
/// spelling of our port, nothing else in it.
pub fn is_our_resource(r: &str) -> bool {
    let Ok(u) = Url::parse(r) else { return false };
    u.scheme() == "http"
        && is_loopback_host(&u)
        && u.port() == Some(7767)
        && (u.path() == "/mcp" || u.path() == "/mcp/")
        && u.query().is_none()
        && u.fragment().is_none()
        && u.username().is_empty()
        && u.password().is_none()
}
