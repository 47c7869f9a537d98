//! OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-
//! document, which MCP authorization recommends): a `client_id` that is an
//! `https` URL names a JSON document describing the client. This module
//! holds the pure steps: which `client_id`s are such URLs, what a fetched
//! document must say, and how long it may be kept. Fetching it (and the
//! address rule of [`super::public_address`]) is the companion's job.

use serde_json::Value;
use url::Url;

use super::redirect_uri::RedirectUri;
use super::register::{check_list, check_name_characters, MAX_NAME, MAX_REDIRECT_URIS};

/// Largest document read: real ones exceed 5 KiB, none needs 64.
pub const MAX_DOCUMENT: usize = 64 * 1024;
/// Longest `client_id` URL accepted.
const MAX_URL: usize = 2048;
/// How long a document without caching headers is kept, in seconds.
pub const DEFAULT_CACHE_SECS: u64 = 5 * 60;
/// The longest a document is kept whatever its `max-age` says, in seconds:
/// a client that changes its redirect URIs is seen within a day.
pub const MAX_CACHE_SECS: u64 = 24 * 60 * 60;

/// Why a `client_id` URL or its document is refused. The message names
/// what is wrong for the consent page; none holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The `client_id` is not a URL a document may be fetched from.
    #[error("the client_id is not a valid metadata document URL: {0}")]
    BadUrl(&'static str),
    /// The body is not a JSON object.
    #[error("the document is not a JSON object")]
    NotJson,
    /// The document names another `client_id` than its URL.
    #[error("the document's client_id is not its own URL")]
    ClientIdMismatch,
    /// A required field is missing.
    #[error("the document has no {0}")]
    MissingField(&'static str),
    /// A field has a value we cannot accept.
    #[error("{0}")]
    InvalidField(String),
}

impl DocumentError {
    /// A stable code for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUrl(_) => "bad_url",
            Self::NotJson => "not_json",
            Self::ClientIdMismatch => "client_id_mismatch",
            Self::MissingField(_) => "missing_field",
            Self::InvalidField(_) => "invalid_field",
        }
    }
}

/// Whether a `client_id` asks to be treated as a metadata document URL
/// (ours are `client_` plus hex, so nothing registered looks like one).
pub fn is_document_url(client_id: &str) -> bool {
    client_id
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
}

/// Checks a `client_id` URL by the draft's rules: `https`, a host name (an
/// IP literal would make "verified by 10.0.0.1" meaningless), a path
/// beyond `/` without `.` or `..` segments, no credentials, no fragment.
/// The URL is checked as written, since [`Url`] would remove dot segments.
pub fn check_url(client_id: &str) -> Result<Url, DocumentError> {
    if client_id.len() > MAX_URL {
        return Err(DocumentError::BadUrl("it is too long"));
    }
    if client_id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(DocumentError::BadUrl(
            "it contains whitespace or a backslash",
        ));
    }
    // Checked as written: the URL parser would accept `https:/host` too.
    let Some(rest) = client_id
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("https://"))
        .and_then(|_| client_id.get(8..))
    else {
        return Err(DocumentError::BadUrl("it must use https"));
    };
    let url = Url::parse(client_id).map_err(|_| DocumentError::BadUrl("it is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DocumentError::BadUrl("it must not contain credentials"));
    }
    if client_id.contains('#') {
        return Err(DocumentError::BadUrl("it must not contain a fragment"));
    }
    match url.host() {
        Some(url::Host::Domain(_)) => {}
        Some(_) => {
            return Err(DocumentError::BadUrl(
                "its host must be a name, not an address",
            ))
        }
        None => return Err(DocumentError::BadUrl("it has no host")),
    }
    if url.path().len() <= 1 {
        return Err(DocumentError::BadUrl("it must have a path"));
    }
    let raw_path = rest
        .split('?')
        .next()
        .and_then(|before_query| before_query.find('/').map(|i| &before_query[i..]))
        .unwrap_or("");
    let dot_segment = |seg: &str| {
        matches!(
            seg.to_ascii_lowercase().as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    };
    if raw_path.split('/').any(dot_segment) {
        return Err(DocumentError::BadUrl(
            "its path must not contain . or .. segments",
        ));
    }
    Ok(url)
}

/// A client's metadata document, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDocument {
    /// The `client_name`, trimmed.
    pub name: String,
    /// The redirect URIs, as written; each passed the registration rules.
    pub redirect_uris: Vec<String>,
}

/// A required string field of the document.
fn required_str<'a>(body: &'a Value, field: &'static str) -> Result<&'a str, DocumentError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(DocumentError::MissingField(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(DocumentError::InvalidField(format!(
            "{field} must be a string"
        ))),
    }
}

/// Checks a fetched document against the URL it came from: a JSON object
/// whose `client_id` is exactly that URL, with a `client_name` and
/// `redirect_uris` that pass the same rules as a registration, a public
/// client (`token_endpoint_auth_method` absent or `none`, no secret).
pub fn check_document(client_id: &str, bytes: &[u8]) -> Result<ClientDocument, DocumentError> {
    let body: Value = serde_json::from_slice(bytes).map_err(|_| DocumentError::NotJson)?;
    if !body.is_object() {
        return Err(DocumentError::NotJson);
    }
    if required_str(&body, "client_id")? != client_id {
        return Err(DocumentError::ClientIdMismatch);
    }
    let invalid = |e: super::OAuthError| DocumentError::InvalidField(e.description().to_string());

    let raw_name = required_str(&body, "client_name")?;
    check_name_characters(raw_name).map_err(invalid)?;
    let name = raw_name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(DocumentError::InvalidField(format!(
            "client_name must be 1 to {MAX_NAME} printable characters"
        )));
    }

    let uris = match body.get("redirect_uris") {
        None | Some(Value::Null) => return Err(DocumentError::MissingField("redirect_uris")),
        Some(Value::Array(uris)) => uris,
        Some(_) => {
            return Err(DocumentError::InvalidField(
                "redirect_uris must be an array of URIs".into(),
            ))
        }
    };
    if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
        return Err(DocumentError::InvalidField(format!(
            "redirect_uris must hold 1 to {MAX_REDIRECT_URIS} URIs"
        )));
    }
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for u in uris {
        let raw = u
            .as_str()
            .ok_or_else(|| DocumentError::InvalidField("redirect URIs must be strings".into()))?;
        RedirectUri::parse(raw)
            .map_err(|why| DocumentError::InvalidField(format!("redirect URI refused: {why}")))?;
        redirect_uris.push(raw.to_string());
    }

    if let Some(m) = body.get("token_endpoint_auth_method") {
        if m.as_str() != Some("none") {
            return Err(DocumentError::InvalidField(
                "token_endpoint_auth_method must be \"none\": this server has only public clients"
                    .into(),
            ));
        }
    }
    // The draft forbids shared secrets in a public document.
    for field in ["client_secret", "client_secret_expires_at"] {
        if body.get(field).is_some() {
            return Err(DocumentError::InvalidField(format!(
                "a metadata document must not contain {field}"
            )));
        }
    }
    check_list(
        &body,
        "grant_types",
        &["authorization_code", "refresh_token"],
        "authorization_code",
    )
    .map_err(invalid)?;
    check_list(&body, "response_types", &["code"], "code").map_err(invalid)?;
    Ok(ClientDocument {
        name: name.to_string(),
        redirect_uris,
    })
}

/// The host that vouches for a client: the host of its `client_id` when
/// that is a metadata document URL (only such clients are ever stored under
/// one); `None` for a registered client, whose name is its own claim.
pub fn verifying_host(client_id: &str) -> Option<String> {
    if !is_document_url(client_id) {
        return None;
    }
    Url::parse(client_id).ok()?.host_str().map(str::to_string)
}

/// How long a document may be kept, in seconds, from its `Cache-Control`
/// header: `no-store` and `no-cache` mean not at all, `max-age` is honoured
/// up to [`MAX_CACHE_SECS`], and without either [`DEFAULT_CACHE_SECS`].
pub fn cache_lifetime(cache_control: Option<&str>) -> u64 {
    let Some(header) = cache_control else {
        return DEFAULT_CACHE_SECS;
    };
    let mut max_age = None;
    for directive in header.split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return 0;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            // A malformed max-age makes the response stale (RFC 9111 §4.2.1).
            max_age = Some(v.trim_matches('"').parse::<u64>().unwrap_or(0));
        }
    }
    max_age.map_or(DEFAULT_CACHE_SECS, |s| s.min(MAX_CACHE_SECS))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const URL: &str = "https://claude.ai/oauth/claude-code-client-metadata";

    fn doc(extra: Value) -> Vec<u8> {
        let mut body = json!({
            "client_id": URL,
            "client_name": "Claude Code",
            "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            for (k, v) in e {
                b.insert(k, v);
            }
        }
        body.to_string().into_bytes()
    }

    #[test]
    fn document_urls_are_told_from_registered_ids() {
        assert!(is_document_url(URL));
        assert!(is_document_url("HTTPS://example.com/x"));
        assert!(!is_document_url("client_0123abcd"));
        assert!(!is_document_url("http://example.com/x"));
        assert!(!is_document_url("https:"));
    }

    #[test]
    fn a_good_url_passes() {
        for ok in [
            URL,
            "https://vscode.dev/oauth/client-metadata.json",
            "https://example.com:8443/c?v=1",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn urls_against_the_rules_are_refused_with_the_reason() {
        for (bad, why) in [
            ("http://claude.ai/oauth/x", "it must use https"),
            ("https://claude.ai", "it must have a path"),
            ("https://claude.ai/", "it must have a path"),
            ("https://claude.ai/?x=1", "it must have a path"),
            (
                "https://claude.ai/a/../b",
                "its path must not contain . or .. segments",
            ),
            (
                "https://claude.ai/a/./b",
                "its path must not contain . or .. segments",
            ),
            (
                "https://claude.ai/a/%2E%2E/b",
                "its path must not contain . or .. segments",
            ),
            ("https://u:p@claude.ai/x", "it must not contain credentials"),
            ("https://claude.ai/x#f", "it must not contain a fragment"),
            (
                "https://127.0.0.1/x",
                "its host must be a name, not an address",
            ),
            ("https://[::1]/x", "its host must be a name, not an address"),
            (
                "https://claude.ai/x y",
                "it contains whitespace or a backslash",
            ),
            (
                "https://claude.ai\\..\\x",
                "it contains whitespace or a backslash",
            ),
            ("https:/claude.ai/x", "it must use https"),
            ("https://", "it is not a URL"),
        ] {
            assert_eq!(check_url(bad), Err(DocumentError::BadUrl(why)), "{bad}");
        }
    }

    #[test]
    fn a_real_document_passes() {
        let d =
            check_document(URL, &doc(json!({ "client_uri": "https://claude.ai" }))).expect("valid");
        assert_eq!(d.name, "Claude Code");
        assert_eq!(
            d.redirect_uris,
            ["http://localhost/callback", "http://127.0.0.1/callback"]
        );
    }

    #[test]
    fn the_client_id_must_be_the_url_exactly() {
        for other in [
            "https://claude.ai/oauth/other",
            "https://CLAUDE.ai/oauth/claude-code-client-metadata",
            "https://claude.ai/oauth/claude-code-client-metadata/",
        ] {
            assert_eq!(
                check_document(URL, &doc(json!({ "client_id": other }))),
                Err(DocumentError::ClientIdMismatch),
                "{other}"
            );
        }
    }

    #[test]
    fn missing_fields_are_named() {
        for field in ["client_id", "client_name", "redirect_uris"] {
            let mut body: Value = serde_json::from_slice(&doc(json!({}))).expect("json");
            if let Some(o) = body.as_object_mut() {
                o.remove(field);
            }
            assert_eq!(
                check_document(URL, body.to_string().as_bytes()),
                Err(DocumentError::MissingField(field)),
                "{field}"
            );
        }
    }

    #[test]
    fn what_a_registration_would_refuse_is_refused() {
        for (extra, message) in [
            (
                json!({ "redirect_uris": ["ftp://x.example/cb"] }),
                "redirect URI refused: redirect URI scheme \"ftp\" is not allowed",
            ),
            (
                json!({ "redirect_uris": ["http://evil.example/cb"] }),
                "redirect URI refused: http redirect URIs must use 127.0.0.1, localhost or [::1]; use https elsewhere",
            ),
            (
                json!({ "client_name": "edoC \u{202E}edualC" }),
                "client_name contains a bidirectional control character (U+202E)",
            ),
            (
                json!({ "token_endpoint_auth_method": "client_secret_basic" }),
                "token_endpoint_auth_method must be \"none\": this server has only public clients",
            ),
            (
                json!({ "client_secret": "s" }),
                "a metadata document must not contain client_secret",
            ),
            (
                json!({ "grant_types": ["client_credentials"] }),
                "grant_types value \"client_credentials\" is not supported",
            ),
        ] {
            match check_document(URL, &doc(extra.clone())) {
                Err(e @ DocumentError::InvalidField(_)) => {
                    assert_eq!(e.to_string(), message, "{extra}")
                }
                other => panic!("{extra}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_not_json() {
        for body in [&b"<html>"[..], b"[]", b"\"x\"", b""] {
            assert_eq!(check_document(URL, body), Err(DocumentError::NotJson));
        }
    }

    #[test]
    fn caching_honours_max_age_within_bounds() {
        assert_eq!(cache_lifetime(None), DEFAULT_CACHE_SECS);
        assert_eq!(cache_lifetime(Some("public, max-age=3600")), 3600);
        assert_eq!(cache_lifetime(Some("max-age=31536000")), MAX_CACHE_SECS);
        assert_eq!(cache_lifetime(Some("max-age=0")), 0);
        assert_eq!(cache_lifetime(Some("max-age=soon")), 0);
        assert_eq!(cache_lifetime(Some("no-store")), 0);
        assert_eq!(cache_lifetime(Some("max-age=600, no-cache")), 0);
        assert_eq!(cache_lifetime(Some("public")), DEFAULT_CACHE_SECS);
    }
}
