//! RFC 7591 registration metadata of a public client, checked.

use serde_json::Value;

use super::redirect_uri::RedirectUri;
use super::{check_scope, OAuthError};

/// Largest registration body accepted.
pub const MAX_BODY: usize = 16 * 1024;
/// Most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest client name kept.
const MAX_NAME: usize = 100;

fn metadata_error(msg: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClientMetadata(msg.into())
}

/// Checks an optional array-of-strings field against allowed values.
fn check_list(
    body: &Value,
    field: &str,
    allowed: &[&str],
    required: &str,
) -> Result<(), OAuthError> {
    let Some(v) = body.get(field) else {
        return Ok(());
    };
    let items = v
        .as_array()
        .ok_or_else(|| metadata_error(format!("{field} must be an array of strings")))?;
    let mut seen_required = false;
    for item in items {
        let s = item
            .as_str()
            .ok_or_else(|| metadata_error(format!("{field} must be an array of strings")))?;
        if !allowed.contains(&s) {
            return Err(metadata_error(format!(
                "{field} value {s:?} is not supported"
            )));
        }
        seen_required |= s == required;
    }
    if !seen_required {
        return Err(metadata_error(format!("{field} must include {required:?}")));
    }
    Ok(())
}

/// The metadata of a registration request, once checked.
#[derive(Debug)]
pub struct Registration {
    /// The client's name, trimmed (or a placeholder).
    pub name: String,
    /// The redirect URIs, as sent; each passed [`RedirectUri::parse`].
    pub redirect_uris: Vec<String>,
    /// The scope granted (always ours).
    pub scope: String,
}

/// Checks a registration body (RFC 7591 metadata of a public client). Needs
/// no state: the handler stores what this returns.
pub fn check_metadata(bytes: &[u8]) -> Result<Registration, OAuthError> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|_| metadata_error("request body is not valid JSON"))?;
    if !body.is_object() {
        return Err(metadata_error("request body must be a JSON object"));
    }

    let uris = body
        .get("redirect_uris")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            OAuthError::InvalidRedirectUri("redirect_uris is required (an array of URIs)".into())
        })?;
    if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::InvalidRedirectUri(format!(
            "register 1 to {MAX_REDIRECT_URIS} redirect URIs"
        )));
    }
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for u in uris {
        let raw = u.as_str().ok_or_else(|| {
            OAuthError::InvalidRedirectUri("redirect URIs must be strings".into())
        })?;
        RedirectUri::parse(raw).map_err(OAuthError::InvalidRedirectUri)?;
        redirect_uris.push(raw.to_string());
    }

    if let Some(m) = body.get("token_endpoint_auth_method") {
        if m.as_str() != Some("none") {
            return Err(metadata_error(
                "only public clients are supported: token_endpoint_auth_method must be \"none\"",
            ));
        }
    }
    check_list(
        &body,
        "grant_types",
        &["authorization_code", "refresh_token"],
        "authorization_code",
    )?;
    check_list(&body, "response_types", &["code"], "code")?;
    let scope = match body.get("scope") {
        None | Some(Value::Null) => check_scope(None),
        Some(Value::String(s)) => check_scope(Some(s)),
        Some(_) => Err(metadata_error("scope must be a string")),
    }
    .map_err(|e| metadata_error(e.description().to_string()))?;

    let name = match body.get("client_name") {
        None | Some(Value::Null) => "Unnamed client".to_string(),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() || s.chars().count() > MAX_NAME || s.chars().any(char::is_control) {
                return Err(metadata_error(format!(
                    "client_name must be 1 to {MAX_NAME} printable characters"
                )));
            }
            s.to_string()
        }
        Some(_) => return Err(metadata_error("client_name must be a string")),
    };
    Ok(Registration {
        name,
        redirect_uris,
        scope,
    })
}
