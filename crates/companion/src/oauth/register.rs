//! RFC 7591 dynamic client registration for public clients.

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde_json::json;
use spor_wire::oauth::register::{check_metadata, Registration, MAX_BODY};
use spor_wire::oauth::OAuthError;

use crate::listener::Peer;
use crate::state::AppState;
use crate::store::Client;
use crate::tokens;

/// `POST /oauth/register`
pub async fn register(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(OAuthError::InvalidRequest(
            "Content-Type must be application/json".into(),
        ));
    }
    let bytes = to_bytes(body, MAX_BODY).await.map_err(|_| {
        OAuthError::TooLarge(format!("registration body larger than {MAX_BODY} bytes"))
    })?;
    let Registration {
        name,
        redirect_uris,
        scope,
        application_type,
    } = check_metadata(&bytes)?;

    // Who registers, as the OS tells: the consent shows it beside the name
    // the client claims.
    let registered_by = match peer {
        Some(Extension(peer)) => peer.program().await,
        None => None,
    };
    let now = state.now();
    let client = Client {
        id: format!("client_{}", tokens::random_hex(16)),
        name,
        redirect_uris,
        created_at: now,
        registered_by,
        application_type,
    };
    if !state
        .store
        .insert_client(client.clone(), state.limits.max_clients)
        .await?
    {
        return Err(OAuthError::TooManyClients(
            "too many assistants are registered and connected; disconnect one first".into(),
        ));
    }
    let program = client.registered_by.as_ref().map(ToString::to_string);
    tracing::info!(client = %client.id, name = %client.name, program = program.as_deref().unwrap_or("unknown program"), "client registered");
    let mut body = json!({
            "client_id": client.id,
            "client_id_issued_at": now,
            "client_name": client.name,
            "redirect_uris": client.redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": scope,
    });
    if let Some(kind) = client.application_type {
        body["application_type"] = kind.as_str().into();
    }
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}
