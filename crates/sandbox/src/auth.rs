//! Bearer-token authentication as an extractor, shared by every protected route.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::server::AppState;
use crate::store::{AuthOutcome, Caller, PAT_PREFIX};

/// Extracts the live token's holder or rejects with a 401 envelope saying why.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        if !token.starts_with(PAT_PREFIX) {
            return Err(ApiError::unauthorized("invalid token"));
        }
        if let Some(caller) = state.remembered(token) {
            return Ok(Self(caller));
        }
        let token = token.to_owned();
        match state.with_store(move |s| s.authenticate(&token)).await? {
            AuthOutcome::Valid(caller) => {
                state.remember(&caller);
                Ok(Self(caller))
            }
            AuthOutcome::Unknown => Err(ApiError::unauthorized("invalid token")),
            AuthOutcome::Revoked => Err(ApiError::unauthorized("token revoked")),
            AuthOutcome::Expired => Err(ApiError::unauthorized("token expired")),
        }
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || ApiError::unauthorized("missing bearer token");
    let value = parts.headers.get(AUTHORIZATION).ok_or_else(missing)?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid token"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}
