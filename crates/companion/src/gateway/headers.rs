//! Which headers cross the gateway, by rule rather than by a list of MCP's
//! names, so that a revision adding one (2026-07-28 added `Mcp-Method`,
//! `Mcp-Name` and the tool-declared `Mcp-Param-*`) passes through unchanged:
//!
//! - every header MCP defines (named `Mcp-*`, `MCP-Protocol-Version`
//!   included) crosses in both directions;
//! - besides those, a short allow-list of generic headers each way;
//! - never a hop-by-hop header, including any the sender names in its
//!   `Connection` header (RFC 9110 §7.6.1), whatever its name.
//!
//! Credentials and cookies (`Authorization`, `Proxy-Authorization`,
//! `Cookie`, `Set-Cookie`, `WWW-Authenticate`) are on neither list: the
//! host's token stays here and the account's PAT is added by the caller; a
//! server's cookies and challenges are meant for the companion, not the host.

use axum::http::{HeaderMap, HeaderName};

/// Request headers that cross besides MCP's own: what the body is, what the
/// client reads, where a legacy stream resumes, and W3C trace context.
const GENERIC_REQUEST: [&str; 5] = [
    "content-type",
    "accept",
    "last-event-id",
    "traceparent",
    "tracestate",
];

/// Response headers that cross besides MCP's own. Nothing meant for a
/// browser (`Set-Cookie`, CORS, HSTS, `Location`, CSP), and no
/// `WWW-Authenticate`: it would point the host at the upstream's
/// authorization server, while the host's resource is the companion.
const GENERIC_RESPONSE: [&str; 3] = ["content-type", "retry-after", "cache-control"];

/// Hop-by-hop headers (RFC 9110 §7.6.1, and the obsolete ones proxies
/// still see); the HTTP clients on either side set their own.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Whether MCP defines the header: `Mcp-Session-Id`,
/// `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`, and
/// whatever `Mcp-*` a later revision adds.
pub(super) fn is_mcp(name: &HeaderName) -> bool {
    // `HeaderName`s are lowercase.
    name.as_str().starts_with("mcp-")
}

/// The request headers that travel upstream.
pub(super) fn to_upstream(from_host: &HeaderMap) -> HeaderMap {
    crossing(from_host, &GENERIC_REQUEST)
}

/// The upstream's response headers that travel back to the host.
pub(super) fn to_host(from_upstream: &HeaderMap) -> HeaderMap {
    crossing(from_upstream, &GENERIC_RESPONSE)
}

fn crossing(headers: &HeaderMap, generic: &[&str]) -> HeaderMap {
    // Names the sender declared hop-by-hop for this connection.
    let listed: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    // Sized up front: growing it was a visible cost per forwarded call.
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = name.as_str();
        let wanted = is_mcp(name) || generic.contains(&n);
        if wanted && !HOP_BY_HOP.contains(&n) && !listed.iter().any(|l| l == n) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (n, v) in pairs {
            m.append(
                HeaderName::from_bytes(n.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        m
    }

    fn names(m: &HeaderMap) -> Vec<String> {
        let mut v: Vec<_> = m.keys().map(|k| k.as_str().to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn every_mcp_header_and_the_generic_ones_cross_and_nothing_else() {
        let out = to_upstream(&map(&[
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "x"),
            ("Mcp-Param-Region", "us"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Session-Id", "s"),
            ("Mcp-Future-Thing", "1"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            (
                "Traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("Authorization", "Bearer spor_oat_x"),
            ("Proxy-Authorization", "Basic eA=="),
            ("Cookie", "a=1"),
            ("Host", "127.0.0.1:7767"),
            ("Content-Length", "2"),
            ("Transfer-Encoding", "chunked"),
            ("X-Other", "1"),
        ]));
        assert_eq!(
            names(&out),
            [
                "accept",
                "content-type",
                "mcp-future-thing",
                "mcp-method",
                "mcp-name",
                "mcp-param-region",
                "mcp-protocol-version",
                "mcp-session-id",
                "traceparent",
            ]
        );
    }

    #[test]
    fn a_header_the_sender_declares_hop_by_hop_never_crosses() {
        let out = to_host(&map(&[
            ("Connection", "close, Mcp-Param-Token"),
            ("Connection", "mcp-session-id"),
            ("Mcp-Param-Token", "x"),
            ("Mcp-Session-Id", "s"),
            ("Mcp-Protocol-Version", "2026-07-28"),
            ("Content-Type", "text/event-stream"),
            ("Set-Cookie", "a=1"),
            ("WWW-Authenticate", "Bearer"),
        ]));
        assert_eq!(names(&out), ["content-type", "mcp-protocol-version"]);
    }

    #[test]
    fn repeated_headers_keep_every_value_in_order() {
        let out = to_upstream(&map(&[("Mcp-Param-A", "1"), ("Mcp-Param-A", "2")]));
        let values: Vec<_> = out.get_all("mcp-param-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }
}
