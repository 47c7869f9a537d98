//! `POST /oauth/revoke` (RFC 7009): ends the grant an access or refresh token
//! belongs to. Unknown tokens also get `200`, so the endpoint reveals nothing.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::token::read_form;
use crate::events::Event;
use crate::state::AppState;
use crate::tokens;
use spor_wire::oauth::OAuthError;

/// `POST /oauth/revoke`
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let p = read_form(&headers, body).await?;
    let token = p
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    let client_id = p.get("client_id").filter(|c| !c.is_empty()).cloned();
    if let Some(grant) = state
        .store
        .revoke_by_token(tokens::hash(token), client_id, state.now())
        .await?
    {
        tracing::info!(grant = %grant, "assistant disconnected by its client");
        state.events.emit(Event::GrantRevoked { grant_id: grant });
    }
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response())
}
