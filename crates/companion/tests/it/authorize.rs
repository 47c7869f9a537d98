//! `GET /oauth/authorize`: everything validated before anything is shown;
//! `client_id`/`redirect_uri` problems are shown, the rest redirected with
//! `error`, `state` and `iss` (DESIGN §4).

use axum::http::StatusCode;

use crate::support::{other_port, query_of, Harness, Pkce, Reply, CLIENT_NAME, PAT, REDIRECT};

/// Asserts an error redirect to `redirect_uri` and that nothing is pending.
fn assert_error_redirect(h: &Harness, r: &Reply, redirect_uri: &str, error: &str) {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "body: {}", r.text);
    let loc = r.location(&h.base);
    let target = url::Url::parse(redirect_uri).expect("redirect URI");
    assert_eq!(
        (loc.scheme(), loc.host_str(), loc.port(), loc.path()),
        (
            target.scheme(),
            target.host_str(),
            target.port(),
            target.path()
        ),
        "redirected elsewhere: {loc}"
    );
    let q = query_of(&loc);
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{loc}");
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"), "{loc}");
    assert_eq!(q.get("iss"), Some(&h.base), "{loc}");
    assert!(q.get("error_description").is_some_and(|d| !d.is_empty()));
    assert!(!q.contains_key("code"), "{loc}");
}

async fn assert_nothing_pending(h: &Harness) {
    assert_eq!(h.counts().await.codes, 0);
    assert!(
        h.state.consent.list(h.now()).is_empty(),
        "a request is pending"
    );
}

/// A harness with one registered client and a valid parameter set.
async fn setup() -> (Harness, String, Pkce) {
    let h = Harness::start().await;
    let client = h.register(&[REDIRECT]).await;
    (h, client, Pkce::new())
}

#[tokio::test]
async fn unknown_client_id_is_shown_never_redirected() {
    let (h, _, pkce) = setup().await;
    let r = h
        .authorize_raw(&h.authorize_params("client_unknown", REDIRECT, &pkce))
        .await;
    r.assert_shown_error(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("unknown client_id"), "{}", r.text);
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn missing_client_id_is_shown_never_redirected() {
    let (h, client, pkce) = setup().await;
    let r = h
        .authorize_raw(
            &h.authorize_params(&client, REDIRECT, &pkce)
                .remove("client_id"),
        )
        .await;
    r.assert_shown_error(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("no client_id"), "{}", r.text);
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn unregistered_redirect_uri_is_shown_never_redirected() {
    let (h, client, pkce) = setup().await;
    for other in [
        "https://evil.example/callback",
        "http://127.0.0.1:43110/other",
        "http://localhost:43110/callback",
    ] {
        let r = h
            .authorize_raw(&h.authorize_params(&client, other, &pkce))
            .await;
        r.assert_shown_error(StatusCode::BAD_REQUEST);
        assert!(!r.text.contains("evil.example"), "{}", r.text);
    }
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn loopback_redirect_uri_on_another_port_is_accepted_and_the_code_goes_to_that_port() {
    let h = Harness::start().await;
    let account = h.add_account(PAT, "acme").await;
    let client = h.register(&["http://127.0.0.1:1000/callback"]).await;
    let pkce = Pkce::new();
    let requested = "http://127.0.0.1:5555/callback";
    let id = h
        .authorize(&h.authorize_params(&client, requested, &pkce))
        .await;
    let csrf = h.csrf(&id).await;
    let r = h.decide(&id, &csrf, "allow", &account).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let loc = r.location(&h.base);
    assert_eq!(
        format!("{}://{}{}", loc.scheme(), loc.authority(), loc.path()),
        requested
    );
    let code = query_of(&loc)["code"].clone();
    let t = h
        .token(&h.exchange_params(&client, &code, requested, &pkce.verifier))
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    h.stop().await;
}

#[tokio::test]
async fn missing_code_challenge_redirects_invalid_request() {
    let (h, client, pkce) = setup().await;
    let r = h
        .authorize_raw(
            &h.authorize_params(&client, REDIRECT, &pkce)
                .remove("code_challenge"),
        )
        .await;
    assert_error_redirect(&h, &r, REDIRECT, "invalid_request");
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn plain_code_challenge_method_redirects_invalid_request() {
    let (h, client, pkce) = setup().await;
    let params = h
        .authorize_params(&client, REDIRECT, &pkce)
        .set("code_challenge_method", "plain")
        .set("code_challenge", &pkce.verifier);
    let r = h.authorize_raw(&params).await;
    assert_error_redirect(&h, &r, REDIRECT, "invalid_request");
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn missing_code_challenge_method_redirects_invalid_request() {
    let (h, client, pkce) = setup().await;
    let r = h
        .authorize_raw(
            &h.authorize_params(&client, REDIRECT, &pkce)
                .remove("code_challenge_method"),
        )
        .await;
    assert_error_redirect(&h, &r, REDIRECT, "invalid_request");
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn response_type_token_redirects_unsupported_response_type() {
    let (h, client, pkce) = setup().await;
    let r = h
        .authorize_raw(
            &h.authorize_params(&client, REDIRECT, &pkce)
                .set("response_type", "token"),
        )
        .await;
    assert_error_redirect(&h, &r, REDIRECT, "unsupported_response_type");
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn resource_other_than_our_mcp_endpoint_redirects_invalid_target() {
    let (h, client, pkce) = setup().await;
    for bad in [
        "https://mcp.spor.example/mcp".to_string(),
        h.url("/other"),
        format!("http://127.0.0.1:{}/mcp", other_port(h.port)),
    ] {
        let r = h
            .authorize_raw(
                &h.authorize_params(&client, REDIRECT, &pkce)
                    .set("resource", &bad),
            )
            .await;
        assert_error_redirect(&h, &r, REDIRECT, "invalid_target");
    }
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn resource_with_a_trailing_slash_is_accepted() {
    let (h, client, pkce) = setup().await;
    let id = h
        .authorize(
            &h.authorize_params(&client, REDIRECT, &pkce)
                .set("resource", &h.url("/mcp/")),
        )
        .await;
    assert_eq!(h.state.consent.list(h.now())[0].id, id);
    h.stop().await;
}

#[tokio::test]
async fn malformed_scope_redirects_invalid_scope() {
    let (h, client, pkce) = setup().await;
    let r = h
        .authorize_raw(
            &h.authorize_params(&client, REDIRECT, &pkce)
                .set("scope", "mcp \"admin\""),
        )
        .await;
    assert_error_redirect(&h, &r, REDIRECT, "invalid_scope");
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn repeated_parameter_is_shown_never_redirected() {
    let (h, client, pkce) = setup().await;
    let r = h
        .authorize_raw(
            &h.authorize_params(&client, REDIRECT, &pkce)
                .add("state", "again"),
        )
        .await;
    r.assert_shown_error(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("repeated"), "{}", r.text);
    assert_nothing_pending(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn valid_request_goes_to_a_framing_proof_consent_page_naming_the_client() {
    let h = Harness::start().await;
    h.add_account(PAT, "acme").await;
    let client = h.register(&[REDIRECT]).await;
    let pkce = Pkce::new();
    let r = h
        .authorize_raw(&h.authorize_params(&client, REDIRECT, &pkce))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let loc = r.header("location").expect("Location").to_string();
    let id = loc.strip_prefix("/oauth/consent/").expect("consent path");
    let pending = h.state.consent.list(h.now());
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(pending[0].client_id, client);
    assert_eq!(pending[0].redirect_host, "127.0.0.1:43110");

    let page = h.get(&loc).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text.contains(CLIENT_NAME), "{}", page.text);
    assert!(page.text.contains(">Allow<"), "{}", page.text);
    assert!(page.text.contains(">Deny<"), "{}", page.text);
    assert!(page.text.contains("127.0.0.1:43110"), "{}", page.text);
    let csp = page
        .header("content-security-policy")
        .expect("Content-Security-Policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    page.assert_leaks_nothing(&[PAT, &pkce.verifier]);
    h.stop().await;
}

#[tokio::test]
async fn client_name_is_escaped_on_the_consent_page() {
    let h = Harness::start().await;
    h.add_account(PAT, "acme").await;
    let r = h
        .register_raw(
            "application/json",
            serde_json::json!({
                "client_name": "<script>alert(1)</script>",
                "redirect_uris": [REDIRECT],
            })
            .to_string(),
        )
        .await;
    let client = r.json()["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    let id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &Pkce::new()))
        .await;
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("<script>alert(1)"), "{}", page.text);
    assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    h.stop().await;
}
