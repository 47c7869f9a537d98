//! The OAuth 2.1 authorization server: discovery metadata, dynamic client
//! registration, authorization with consent, token and revocation endpoints.
//! The requests are parsed and checked by `spor_wire::oauth` (pure steps);
//! the handlers here look things up, store and answer. Route paths are in
//! `host`, shared with the discovery documents.

mod authorize;
mod consent_page;
mod error;
mod metadata;
mod register;
mod revoke;
mod token;

use axum::routing::{get, post};
use axum::Router;

use crate::host::{
    AUTHORIZATION_SERVER_PATH, AUTHORIZE_PATH, CONSENT_PATH, PROTECTED_RESOURCE_PATH,
    PROTECTED_RESOURCE_ROOT_PATH, REGISTER_PATH, REVOKE_PATH, TOKEN_PATH,
};
use crate::state::AppState;

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
