//! The OAuth 2.1 authorization server: discovery metadata, dynamic client
//! registration, authorization with consent, token and revocation endpoints.
//! Route paths are constants shared with the discovery documents.

pub(crate) mod authorize;
mod consent_page;
pub mod error;
mod metadata;
pub mod pkce;
pub mod redirect_uri;
pub(crate) mod register;
mod revoke;
pub(crate) mod token;

use std::collections::HashMap;

use axum::routing::{get, post};
use axum::Router;
use url::Url;

use crate::state::AppState;
pub use error::OAuthError;

/// RFC 9728 metadata for the `/mcp` resource.
pub const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
/// RFC 9728 metadata at the root (some clients look here).
pub const PROTECTED_RESOURCE_ROOT_PATH: &str = "/.well-known/oauth-protected-resource";
/// RFC 8414 metadata.
pub const AUTHORIZATION_SERVER_PATH: &str = "/.well-known/oauth-authorization-server";
/// RFC 7591 registration.
pub const REGISTER_PATH: &str = "/oauth/register";
/// Authorization endpoint.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// Token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// RFC 7009 revocation.
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// The consent page of one pending request.
pub const CONSENT_PATH: &str = "/oauth/consent/{id}";
/// The MCP endpoint the tokens are for.
pub const MCP_PATH: &str = "/mcp";

/// The one scope we offer: use of the MCP endpoint.
pub const SCOPE: &str = "mcp";

/// The loopback host and port a request addressed us by (validated by the
/// loopback guard), e.g. `127.0.0.1:7767` or `[::1]:7767`. URLs we hand out
/// use the same spelling so issuer and resource match what the client saw.
#[derive(Debug, Clone)]
pub struct LocalHost(pub String);

impl LocalHost {
    /// `http://<host>`; also our issuer.
    pub fn base(&self) -> String {
        format!("http://{}", self.0)
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> String {
        self.base()
    }

    /// The MCP resource URL.
    pub fn resource(&self) -> String {
        format!("{}{MCP_PATH}", self.base())
    }

    /// Where the protected-resource metadata is.
    pub fn resource_metadata(&self) -> String {
        format!("{}{PROTECTED_RESOURCE_PATH}", self.base())
    }

    fn port(&self) -> Option<u16> {
        self.0.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
    }

    /// Whether `resource` names our MCP endpoint (any loopback spelling, our
    /// port, `/mcp` with or without a trailing slash).
    pub fn is_our_resource(&self, resource: &str) -> bool {
        let Ok(url) = Url::parse(resource) else {
            return false;
        };
        let host_ok = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.octets() == [127, 0, 0, 1],
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        url.scheme() == "http"
            && host_ok
            && url.port_or_known_default() == self.port()
            && matches!(url.path(), "/mcp" | "/mcp/")
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none()
    }
}

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

/// All OAuth routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PROTECTED_RESOURCE_PATH, get(metadata::protected_resource))
        .route(
            PROTECTED_RESOURCE_ROOT_PATH,
            get(metadata::protected_resource),
        )
        .route(
            AUTHORIZATION_SERVER_PATH,
            get(metadata::authorization_server),
        )
        .route(REGISTER_PATH, post(register::register))
        .route(AUTHORIZE_PATH, get(authorize::authorize))
        .route(
            CONSENT_PATH,
            get(authorize::consent_page).post(authorize::consent_decision),
        )
        .route(
            "/oauth/consent/{id}/account",
            post(authorize::consent_add_account),
        )
        .route("/oauth/consent/{id}/status", get(authorize::consent_status))
        .route(consent_page::SCRIPT_PATH, get(consent_page::script))
        .route(consent_page::STYLE_PATH, get(consent_page::style))
        .route(TOKEN_PATH, post(token::token))
        .route(REVOKE_PATH, post(revoke::revoke))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_accepts_every_loopback_spelling_of_our_port() {
        let h = LocalHost("127.0.0.1:7767".into());
        assert!(h.is_our_resource("http://127.0.0.1:7767/mcp"));
        assert!(h.is_our_resource("http://127.0.0.1:7767/mcp/"));
        assert!(h.is_our_resource("http://localhost:7767/mcp"));
        assert!(h.is_our_resource("http://[::1]:7767/mcp"));
        assert!(!h.is_our_resource("http://127.0.0.1:7768/mcp"));
        assert!(!h.is_our_resource("http://127.0.0.1:7767/other"));
        assert!(!h.is_our_resource("https://127.0.0.1:7767/mcp"));
        assert!(!h.is_our_resource("http://evil.example:7767/mcp"));
        assert!(!h.is_our_resource("http://127.0.0.1:7767/mcp?x=1"));
        // Found by fuzz/token_form: a password without a user name.
        assert!(!h.is_our_resource("http://:pw@127.0.0.1:7767/mcp"));
    }

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
