//! The HTTP side every OAuth step shares: the client's bounds, sending only
//! to a socket of our own OS user, reading a bounded JSON answer, and
//! turning failures into text without secrets.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::error::AuthError;
use crate::bridge::socket_owner::check;
use crate::http_body::read_whole;

/// Bound on metadata, registration and token responses.
const MAX_JSON: usize = 256 * 1024;

/// The HTTP client for discovery, registration and the token endpoint:
/// short timeouts, and no redirects (an answer must come from where we asked).
pub(super) fn client(resource: &Url) -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AuthError::Unreachable(resource.to_string(), e.to_string()))
}

/// Sends `request` to `url` once the socket listening there is known to be
/// our own user's; otherwise, or when `url` cannot be reached, why not.
pub(super) async fn send(
    url: &Url,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, AuthError> {
    check(url).await?;
    request.send().await.map_err(|e| unreachable(url, &e))
}

/// Why `url` could not be reached, naming only its origin.
pub(super) fn unreachable(url: &Url, e: &reqwest::Error) -> AuthError {
    let why = if e.is_connect() {
        "connection refused; is Spor Companion running?".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        "the connection failed".to_string()
    };
    AuthError::Unreachable(origin(url), why)
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The body as JSON, or `Err` when it is unreadable, too large or not JSON.
pub(super) async fn read_json(resp: reqwest::Response) -> Result<Value, ()> {
    let mut resp = resp;
    let buf = read_whole(&mut resp, MAX_JSON, None)
        .await
        .map_err(|_| ())?;
    serde_json::from_slice(&buf).map_err(|_| ())
}

/// An OAuth error answer as text: `error (error_description)`, else the status.
pub(super) fn oauth_error_text(status: StatusCode, json: &Value) -> String {
    let code = json.get("error").and_then(Value::as_str);
    let desc = json.get("error_description").and_then(Value::as_str);
    match (code, desc) {
        (Some(c), Some(d)) => format!("{c} ({d})"),
        (Some(c), None) => c.to_string(),
        _ => format!("HTTP {status}"),
    }
}
