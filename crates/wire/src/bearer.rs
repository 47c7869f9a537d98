//! Reading and checking the `Authorization: Bearer` header of `/mcp` calls
//! (RFC 6750 §2.1).

use http::{header, HeaderMap};

use crate::sensitive::Sensitive;

/// What the `Authorization` header held.
#[derive(Debug)]
pub enum Bearer {
    /// No `Authorization` header.
    Missing,
    /// A header that is not a well-formed bearer token.
    Malformed,
    /// A bearer token.
    Token(Sensitive<String>),
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && t.len() <= 512
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c))
}

impl Bearer {
    /// Parses the header (scheme case-insensitive, RFC 6750 §2.1 syntax).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let (Some(v), None) = (values.next(), values.next()) else {
            return if headers.contains_key(header::AUTHORIZATION) {
                Self::Malformed
            } else {
                Self::Missing
            };
        };
        let Ok(v) = v.to_str() else {
            return Self::Malformed;
        };
        match v.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && is_b64token(token) =>
            {
                Self::Token(Sensitive::new(token.to_string()))
            }
            _ => Self::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn parse(v: &str) -> Bearer {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(v).expect("header"),
        );
        Bearer::from_headers(&h)
    }

    #[test]
    fn parses_bearer_tokens_strictly() {
        assert!(
            matches!(parse("Bearer spor_oat_abc-_"), Bearer::Token(t) if t.expose() == "spor_oat_abc-_")
        );
        assert!(matches!(parse("bearer spor_oat_abc"), Bearer::Token(_)));
        assert!(matches!(parse("Basic dXNlcjpwYXNz"), Bearer::Malformed));
        assert!(matches!(parse("Bearer"), Bearer::Malformed));
        assert!(matches!(parse("Bearer "), Bearer::Malformed));
        assert!(matches!(parse("Bearer a b"), Bearer::Malformed));
        assert!(matches!(parse("Bearer a\"b"), Bearer::Malformed));
        // Found by fuzz/bearer_header: padding alone is not a token.
        assert!(matches!(parse("Bearer ==="), Bearer::Malformed));
        assert!(matches!(parse("Bearer a=="), Bearer::Token(t) if t.expose() == "a=="));
        assert!(matches!(
            Bearer::from_headers(&HeaderMap::new()),
            Bearer::Missing
        ));
    }
}
