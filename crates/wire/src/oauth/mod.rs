//! The OAuth 2.1 requests a client sends, checked without state: what the
//! companion's handlers run before they look anything up or store anything.

pub mod authorize;
pub mod client_metadata;
pub mod error;
pub mod pkce;
pub mod public_address;
pub mod redirect_uri;
pub mod register;
pub mod token;

use std::collections::HashMap;

pub use error::OAuthError;

/// The one scope we offer: use of the MCP endpoint.
pub const SCOPE: &str = "mcp";

/// Parses `application/x-www-form-urlencoded` (or a query string), refusing
/// repeated parameters as RFC 6749 §3.1 requires.
pub fn parse_params(raw: &str) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::InvalidRequest(format!(
                "parameter {k} is repeated"
            )));
        }
    }
    Ok(out)
}

/// Parses a form body: UTF-8, no repeated parameters.
pub fn parse_form(bytes: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| OAuthError::InvalidRequest("body is not UTF-8".into()))?;
    parse_params(text)
}

/// The scope a client asks for to get refresh tokens (OpenID Connect Core
/// §11, SEP-2207). We always issue refresh tokens, so granting it changes
/// nothing but the scope stated back to the client.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Every scope we grant, as the authorization-server metadata lists them.
pub const SCOPES_OFFERED: [&str; 2] = [SCOPE, OFFLINE_ACCESS];

/// Whether `token` is a well-formed scope token (RFC 6749 §3.3: printable
/// ASCII except space, `"` and `\`).
fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// The tokens of a scope parameter, each checked for form.
fn scope_tokens(scope: &str) -> Result<Vec<&str>, OAuthError> {
    let tokens: Vec<&str> = scope.split(' ').filter(|p| !p.is_empty()).collect();
    if tokens.iter().all(|t| is_scope_token(t)) {
        Ok(tokens)
    } else {
        Err(OAuthError::InvalidScope(
            "scope must be space-separated printable ASCII tokens".into(),
        ))
    }
}

/// The scope granted for a requested one: always ours, plus
/// `offline_access` when asked for. Scopes we do not offer are dropped, as
/// RFC 6749 §3.3 lets the server narrow a request; only a malformed scope
/// parameter is refused.
pub fn check_scope(scope: Option<&str>) -> Result<String, OAuthError> {
    let tokens = scope_tokens(scope.unwrap_or(""))?;
    if tokens.contains(&OFFLINE_ACCESS) {
        Ok(format!("{SCOPE} {OFFLINE_ACCESS}"))
    } else {
        Ok(SCOPE.to_string())
    }
}

/// Checks the scope of a refresh request, which may only repeat scopes we
/// grant (RFC 6749 §6: nothing beyond the original grant).
pub fn check_refresh_scope(scope: &str) -> Result<(), OAuthError> {
    if scope_tokens(scope)?
        .iter()
        .all(|t| SCOPES_OFFERED.contains(t))
    {
        Ok(())
    } else {
        Err(OAuthError::InvalidScope(format!(
            "a refresh may not ask for a scope beyond {SCOPE:?} and {OFFLINE_ACCESS:?}"
        )))
    }
}

/// A parameter of a request; empty counts as absent.
pub fn param<'a>(params: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    params
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_params("a=1&b=2").is_ok());
        assert!(matches!(
            parse_params("a=1&a=2"),
            Err(OAuthError::InvalidRequest(_))
        ));
    }

    #[test]
    fn unknown_scopes_are_narrowed_away() {
        assert_eq!(check_scope(None).unwrap(), "mcp");
        assert_eq!(check_scope(Some("")).unwrap(), "mcp");
        assert_eq!(check_scope(Some("mcp")).unwrap(), "mcp");
        assert_eq!(check_scope(Some("admin")).unwrap(), "mcp");
        assert_eq!(check_scope(Some("mcp admin  files:read")).unwrap(), "mcp");
    }

    #[test]
    fn offline_access_is_granted_when_asked_for() {
        assert_eq!(
            check_scope(Some("mcp offline_access")).unwrap(),
            "mcp offline_access"
        );
        assert_eq!(
            check_scope(Some("offline_access admin")).unwrap(),
            "mcp offline_access"
        );
    }

    #[test]
    fn malformed_scopes_are_refused() {
        for bad in ["mcp\"x", "mcp\\", "mcp\tadmin", "caf\u{e9}", "mcp\n"] {
            assert!(
                matches!(check_scope(Some(bad)), Err(OAuthError::InvalidScope(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_refresh_may_repeat_only_what_we_grant() {
        assert!(check_refresh_scope("mcp").is_ok());
        assert!(check_refresh_scope("mcp offline_access").is_ok());
        assert!(matches!(
            check_refresh_scope("admin"),
            Err(OAuthError::InvalidScope(_))
        ));
    }
}
