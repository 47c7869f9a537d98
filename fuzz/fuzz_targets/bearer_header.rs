//! The `Authorization` header of /mcp calls (RFC 6750 §2.1).
//!
//! Input: header values separated by newlines (each made a header value if
//! HTTP allows it; at most 4), all sent as `Authorization`.
//! Checks: no header is `Missing` and only that; a parsed token came from
//! the only header, `<bearer, any case> SP <token>`, and is an RFC 6750
//! b64token (non-empty, no whitespace, at most 512 bytes); it round-trips
//! through `Bearer <token>`; a single well-formed header is never refused.
#![no_main]

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use spor_wire::bearer::Bearer;
use spor_companion_fuzz::is_b64token;

fn parse(value: &str) -> Bearer {
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(value).expect("valid header"),
    );
    Bearer::from_headers(&h)
}

/// The grammar, stated independently: `Bearer` (any case), one space, a b64token.
fn well_formed(v: &[u8]) -> Option<&str> {
    let v = std::str::from_utf8(v).ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && token.len() <= 512 && is_b64token(token))
        .then_some(token)
}

fuzz_target!(|data: &[u8]| {
    let values: Vec<HeaderValue> = data
        .split(|b| *b == b'\n')
        .take(4)
        .filter_map(|v| HeaderValue::from_bytes(v).ok())
        .collect();
    if data.is_empty() {
        // No header at all (an empty input would otherwise be one empty value).
        assert!(matches!(
            Bearer::from_headers(&HeaderMap::new()),
            Bearer::Missing
        ));
        return;
    }
    let mut headers = HeaderMap::new();
    for v in &values {
        headers.append(AUTHORIZATION, v.clone());
    }
    let parsed = Bearer::from_headers(&headers);
    match &parsed {
        Bearer::Missing => assert!(values.is_empty()),
        Bearer::Token(t) => {
            let t = t.expose();
            assert_eq!(values.len(), 1, "token taken from one of several headers");
            assert_eq!(
                well_formed(values[0].as_bytes()),
                Some(t.as_str()),
                "{:?}",
                values[0]
            );
            assert!(is_b64token(t), "token {t:?} is not an RFC 6750 b64token");
            assert!(!t.is_empty() && t.len() <= 512);
            assert!(!t.chars().any(char::is_whitespace));
            for scheme in ["Bearer", "bearer", "BEARER"] {
                match parse(&format!("{scheme} {t}")) {
                    Bearer::Token(again) => assert_eq!(again.expose(), t),
                    other => panic!("{scheme} {t:?} does not round-trip: {other:?}"),
                }
            }
        }
        Bearer::Malformed => {
            assert!(!values.is_empty());
            if values.len() == 1 {
                assert_eq!(
                    well_formed(values[0].as_bytes()),
                    None,
                    "refused {:?}",
                    values[0]
                );
            }
        }
    }
});
