//! Dynamic client registration metadata (POST /oauth/register, RFC 7591).
//!
//! Input: the request body. Checks: accepted metadata came from a JSON object
//! whose `redirect_uris` is 1 to 10 strings, every one an accepted redirect
//! URI (kept verbatim, in order); the client is public
//! (`token_endpoint_auth_method` absent or `none`); grant and response types
//! are only the supported ones; the scope is `mcp`; the name is 1 to 100
//! printable characters, trimmed, and the name as sent holds no character
//! that hides or reorders text (bidi controls, zero-width and other
//! invisible format characters, controls, line and paragraph separators,
//! private-use code points, noncharacters). Refusals are `invalid_client_metadata` or
//! `invalid_redirect_uri` only. Re-registering what was accepted is accepted
//! with the same result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use spor_companion_fuzz::{granted_scope, scope_ok};
use spor_wire::oauth::redirect_uri::RedirectUri;
use spor_wire::oauth::register::check_metadata;
use spor_wire::oauth::{OAuthError, SCOPE};

fn only(v: Option<&Value>, allowed: &[&str], required: &str) -> bool {
    match v {
        None => true,
        Some(Value::Array(items)) => {
            items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| allowed.contains(&s)))
                && items.iter().any(|i| i.as_str() == Some(required))
        }
        Some(_) => false,
    }
}

/// Characters a client name may not hold, listed from the code charts
/// rather than from the general-category table the checker uses.
fn hides_or_reorders(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E000}'..='\u{F8FF}'
                | '\u{FDD0}'..='\u{FDEF}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{F0000}'..='\u{10FFFF}'
        )
        || (u32::from(c) & 0xFFFE) == 0xFFFE
}

fuzz_target!(|data: &[u8]| {
    let reg = match check_metadata(data) {
        Ok(r) => r,
        Err(e) => {
            assert!(
                matches!(
                    e,
                    OAuthError::InvalidClientMetadata(_) | OAuthError::InvalidRedirectUri(_)
                ),
                "unexpected error {e:?}"
            );
            assert!(!e.description().is_empty());
            return;
        }
    };
    let body: Value = serde_json::from_slice(data).expect("accepted body is JSON");
    let obj = body.as_object().expect("accepted body is an object");

    let sent: Vec<&str> = obj["redirect_uris"]
        .as_array()
        .expect("redirect_uris is an array")
        .iter()
        .map(|u| u.as_str().expect("redirect URIs are strings"))
        .collect();
    assert!((1..=10).contains(&sent.len()));
    assert_eq!(reg.redirect_uris, sent, "redirect URIs not kept verbatim");
    for u in &reg.redirect_uris {
        let r = RedirectUri::parse(u).unwrap_or_else(|e| panic!("accepted bad URI {u:?}: {e}"));
        assert!(r.matches(u));
    }

    assert!(matches!(
        obj.get("token_endpoint_auth_method"),
        None | Some(Value::String(_))
    ));
    if let Some(m) = obj.get("token_endpoint_auth_method") {
        assert_eq!(m, "none", "confidential client accepted");
    }
    assert!(only(
        obj.get("grant_types"),
        &["authorization_code", "refresh_token"],
        "authorization_code"
    ));
    assert!(only(obj.get("response_types"), &["code"], "code"));
    match obj.get("scope") {
        None | Some(Value::Null) => assert_eq!(reg.scope, SCOPE),
        Some(Value::String(s)) => {
            assert!(scope_ok(Some(s)), "scope {s:?}");
            assert_eq!(reg.scope, granted_scope(Some(s)));
        }
        Some(other) => panic!("scope {other:?} accepted"),
    }
    match obj.get("application_type") {
        None | Some(Value::Null) => assert_eq!(reg.application_type, None),
        Some(Value::String(kind)) => {
            let loopback = kind == "native";
            assert!(loopback || kind == "web", "application_type {kind:?}");
            for u in &reg.redirect_uris {
                assert_eq!(
                    u.to_ascii_lowercase().starts_with("http:"),
                    loopback,
                    "{kind} with {u:?}"
                );
            }
        }
        Some(other) => panic!("application_type {other:?} accepted"),
    }

    let n = reg.name.chars().count();
    assert!((1..=100).contains(&n), "name of {n} characters");
    assert_eq!(reg.name.trim(), reg.name);
    assert!(!reg.name.chars().any(hides_or_reorders), "{:?}", reg.name);
    match obj.get("client_name") {
        None | Some(Value::Null) => assert_eq!(reg.name, "Unnamed client"),
        Some(Value::String(s)) => {
            assert_eq!(reg.name, s.trim());
            assert!(!s.chars().any(hides_or_reorders), "{s:?} accepted");
        }
        Some(other) => panic!("client_name {other:?} accepted"),
    }

    // What was accepted is accepted again, unchanged.
    let again = json!({
        "client_name": reg.name,
        "redirect_uris": reg.redirect_uris,
        "scope": reg.scope,
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    let again = check_metadata(again.to_string().as_bytes()).expect("re-registration refused");
    assert_eq!(
        (again.name, again.redirect_uris, again.scope),
        (reg.name, reg.redirect_uris, reg.scope)
    );
});
