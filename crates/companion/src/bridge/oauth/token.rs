//! The token endpoint: exchanging a grant (code or refresh token) for
//! tokens, and telling a refusal the person must see to apart from a
//! failure that should not involve them.

use serde_json::Value;
use url::Url;

use super::discovery::Endpoints;
use super::error::AuthError;
use super::http::{oauth_error_text, read_json, send};
use crate::sensitive::Sensitive;

/// A successful token response.
pub(super) struct TokenResponse {
    pub(super) access: Sensitive<String>,
    pub(super) refresh: Option<Sensitive<String>>,
    pub(super) expires_in: Option<i64>,
}

/// How a token-endpoint call failed.
pub(super) enum TokenFailure {
    /// OAuth error code from a 4xx answer (`invalid_grant`, `invalid_client`, …).
    Refused(String, String),
    /// Anything else (unreachable, 5xx, garbage): do not involve the person.
    Other(AuthError),
}

impl TokenResponse {
    fn parse(json: &Value) -> Result<Self, AuthError> {
        let access = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::Token("the answer has no access_token".into()))?;
        let bearer = json
            .get("token_type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
        if !bearer {
            return Err(AuthError::Token("the token is not a Bearer token".into()));
        }
        Ok(Self {
            access: Sensitive::new(access.to_string()),
            refresh: json
                .get("refresh_token")
                .and_then(Value::as_str)
                .map(|s| Sensitive::new(s.to_string())),
            expires_in: json.get("expires_in").and_then(Value::as_i64),
        })
    }
}

/// A refresh-token grant for `resource`.
pub(super) async fn refresh(
    http: &reqwest::Client,
    ep: &Endpoints,
    resource: &Url,
    client_id: &str,
    refresh: &Sensitive<String>,
) -> Result<TokenResponse, TokenFailure> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.expose().as_str()),
        ("client_id", client_id),
        ("resource", resource.as_str()),
    ];
    request(http, ep, &form).await
}

/// One form POST to the token endpoint.
pub(super) async fn request(
    http: &reqwest::Client,
    ep: &Endpoints,
    form: &[(&str, &str)],
) -> Result<TokenResponse, TokenFailure> {
    let request = http
        .post(ep.token.clone())
        .header("accept", "application/json")
        .form(form);
    let resp = send(&ep.token, request)
        .await
        .map_err(TokenFailure::Other)?;
    let status = resp.status();
    let json = read_json(resp).await.unwrap_or(Value::Null);
    if status.is_success() {
        return TokenResponse::parse(&json).map_err(TokenFailure::Other);
    }
    match json.get("error").and_then(Value::as_str) {
        Some(code) if status.is_client_error() => Err(TokenFailure::Refused(
            code.to_string(),
            oauth_error_text(status, &json),
        )),
        _ => Err(TokenFailure::Other(AuthError::Token(oauth_error_text(
            status, &json,
        )))),
    }
}
