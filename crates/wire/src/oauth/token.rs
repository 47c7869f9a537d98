//! A token request (`POST /oauth/token`), checked for form: what is checked
//! before the client is looked up, then the grant's own parameters.

use std::collections::HashMap;

use super::{check_refresh_scope, pkce, OAuthError};
use crate::host::LocalHost;
use crate::sensitive::Sensitive;

fn required<'a>(p: &'a HashMap<String, String>, k: &str) -> Result<&'a str, OAuthError> {
    p.get(k)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::InvalidRequest(format!("{k} is required")))
}

/// The grant types the token endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }
}

/// The parts of a token request checked before the client is looked up.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    /// Which grant the request carries.
    pub grant_type: GrantType,
    /// The (public) client.
    pub client_id: &'a str,
    params: &'a HashMap<String, String>,
}

/// What a token request's grant carries, checked for form only.
#[derive(Debug)]
pub enum Grant {
    /// `grant_type=authorization_code`.
    AuthorizationCode {
        /// The authorization code.
        code: Sensitive<String>,
        /// The PKCE verifier (43 to 128 unreserved characters).
        verifier: Sensitive<String>,
        /// The redirect URI, when sent (non-empty).
        redirect_uri: Option<String>,
    },
    /// `grant_type=refresh_token`.
    RefreshToken {
        /// The refresh token presented.
        refresh_token: Sensitive<String>,
    },
}

/// Checks a token request's grant type, client id and resource: what is
/// checked before the client is looked up. Needs no state.
pub fn check_request<'a>(
    p: &'a HashMap<String, String>,
    host: &LocalHost,
) -> Result<TokenRequest<'a>, OAuthError> {
    let grant_type = required(p, "grant_type")?;
    let client_id = required(p, "client_id")?;
    let grant_type = match grant_type {
        "authorization_code" => GrantType::AuthorizationCode,
        "refresh_token" => GrantType::RefreshToken,
        other => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type {other:?} is not supported"
            )))
        }
    };
    if let Some(r) = p.get("resource") {
        if !host.is_our_resource(r) {
            return Err(OAuthError::InvalidTarget(
                "resource must be this server's /mcp endpoint".into(),
            ));
        }
    }
    Ok(TokenRequest {
        grant_type,
        client_id,
        params: p,
    })
}

impl TokenRequest<'_> {
    /// The grant's own parameters, checked for form (once the client is known).
    pub fn grant(&self) -> Result<Grant, OAuthError> {
        let p = self.params;
        if self.grant_type == GrantType::AuthorizationCode {
            let code = Sensitive::new(required(p, "code")?.to_string());
            let verifier = Sensitive::new(required(p, "code_verifier")?.to_string());
            if !pkce::valid_verifier(verifier.expose()) {
                return Err(OAuthError::InvalidRequest(
                    "code_verifier must be 43 to 128 unreserved characters".into(),
                ));
            }
            let redirect_uri = p.get("redirect_uri").filter(|r| !r.is_empty()).cloned();
            Ok(Grant::AuthorizationCode {
                code,
                verifier,
                redirect_uri,
            })
        } else {
            let refresh_token = Sensitive::new(required(p, "refresh_token")?.to_string());
            if let Some(s) = p.get("scope") {
                check_refresh_scope(s)?;
            }
            Ok(Grant::RefreshToken { refresh_token })
        }
    }
}
