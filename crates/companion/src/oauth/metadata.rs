//! Discovery documents: RFC 9728 protected-resource and RFC 8414
//! authorization-server metadata, spelled with the host the client used.

use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde_json::json;

use spor_wire::oauth::{SCOPE, SCOPES_OFFERED};

use crate::host::{LocalHost, AUTHORIZE_PATH, REGISTER_PATH, REVOKE_PATH, TOKEN_PATH};

/// `GET /.well-known/oauth-protected-resource[/mcp]`
pub async fn protected_resource(Extension(host): Extension<LocalHost>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "resource": host.resource(),
            "authorization_servers": [host.issuer()],
            "bearer_methods_supported": ["header"],
            "scopes_supported": [SCOPE],
            "resource_name": "Spor Companion",
        })),
    )
}

/// `GET /.well-known/oauth-authorization-server`
pub async fn authorization_server(Extension(host): Extension<LocalHost>) -> impl IntoResponse {
    let base = host.base();
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "issuer": host.issuer(),
            "authorization_endpoint": format!("{base}{AUTHORIZE_PATH}"),
            "token_endpoint": format!("{base}{TOKEN_PATH}"),
            "registration_endpoint": format!("{base}{REGISTER_PATH}"),
            "revocation_endpoint": format!("{base}{REVOKE_PATH}"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            // offline_access only here: the resource's metadata and its
            // challenges name what the resource needs (SEP-2207).
            "scopes_supported": SCOPES_OFFERED,
            "authorization_response_iss_parameter_supported": true,
            // A client_id may be the https URL of its metadata document.
            "client_id_metadata_document_supported": true,
        })),
    )
}
