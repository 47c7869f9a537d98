//! `POST /oauth/token`: authorization-code exchange (PKCE S256, exact
//! redirect URI) and refresh-token rotation.

use std::collections::HashMap;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use spor_wire::oauth::token::{check_request, Grant};
use spor_wire::oauth::{parse_form, pkce, OAuthError};

use crate::events::Event;
use crate::host::LocalHost;
use crate::state::AppState;
use crate::store::{CodeExchange, IssuedPair, Redeemed, RefreshOutcome};
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

/// Checks that the code is presented by the client it was issued to, with
/// the redirect URI of its authorization request and the PKCE verifier of
/// its challenge. Changes nothing: a refusal here is never reuse.
fn check_presenter(
    stored: &CodeExchange,
    client_id: &str,
    redirect_uri: Option<&str>,
    verifier: &str,
) -> Result<(), OAuthError> {
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
    if !pkce::verify_s256(verifier, &stored.code_challenge) {
        return Err(OAuthError::InvalidGrant(
            "code_verifier does not match the code_challenge".into(),
        ));
    }
    Ok(())
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
    let client_id = request.client_id.to_string();
    let now = state.now();
    // Each grant is decided in one grouped write (see `store::group`),
    // which also checks the client; a malformed grant learns of an unknown
    // client first, as a well-formed one does.
    let grant = match request.grant() {
        Ok(g) => g,
        Err(e) => {
            if state.store.client(client_id).await?.is_none() {
                return Err(unknown_client());
            }
            return Err(e);
        }
    };
    match grant {
        Grant::AuthorizationCode {
            code,
            verifier,
            redirect_uri,
        } => {
            let presenter = client_id.clone();
            let outcome = state
                .store
                .exchange_code(
                    client_id.clone(),
                    tokens::hash(code.expose()),
                    now,
                    move |stored| {
                        check_presenter(
                            stored,
                            &presenter,
                            redirect_uri.as_deref(),
                            verifier.expose(),
                        )
                    },
                )
                .await?;
            match outcome {
                Redeemed::Issued(pair) => {
                    tracing::info!(grant = %pair.grant_id, client = %client_id, "assistant connected");
                    state.events.emit(Event::GrantCreated {
                        grant_id: pair.grant_id.clone(),
                    });
                    Ok(token_response(&pair, now))
                }
                Redeemed::UnknownClient => Err(unknown_client()),
                Redeemed::UnknownCode => Err(OAuthError::InvalidGrant(
                    "unknown authorization code".into(),
                )),
                Redeemed::Refused(e) => Err(e),
                Redeemed::AlreadyUsed(revoked) => {
                    // The code's own client with its verifier presented it
                    // again: the code leaked from it, so the grant it
                    // minted is no longer trustworthy.
                    if let Some(g) = revoked {
                        tracing::warn!(grant = %g, "authorization code reused: grant revoked");
                        state.events.emit(Event::GrantRevoked { grant_id: g });
                    }
                    Err(OAuthError::InvalidGrant(
                        "authorization code was already used".into(),
                    ))
                }
                Redeemed::Expired => Err(OAuthError::InvalidGrant(
                    "authorization code expired".into(),
                )),
                Redeemed::AccountGone => Err(OAuthError::InvalidGrant(
                    "the account chosen for this code was removed or its token rejected".into(),
                )),
            }
        }
        Grant::RefreshToken {
            refresh_token: presented,
        } => match state
            .store
            .refresh(presented, client_id.clone(), now)
            .await?
        {
            RefreshOutcome::Rotated(pair) | RefreshOutcome::Replayed(pair) => {
                Ok(token_response(&pair, now))
            }
            RefreshOutcome::UnknownClient => Err(unknown_client()),
            RefreshOutcome::Invalid(why) => Err(OAuthError::InvalidGrant(why.into())),
            RefreshOutcome::ReuseDetected => {
                tracing::warn!(client = %client_id, "refresh token reused after rotation: grant revoked");
                Err(OAuthError::InvalidGrant(
                    "refresh token was already used; the connection was ended for safety".into(),
                ))
            }
        },
    }
}

fn unknown_client() -> OAuthError {
    OAuthError::InvalidClient("unknown client_id; register again".into())
}
