//! The RFC 6750 / RFC 9728 challenge sent when a `/mcp` call's bearer token
//! is missing or fails (the header itself is parsed by `spor_wire::bearer`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::host::LocalHost;

/// `401` with `WWW-Authenticate: Bearer resource_metadata="…"`, plus
/// `error="invalid_token"` and a description when a token was sent.
pub fn challenge(host: &LocalHost, invalid: Option<&str>) -> Response {
    let mut value = format!("Bearer resource_metadata=\"{}\"", host.resource_metadata());
    let body = match invalid {
        Some(desc) => {
            value.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{desc}\""
            ));
            serde_json::json!({ "error": "invalid_token", "error_description": desc })
        }
        None => {
            serde_json::json!({ "error": "unauthorized", "error_description": "authorization required" })
        }
    };
    let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}
