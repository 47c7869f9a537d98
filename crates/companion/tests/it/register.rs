//! RFC 7591 dynamic client registration (DESIGN §4: redirect URI rules).

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::support::{Harness, CLIENT_NAME};

/// Sends `body` and asserts the refusal: exact status and code, and that no
/// client was stored.
async fn assert_refused(content_type: &str, body: String, status: StatusCode, error: &str) {
    let h = Harness::start().await;
    let before = h.counts().await;
    let r = h.register_raw(content_type, body).await;
    r.assert_oauth_error(status, error);
    r.assert_leaks_nothing(&[]);
    assert!(r.json().get("client_id").is_none());
    assert_eq!(h.counts().await, before, "nothing stored");
    assert_eq!(h.state.store.client_count().await.expect("count"), 0);
    h.stop().await;
}

async fn assert_uris_refused(redirect_uris: Value) {
    assert_refused(
        "application/json",
        json!({ "client_name": CLIENT_NAME, "redirect_uris": redirect_uris }).to_string(),
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn loopback_and_https_redirect_uris_register_a_public_client() {
    let h = Harness::start().await;
    let uris = [
        "http://127.0.0.1:33418/callback",
        "http://localhost/cb",
        "http://[::1]:9/cb",
        "https://claude.ai/api/mcp/auth_callback",
    ];
    let r = h
        .register_raw(
            "application/json",
            json!({ "client_name": CLIENT_NAME, "redirect_uris": uris }).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    let id = body["client_id"].as_str().expect("client_id");
    assert!(id.starts_with("client_"), "{id}");
    assert_eq!(body["redirect_uris"], json!(uris));
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["client_name"], CLIENT_NAME);
    assert!(body.get("client_secret").is_none());
    let stored = h
        .state
        .store
        .client(id.to_string())
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.redirect_uris, uris);
    assert_eq!(stored.name, CLIENT_NAME);
    assert_eq!(h.state.store.client_count().await.expect("count"), 1);
    h.stop().await;
}

#[tokio::test]
async fn javascript_redirect_uri_is_invalid_redirect_uri() {
    assert_uris_refused(json!(["javascript:alert(1)"])).await;
}

#[tokio::test]
async fn redirect_uri_with_a_fragment_is_invalid_redirect_uri() {
    assert_uris_refused(json!(["https://app.example/cb#frag"])).await;
}

#[tokio::test]
async fn plain_http_redirect_uri_to_a_non_loopback_host_is_invalid_redirect_uri() {
    assert_uris_refused(json!(["http://evil.example/cb"])).await;
}

#[tokio::test]
async fn ftp_redirect_uri_is_invalid_redirect_uri() {
    assert_uris_refused(json!(["ftp://127.0.0.1/cb"])).await;
}

#[tokio::test]
async fn one_bad_redirect_uri_among_good_ones_refuses_the_registration() {
    assert_uris_refused(json!(["http://127.0.0.1/cb", "http://evil.example/cb"])).await;
}

#[tokio::test]
async fn missing_redirect_uris_is_invalid_redirect_uri() {
    assert_refused(
        "application/json",
        json!({ "client_name": CLIENT_NAME }).to_string(),
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn redirect_uris_that_is_not_an_array_is_invalid_redirect_uri() {
    assert_uris_refused(json!("http://127.0.0.1/cb")).await;
}

#[tokio::test]
async fn non_string_redirect_uri_is_invalid_redirect_uri() {
    assert_uris_refused(json!([42])).await;
}

#[tokio::test]
async fn empty_redirect_uris_array_is_invalid_redirect_uri() {
    assert_uris_refused(json!([])).await;
}

#[tokio::test]
async fn malformed_json_is_invalid_client_metadata() {
    assert_refused(
        "application/json",
        "{\"redirect_uris\": [".into(),
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
}

#[tokio::test]
async fn json_that_is_not_an_object_is_invalid_client_metadata() {
    assert_refused(
        "application/json",
        "[\"http://127.0.0.1/cb\"]".into(),
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
}

#[tokio::test]
async fn wrong_content_type_is_invalid_request() {
    assert_refused(
        "application/x-www-form-urlencoded",
        json!({ "redirect_uris": ["http://127.0.0.1/cb"] }).to_string(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn confidential_client_auth_method_is_invalid_client_metadata() {
    assert_refused(
        "application/json",
        json!({
            "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
        })
        .to_string(),
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
}

#[tokio::test]
async fn body_over_16_kib_is_413_invalid_request() {
    let padding = "x".repeat(17 * 1024);
    assert_refused(
        "application/json",
        json!({ "redirect_uris": ["http://127.0.0.1/cb"], "client_name": padding }).to_string(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
    )
    .await;
}

/// Registers `name` and asserts the refusal names its character class and
/// code point, and that no client was stored.
async fn assert_name_refused(name: &str, description: &str) {
    let h = Harness::start().await;
    let before = h.counts().await;
    let r = h
        .register_raw(
            "application/json",
            json!({ "client_name": name, "redirect_uris": ["http://127.0.0.1/cb"] }).to_string(),
        )
        .await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata");
    assert_eq!(r.json()["error_description"], description, "{name:?}");
    assert!(r.json().get("client_id").is_none());
    assert_eq!(h.counts().await, before, "nothing stored");
    assert_eq!(h.state.store.client_count().await.expect("count"), 0);
    h.stop().await;
}

#[tokio::test]
async fn client_name_with_a_right_to_left_override_is_invalid_client_metadata() {
    // Shown as "Claude Code", and the "(name as stated by the app)" after it
    // would read backwards.
    assert_name_refused(
        "\u{202E}edoC edualC",
        "client_name contains a bidirectional control character (U+202E)",
    )
    .await;
}

#[tokio::test]
async fn client_name_with_a_bidi_isolate_is_invalid_client_metadata() {
    assert_name_refused(
        "Claude \u{2067}Code",
        "client_name contains a bidirectional control character (U+2067)",
    )
    .await;
}

#[tokio::test]
async fn client_name_with_a_zero_width_space_is_invalid_client_metadata() {
    assert_name_refused(
        "Claude\u{200B} Desktop",
        "client_name contains an invisible formatting character (U+200B)",
    )
    .await;
}

#[tokio::test]
async fn client_name_with_a_tag_character_is_invalid_client_metadata() {
    assert_name_refused(
        "Claude Code\u{E0041}",
        "client_name contains an invisible formatting character (U+E0041)",
    )
    .await;
}

#[tokio::test]
async fn client_name_with_a_newline_is_invalid_client_metadata() {
    assert_name_refused(
        "Claude Code\nApproved by your administrator",
        "client_name contains a control character (U+000A)",
    )
    .await;
}

#[tokio::test]
async fn client_name_with_a_line_separator_is_invalid_client_metadata() {
    assert_name_refused(
        "Claude Code\u{2028}Spor Companion",
        "client_name contains a line or paragraph separator (U+2028)",
    )
    .await;
}

#[tokio::test]
async fn client_name_with_a_private_use_character_is_invalid_client_metadata() {
    assert_name_refused(
        "Claude \u{E000}",
        "client_name contains a private-use character (U+E000)",
    )
    .await;
}

#[tokio::test]
async fn client_name_with_an_unassigned_code_point_is_invalid_client_metadata() {
    assert_name_refused(
        "Claude \u{0378}",
        "client_name contains an unassigned code point (U+0378)",
    )
    .await;
}

#[tokio::test]
async fn client_names_in_any_script_and_with_emoji_register() {
    let h = Harness::start().await;
    for name in [
        "Claude 🤖",
        "مساعد كلود",
        "עוזר הקוד",
        "克劳德助手",
        "Café ☕",
    ] {
        let r = h
            .register_raw(
                "application/json",
                json!({ "client_name": name, "redirect_uris": ["http://127.0.0.1/cb"] })
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.text);
        assert_eq!(r.json()["client_name"], name);
        let id = r.json()["client_id"]
            .as_str()
            .expect("client_id")
            .to_string();
        let stored = h
            .state
            .store
            .client(id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(stored.name, name);
    }
    h.stop().await;
}

/// Registers with `application_type` and the given redirect URIs.
async fn register_typed(h: &Harness, kind: Value, uris: &[&str]) -> crate::support::Reply {
    h.register_raw(
        "application/json",
        json!({ "client_name": CLIENT_NAME, "application_type": kind, "redirect_uris": uris })
            .to_string(),
    )
    .await
}

/// Asserts a typed registration is refused with `error` and `description`
/// and stores nothing.
async fn assert_typed_refused(kind: Value, uris: &[&str], error: &str, description: &str) {
    let h = Harness::start().await;
    let before = h.counts().await;
    let r = register_typed(&h, kind, uris).await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, error);
    assert_eq!(r.json()["error_description"], description);
    assert_eq!(h.counts().await, before, "nothing stored");
    assert_eq!(h.state.store.client_count().await.expect("count"), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_native_application_with_loopback_redirects_registers_and_its_type_is_stored() {
    let h = Harness::start().await;
    let r = register_typed(
        &h,
        json!("native"),
        &["http://127.0.0.1/callback", "http://localhost/callback"],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["application_type"], "native");
    let id = r.json()["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    let stored = h
        .state
        .store
        .client(id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        stored.application_type,
        Some(spor_wire::oauth::register::ApplicationType::Native)
    );
    h.stop().await;
}

#[tokio::test]
async fn a_native_application_with_an_https_redirect_is_invalid_redirect_uri() {
    assert_typed_refused(
        json!("native"),
        &["http://127.0.0.1/callback", "https://app.example/cb"],
        "invalid_redirect_uri",
        "\"https://app.example/cb\": a native application must use a loopback redirect URI (http://127.0.0.1, localhost or [::1])",
    )
    .await;
}

#[tokio::test]
async fn a_web_application_with_a_loopback_redirect_is_invalid_redirect_uri() {
    assert_typed_refused(
        json!("web"),
        &["http://127.0.0.1/callback"],
        "invalid_redirect_uri",
        "\"http://127.0.0.1/callback\": a web application must use an https redirect URI",
    )
    .await;
}

#[tokio::test]
async fn a_web_application_with_https_redirects_registers() {
    let h = Harness::start().await;
    let r = register_typed(&h, json!("web"), &["https://app.example/cb"]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["application_type"], "web");
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_application_type_is_invalid_client_metadata() {
    assert_typed_refused(
        json!("desktop"),
        &["http://127.0.0.1/callback"],
        "invalid_client_metadata",
        "application_type \"desktop\" is not supported; use \"native\" or \"web\"",
    )
    .await;
}

#[tokio::test]
async fn a_missing_application_type_is_accepted_and_not_echoed() {
    let h = Harness::start().await;
    let r = h
        .register_raw(
            "application/json",
            json!({ "client_name": CLIENT_NAME, "redirect_uris": ["http://127.0.0.1/cb"] })
                .to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.json().get("application_type").is_none(), "{}", r.text);
    h.stop().await;
}

#[tokio::test]
async fn offline_access_in_a_registration_is_granted_and_unknown_scopes_dropped() {
    let h = Harness::start().await;
    for (asked, granted) in [
        ("mcp offline_access", "mcp offline_access"),
        ("mcp admin", "mcp"),
    ] {
        let r = h
            .register_raw(
                "application/json",
                json!({
                    "client_name": CLIENT_NAME,
                    "redirect_uris": ["http://127.0.0.1/cb"],
                    "scope": asked,
                })
                .to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.json()["scope"], granted, "{asked}");
    }
    h.stop().await;
}
