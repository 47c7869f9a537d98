//! `POST /oauth/token`: authorization-code exchange (PKCE S256, exact
//! redirect URI) and refresh-token rotation.

use std::collections::HashMap;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::{check_scope, parse_params, pkce, LocalHost, OAuthError};
use crate::events::Event;
use crate::sensitive::Sensitive;
use crate::state::AppState;
use crate::store::{IssuedPair, Redeemed, RefreshOutcome};
use crate::tokens;

/// Largest token request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// Reads a form body, enforcing content type, size and no repeats.
pub(super) async fn read_form(
    headers: &HeaderMap,
    body: Body,
) -> Result<HashMap<String, String>, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ));
    }
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| OAuthError::TooLarge(format!("request body larger than {MAX_BODY} bytes")))?;
    parse_form(&bytes)
}

/// Parses a form body: UTF-8, no repeated parameters.
pub fn parse_form(bytes: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| OAuthError::InvalidRequest("body is not UTF-8".into()))?;
    parse_params(text)
}

fn required<'a>(p: &'a HashMap<String, String>, k: &str) -> Result<&'a str, OAuthError> {
    p.get(k)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::InvalidRequest(format!("{k} is required")))
}

fn token_response(pair: &IssuedPair, now: i64) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(json!({
            "access_token": pair.access_token.expose(),
            "token_type": "Bearer",
            "expires_in": (pair.access_expires_at - now).max(0),
            "refresh_token": pair.refresh_token.expose(),
            "scope": pair.scope,
        })),
    )
        .into_response()
}

/// The parts of a token request checked before the client is looked up.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: &'a str,
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
    if grant_type != "authorization_code" && grant_type != "refresh_token" {
        return Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type {grant_type:?} is not supported"
        )));
    }
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
        if self.grant_type == "authorization_code" {
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
                check_scope(Some(s))?;
            }
            Ok(Grant::RefreshToken { refresh_token })
        }
    }
}

/// `POST /oauth/token`
pub async fn token(
    State(state): State<AppState>,
    Extension(host): Extension<LocalHost>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(OAuthError::InvalidClient(
            "this server only has public clients; send client_id in the body and no Authorization header".into(),
        ));
    }
    let p = read_form(&headers, body).await?;
    let request = check_request(&p, &host)?;
    let client_id = request.client_id;
    if state.store.client(client_id.to_string()).await?.is_none() {
        return Err(OAuthError::InvalidClient(
            "unknown client_id; register again".into(),
        ));
    }
    let now = state.now();
    match request.grant()? {
        Grant::AuthorizationCode {
            code,
            verifier,
            redirect_uri,
        } => {
            let code_hash = tokens::hash(code.expose());
            let Some(stored) = state.store.code(code_hash.clone()).await? else {
                return Err(OAuthError::InvalidGrant(
                    "unknown authorization code".into(),
                ));
            };
            if stored.used_at.is_some() {
                if let Some(g) = state.store.revoke_grant_of_code(code_hash, now).await? {
                    tracing::warn!(grant = %g, "authorization code reused: grant revoked");
                    state.events.emit(Event::GrantRevoked { grant_id: g });
                }
                return Err(OAuthError::InvalidGrant(
                    "authorization code was already used".into(),
                ));
            }
            if stored.expires_at <= now {
                return Err(OAuthError::InvalidGrant(
                    "authorization code expired".into(),
                ));
            }
            if !tokens::constant_time_eq(&stored.client_id, client_id) {
                return Err(OAuthError::InvalidGrant(
                    "authorization code was issued to another client".into(),
                ));
            }
            // Required when the authorization request named it; when given, exact.
            match redirect_uri {
                None if stored.redirect_sent => {
                    return Err(OAuthError::InvalidRequest(
                        "redirect_uri is required".into(),
                    ))
                }
                Some(r) if r != stored.redirect_uri => {
                    return Err(OAuthError::InvalidGrant(
                        "redirect_uri does not match the authorization request".into(),
                    ))
                }
                _ => {}
            }
            if !pkce::verify_s256(verifier.expose(), &stored.code_challenge) {
                return Err(OAuthError::InvalidGrant(
                    "code_verifier does not match the code_challenge".into(),
                ));
            }
            match state.store.redeem_code(code_hash.clone(), now).await? {
                Redeemed::Issued(pair) => {
                    tracing::info!(grant = %pair.grant_id, client = %client_id, "assistant connected");
                    state.events.emit(Event::GrantCreated {
                        grant_id: pair.grant_id.clone(),
                    });
                    Ok(token_response(&pair, now))
                }
                Redeemed::AlreadyUsed => {
                    if let Some(g) = state.store.revoke_grant_of_code(code_hash, now).await? {
                        state.events.emit(Event::GrantRevoked { grant_id: g });
                    }
                    Err(OAuthError::InvalidGrant(
                        "authorization code was already used".into(),
                    ))
                }
                Redeemed::AccountGone => Err(OAuthError::InvalidGrant(
                    "the account chosen for this code was removed or its token rejected".into(),
                )),
            }
        }
        Grant::RefreshToken {
            refresh_token: presented,
        } => {
            match state
                .store
                .refresh(presented, client_id.to_string(), now)
                .await?
            {
                RefreshOutcome::Rotated(pair) | RefreshOutcome::Replayed(pair) => {
                    Ok(token_response(&pair, now))
                }
                RefreshOutcome::Invalid(why) => Err(OAuthError::InvalidGrant(why.into())),
                RefreshOutcome::ReuseDetected => {
                    tracing::warn!(client = %client_id, "refresh token reused after rotation: grant revoked");
                    Err(OAuthError::InvalidGrant(
                        "refresh token was already used; the connection was ended for safety"
                            .into(),
                    ))
                }
            }
        }
    }
}
