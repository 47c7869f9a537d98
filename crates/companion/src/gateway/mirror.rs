//! What the call log records about a request's protocol era and its
//! mirrored headers. MCP 2026-07-28 mirrors body fields into headers
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) so intermediaries can
//! route without parsing; the server rejects a request whose headers
//! disagree with its body. The gateway reads the body anyway (the call log
//! and the grant's policy act on it), so it takes the body as the truth,
//! forwards the request as it came (the upstream answers a disagreement
//! with its own `-32020`), and records whether they agreed.
//!
//! `Mcp-Param-*` headers mirror tool arguments that only the tool's schema
//! names; the gateway does not keep schemas, so it forwards them unchecked.

use axum::http::HeaderMap;
use spor_wire::mirror::{decode, name_field};
use spor_wire::peek::Peek;

use crate::store::{Era, HeaderCheck};

/// The first revision that carries its version in every request's `_meta`.
const FIRST_MODERN: &str = "2026-07-28";

/// The era a message speaks, by its body: modern when its `_meta` names a
/// protocol version.
pub(super) fn era(call: &Peek) -> Era {
    if call.protocol_version.is_some() {
        Era::Modern
    } else {
        Era::Legacy
    }
}

/// Whether the mirrored headers agree with the one message of a request.
/// `None` when nothing is mirrored: a legacy request that sends none of
/// these headers (they are a modern requirement).
pub(super) fn check(headers: &HeaderMap, call: &Peek) -> Option<HeaderCheck> {
    let modern = call.protocol_version.is_some();
    let version = match (&call.protocol_version, one(headers, "mcp-protocol-version")) {
        (Some(body), Sent::Value(header)) => agree(header == body),
        (Some(_), Sent::Absent) => Some(HeaderCheck::Missing),
        (Some(_), Sent::Unreadable) => Some(HeaderCheck::Mismatch),
        // A header naming a modern revision on a body without `_meta`.
        (None, Sent::Value(header)) if is_modern_version(header) => Some(HeaderCheck::Mismatch),
        (None, _) => None,
    };
    let method = match one(headers, "mcp-method") {
        Sent::Value(header) => agree(header == call.method),
        Sent::Unreadable => Some(HeaderCheck::Mismatch),
        Sent::Absent if modern => Some(HeaderCheck::Missing),
        Sent::Absent => None,
    };
    let verdicts = [version, method, name_verdict(headers, call, modern)];

    // A mismatch outweighs a missing header, which outweighs agreement.
    let found: Vec<HeaderCheck> = verdicts.into_iter().flatten().collect();
    if found.contains(&HeaderCheck::Mismatch) {
        Some(HeaderCheck::Mismatch)
    } else if found.contains(&HeaderCheck::Missing) {
        Some(HeaderCheck::Missing)
    } else if found.is_empty() {
        None
    } else {
        Some(HeaderCheck::Consistent)
    }
}

/// What `Mcp-Name` says of the body's name (`Missing` only for a modern
/// request of a method that names something).
fn name_verdict(headers: &HeaderMap, call: &Peek, modern: bool) -> Option<HeaderCheck> {
    let names_something = name_field(&call.method).is_some();
    match (one(headers, "mcp-name"), &call.name) {
        (Sent::Value(header), Some(body)) => {
            agree(decode(header).as_deref() == Some(body.as_str()))
        }
        // Unreadable, or a name where the body has none to mirror.
        (Sent::Value(_) | Sent::Unreadable, _) => Some(HeaderCheck::Mismatch),
        (Sent::Absent, _) if modern && names_something => Some(HeaderCheck::Missing),
        (Sent::Absent, _) => None,
    }
}

/// Whether a sent `Mcp-Name` names something else than the body (an
/// absent one does not): what the access policy refuses.
pub(super) fn name_disagrees(headers: &HeaderMap, call: &Peek) -> bool {
    name_verdict(headers, call, false) == Some(HeaderCheck::Mismatch)
}

fn agree(same: bool) -> Option<HeaderCheck> {
    Some(if same {
        HeaderCheck::Consistent
    } else {
        HeaderCheck::Mismatch
    })
}

/// How a mirrored header was sent.
enum Sent<'h> {
    Absent,
    /// Its value, trimmed (an empty one is kept: it disagrees with any body).
    Value(&'h str),
    /// Not visible ASCII, or sent twice with different values: it can
    /// agree with no body.
    Unreadable,
}

fn one<'h>(headers: &'h HeaderMap, name: &str) -> Sent<'h> {
    let mut values = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().map(str::trim));
    match values.next() {
        None => Sent::Absent,
        Some(Ok(first)) if values.all(|v| v.ok() == Some(first)) => Sent::Value(first),
        Some(_) => Sent::Unreadable,
    }
}

/// Whether a protocol version is a dated revision from 2026-07-28 on.
fn is_modern_version(v: &str) -> bool {
    let dated = v.len() == FIRST_MODERN.len()
        && v.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    dated && v >= FIRST_MODERN
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};
    use base64::Engine;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (n, v) in pairs {
            m.append(
                HeaderName::from_bytes(n.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        m
    }

    fn call(method: &str, name: Option<&str>, version: Option<&str>) -> Peek {
        Peek {
            method: method.into(),
            tool: None,
            name: name.map(Into::into),
            protocol_version: version.map(Into::into),
        }
    }

    const V: &str = "2026-07-28";

    #[test]
    fn a_modern_request_agrees_only_when_every_mirrored_header_says_what_its_body_says() {
        let c = call("tools/call", Some("get_weather"), Some(V));
        assert_eq!(era(&c), Era::Modern);
        let full = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", " get_weather "),
        ];
        assert_eq!(
            check(&headers(&full), &c),
            Some(HeaderCheck::Consistent),
            "whitespace around a value is not part of it"
        );
        assert_eq!(check(&headers(&full[..2]), &c), Some(HeaderCheck::Missing));
        assert_eq!(check(&headers(&full[1..]), &c), Some(HeaderCheck::Missing));
        for (i, other) in [(0, "2025-11-25"), (1, "Tools/call"), (2, "put_node")] {
            let mut changed = full;
            changed[i].1 = other;
            assert_eq!(
                check(&headers(&changed), &c),
                Some(HeaderCheck::Mismatch),
                "{changed:?}"
            );
        }
        // A mismatch outweighs a missing header.
        assert_eq!(
            check(&headers(&[("Mcp-Method", "tools/list")]), &c),
            Some(HeaderCheck::Mismatch)
        );
        // Sent twice with two values.
        let twice = [full[0], full[1], full[2], ("Mcp-Name", "other")];
        assert_eq!(check(&headers(&twice), &c), Some(HeaderCheck::Mismatch));
    }

    #[test]
    fn a_base64_sentinel_is_compared_decoded() {
        let c = call("resources/read", Some("file:///Hello, 世界"), Some(V));
        let encoded = format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode("file:///Hello, 世界")
        );
        let h = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "resources/read"),
            ("Mcp-Name", encoded.as_str()),
        ];
        assert_eq!(check(&headers(&h), &c), Some(HeaderCheck::Consistent));
        let broken = [h[0], h[1], ("Mcp-Name", "=?base64?***?=")];
        assert_eq!(check(&headers(&broken), &c), Some(HeaderCheck::Mismatch));
    }

    #[test]
    fn a_legacy_request_is_checked_only_for_what_it_mirrors() {
        let c = call("tools/call", Some("put_node"), None);
        assert_eq!(era(&c), Era::Legacy);
        assert_eq!(check(&headers(&[]), &c), None);
        assert_eq!(
            check(&headers(&[("MCP-Protocol-Version", "2025-11-25")]), &c),
            None,
            "the legacy header names the session's version, which the body does not carry"
        );
        assert_eq!(
            check(&headers(&[("Mcp-Method", "tools/call")]), &c),
            Some(HeaderCheck::Consistent)
        );
        assert_eq!(
            check(&headers(&[("Mcp-Name", "get_node")]), &c),
            Some(HeaderCheck::Mismatch)
        );
        // A modern version in the header, no `_meta` in the body.
        assert_eq!(
            check(&headers(&[("MCP-Protocol-Version", V)]), &c),
            Some(HeaderCheck::Mismatch)
        );
        // A name header on a method that mirrors none.
        assert_eq!(
            check(
                &headers(&[("Mcp-Name", "x")]),
                &call("tools/list", None, None)
            ),
            Some(HeaderCheck::Mismatch)
        );
    }

    #[test]
    fn modern_versions_are_dated_revisions_from_2026_07_28() {
        assert!(is_modern_version("2026-07-28"));
        assert!(is_modern_version("2027-01-01"));
        assert!(!is_modern_version("2025-11-25"));
        assert!(!is_modern_version("DRAFT-2026"));
        assert!(!is_modern_version("2026-07-28x"));
    }
}
