//! Dynamic client registration (RFC 7591), and finding out whether the
//! server still knows a registration the bridge kept.

use serde_json::Value;
use url::Url;

use super::discovery::Endpoints;
use super::error::AuthError;
use super::http::{oauth_error_text, read_json, send};
use super::token::{self, TokenFailure};
use crate::sensitive::Sensitive;
use crate::tokens::random_b64;

/// Registers a public client named `client_name`; returns its `client_id`.
pub(super) async fn register(
    http: &reqwest::Client,
    ep: &Endpoints,
    client_name: &str,
    redirect_uri: &str,
) -> Result<String, AuthError> {
    let reg = ep.registration.clone().ok_or_else(|| {
        AuthError::Registration(
            ep.issuer.clone(),
            "it offers no dynamic registration".into(),
        )
    })?;
    let body = serde_json::json!({
        "client_name": client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "software_id": "spor-companion-bridge",
        "software_version": env!("CARGO_PKG_VERSION"),
    });
    let resp = send(&reg, http.post(reg.clone()).json(&body)).await?;
    let status = resp.status();
    let json = read_json(resp).await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(AuthError::Registration(
            ep.issuer.clone(),
            oauth_error_text(status, &json),
        ));
    }
    json.get("client_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| AuthError::Registration(ep.issuer.clone(), "no client_id".into()))
}

/// Whether the server still knows `client_id`: a refresh with a token
/// nobody holds answers `invalid_grant` for a known client and
/// `invalid_client` for an unknown one, without touching any grant.
pub(super) async fn client_known(
    http: &reqwest::Client,
    ep: &Endpoints,
    resource: &Url,
    client_id: &str,
) -> Result<bool, AuthError> {
    let probe = Sensitive::new(format!("spor_ort_probe{}", random_b64(16)));
    match token::refresh(http, ep, resource, client_id, &probe).await {
        Err(TokenFailure::Refused(code, _)) => Ok(code != "invalid_client"),
        Err(TokenFailure::Other(e)) => Err(e),
        Ok(_) => Ok(true),
    }
}
