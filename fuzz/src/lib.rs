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

/// The scope rule: absent, or space-separated tokens of printable ASCII
/// other than `"` and `\` (RFC 6749 §3.3); unknown tokens are dropped.
pub fn scope_ok(scope: Option<&str>) -> bool {
    scope.is_none_or(|s| {
        s.split(' ').all(|p| {
            p.bytes()
                .all(|b| (0x21..=0x7E).contains(&b) && b != b'"' && b != b'\\')
        })
    })
}

/// The scope rule of a refresh: well-formed, and nothing beyond `mcp` and
/// `offline_access` (RFC 6749 §6).
pub fn refresh_scope_ok(scope: Option<&str>) -> bool {
    scope_ok(scope)
        && scope.is_none_or(|s| {
            s.split(' ')
                .all(|p| p.is_empty() || p == "mcp" || p == "offline_access")
        })
}

/// The scope granted for an accepted request: `mcp`, plus `offline_access`
/// when it was one of the tokens asked for.
pub fn granted_scope(scope: Option<&str>) -> &'static str {
    if scope.is_some_and(|s| s.split(' ').any(|p| p == "offline_access")) {
        "mcp offline_access"
    } else {
        "mcp"
    }
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

/// JSONC as VS Code writes it, turned into strict JSON for serde_json to
/// judge: `//` comments (to the end of the line) and `/* */` comments become
/// a space, and a comma that follows a value and comes right before `}` or
/// `]` is dropped. `None` when a `/*` is never closed. Strings are skipped
/// whole, so comment markers and commas inside them stay.
pub fn jsonc_to_json(src: &str) -> Option<String> {
    let no_comments = strip_comments(src)?;
    Some(strip_trailing_commas(&no_comments))
}

fn strip_comments(src: &str) -> Option<String> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            let len = string_len(rest);
            out.push_str(&rest[..len]);
            rest = &rest[len..];
        } else if let Some(after) = rest.strip_prefix("//") {
            // The line break stays: it is whitespace either way.
            rest = &after[after.find('\n').unwrap_or(after.len())..];
            out.push(' ');
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = &after[after.find("*/")? + 2..];
            out.push(' ');
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Some(out)
}

/// Length in bytes of the string literal `s` starts with (to its closing
/// quote, or to the end when it has none).
fn string_len(s: &str) -> usize {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            _ => {}
        }
    }
    s.len()
}

fn strip_trailing_commas(src: &str) -> String {
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            let len = string_len(rest);
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        if c == ',' {
            let next = rest.trim_start_matches(is_ws).chars().next();
            let prev = out.trim_end_matches(is_ws).chars().last();
            // Only a comma after a value: `[,]` and `{,}` stay (and stay wrong).
            let after_value = prev.is_some_and(|p| !matches!(p, '[' | '{' | ',' | ':'));
            if matches!(next, Some('}' | ']')) && after_value {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// serde_json's reading of a JSON text as a value, or `None` when it is not
/// JSON, cannot be held (numbers out of range, lone surrogates) or repeats a
/// name inside an object: a `Value` would keep only the last of those, so
/// it could not say what a document with them means.
pub fn json_without_repeats(json: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<NoRepeats>(json).ok().map(|v| v.0)
}

struct NoRepeats(serde_json::Value);

impl<'de> serde::Deserialize<'de> for NoRepeats {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoRepeatsVisitor).map(NoRepeats)
    }
}

struct NoRepeatsVisitor;

impl<'de> serde::de::Visitor<'de> for NoRepeatsVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON without repeated names")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(NoRepeats(v)) = a.next_element()? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut map = serde_json::Map::new();
        while let Some((k, NoRepeats(v))) = a.next_entry::<String, NoRepeats>()? {
            if map.insert(k, v).is_some() {
                return Err(serde::de::Error::custom("a name is repeated"));
            }
        }
        Ok(serde_json::Value::Object(map))
    }
}
