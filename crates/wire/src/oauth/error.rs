//! OAuth errors, their HTTP status, and (with the `axum` feature) the one
//! place they become HTTP responses.

use http::StatusCode;

/// An OAuth protocol error; `Display` is the wire `error` code.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Malformed or missing parameter.
    #[error("invalid_request")]
    InvalidRequest(String),
    /// Unknown client: hosts re-register on this.
    #[error("invalid_client")]
    InvalidClient(String),
    /// Bad, expired, reused or foreign code or refresh token.
    #[error("invalid_grant")]
    InvalidGrant(String),
    /// Grant type we do not support.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType(String),
    /// Scope we do not offer.
    #[error("invalid_scope")]
    InvalidScope(String),
    /// `resource` is not our MCP endpoint (RFC 8707).
    #[error("invalid_target")]
    InvalidTarget(String),
    /// Registration with an unacceptable redirect URI (RFC 7591).
    #[error("invalid_redirect_uri")]
    InvalidRedirectUri(String),
    /// Registration with unacceptable metadata (RFC 7591).
    #[error("invalid_client_metadata")]
    InvalidClientMetadata(String),
    /// Body over the size bound.
    #[error("invalid_request")]
    TooLarge(String),
    /// Our fault.
    #[error("server_error")]
    ServerError(String),
    /// The client table is full of clients in use.
    #[error("temporarily_unavailable")]
    TooManyClients(String),
}

impl OAuthError {
    /// The human explanation.
    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d)
            | Self::InvalidRedirectUri(d)
            | Self::InvalidClientMetadata(d)
            | Self::TooLarge(d)
            | Self::ServerError(d)
            | Self::TooManyClients(d) => d,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TooManyClients(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[cfg(feature = "axum")]
mod response {
    use axum::http::{header, HeaderValue};
    use axum::response::{IntoResponse, Response};
    use axum::Json;

    use super::OAuthError;

    impl IntoResponse for OAuthError {
        fn into_response(self) -> Response {
            let body = serde_json::json!({ "error": self.to_string(), "error_description": self.description() });
            let mut resp = (self.status(), Json(body)).into_response();
            let h = resp.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if matches!(self, Self::InvalidClient(_)) {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_client\""),
                );
            }
            resp
        }
    }
}
