//! `POST /oauth/revoke` (RFC 7009): ends the grant a token belongs to;
//! always `200`.

use axum::http::StatusCode;

use crate::support::{Harness, Params};

fn revoke_params(token: &str, client_id: Option<&str>) -> Params {
    let p = Params::default().add("token", token);
    match client_id {
        Some(c) => p.add("client_id", c),
        None => p,
    }
}

#[tokio::test]
async fn revoking_the_access_token_ends_the_grant() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let r = h
        .post_form(
            "/oauth/revoke",
            &revoke_params(&c.tokens.access, Some(&c.client_id)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.assert_leaks_nothing(&[]);
    assert_eq!(
        h.grant(&c.grant_id).await.revoke_reason.map(|r| r.as_str()),
        Some("revoked_by_client")
    );
    h.assert_token_refused(&c.tokens.access).await;
    h.refresh(&c.client_id, &c.tokens.refresh)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    h.stop().await;
}

#[tokio::test]
async fn revoking_the_refresh_token_ends_the_grant() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let r = h
        .post_form("/oauth/revoke", &revoke_params(&c.tokens.refresh, None))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(h.grant(&c.grant_id).await.revoked_at.is_some());
    h.assert_token_refused(&c.tokens.access).await;
    h.refresh(&c.client_id, &c.tokens.refresh)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    h.stop().await;
}

#[tokio::test]
async fn revoking_ends_only_that_grant() {
    let h = Harness::start().await;
    let one = h.connect().await;
    let two = h.connect_as(&one.account_id).await;
    let r = h
        .post_form("/oauth/revoke", &revoke_params(&one.tokens.access, None))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    h.assert_token_refused(&one.tokens.access).await;
    h.assert_token_works(&two.tokens.access).await;
    assert!(h.grant(&two.grant_id).await.revoked_at.is_none());
    h.stop().await;
}

#[tokio::test]
async fn revoking_an_unknown_token_is_200_and_changes_nothing() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let before = h.counts().await;
    let r = h
        .post_form(
            "/oauth/revoke",
            &revoke_params("spor_oat_not-a-token-we-issued", None),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(h.counts().await, before);
    assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn revoking_with_another_clients_id_is_200_and_leaves_the_grant_alone() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let other = h.register(&["http://127.0.0.1/other"]).await;
    let r = h
        .post_form(
            "/oauth/revoke",
            &revoke_params(&c.tokens.access, Some(&other)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn revoke_without_a_token_is_invalid_request() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let r = h
        .post_form(
            "/oauth/revoke",
            &Params::default().add("client_id", &c.client_id),
        )
        .await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    r.assert_leaks_nothing(&[&c.tokens.access, &c.tokens.refresh]);
    assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
    h.stop().await;
}
