//! The OAuth 2.1 requests a client sends, checked without state: what the
//! companion's handlers run before they look anything up or store anything.

pub mod authorize;
pub mod error;
pub mod pkce;
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

/// Validates a requested scope: empty means ours; anything else must be ours.
pub fn check_scope(scope: Option<&str>) -> Result<String, OAuthError> {
    match scope.map(str::trim) {
        None | Some("") => Ok(SCOPE.to_string()),
        Some(s) => {
            if s.split(' ').filter(|p| !p.is_empty()).all(|p| p == SCOPE) {
                Ok(SCOPE.to_string())
            } else {
                Err(OAuthError::InvalidScope(format!(
                    "unknown scope; this server offers only {SCOPE:?}"
                )))
            }
        }
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
    fn scope_must_be_ours() {
        assert_eq!(check_scope(None).unwrap(), "mcp");
        assert_eq!(check_scope(Some("mcp")).unwrap(), "mcp");
        assert!(check_scope(Some("admin")).is_err());
    }
}
