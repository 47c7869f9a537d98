//! Bounds a hostile local program or page cannot push past: the number of
//! registered clients and the rate of rejected PAT pastes.

use axum::http::StatusCode;
use spor_companion::config::Limits;

use crate::support::{Harness, Pkce, Reply, Tokens, PAT, REDIRECT};

fn limits(max_clients: usize, rejected_pastes_per_minute: usize) -> Limits {
    Limits {
        max_clients,
        rejected_pastes_per_minute,
        ..Limits::default()
    }
}

#[tokio::test]
async fn registrations_beyond_the_cap_evict_the_oldest_unused_client() {
    let h = Harness::start_with(limits(2, 5)).await;
    let a = h.register(&[REDIRECT]).await;
    h.clock.advance(1);
    let b = h.register(&[REDIRECT]).await;
    h.clock.advance(1);
    let c = h.register(&[REDIRECT]).await;
    assert_eq!(h.state.store.client_count().await.expect("count"), 2);
    assert!(
        !h.has_client(&a).await,
        "the oldest unused client made room"
    );
    assert!(h.has_client(&b).await);
    assert!(h.has_client(&c).await);
    h.stop().await;
}

#[tokio::test]
async fn when_every_client_is_connected_registration_is_429_and_stores_nothing() {
    let h = Harness::start_with(limits(1, 5)).await;
    let connected = h.connect().await;
    let r = h
        .register_raw(
            "application/json",
            format!(r#"{{"redirect_uris":["{REDIRECT}"]}}"#),
        )
        .await;
    r.assert_oauth_error(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    assert_eq!(h.state.store.client_count().await.expect("count"), 1);
    assert!(h.has_client(&connected.client_id).await);
    h.stop().await;
}

#[tokio::test]
async fn a_disconnected_client_makes_room_and_takes_its_revoked_grants_along() {
    let h = Harness::start_with(limits(2, 5)).await;
    let gone = h.connect().await;
    h.clock.advance(1);
    let live = h.connect_as(&gone.account_id).await;
    h.disconnect(&gone.grant_id).await;
    let before = h.counts().await;

    h.clock.advance(1);
    let newcomer = h.register(&[REDIRECT]).await;
    let after = h.counts().await;
    assert_eq!(after.clients, 2, "bounded at the cap");
    assert!(!h.has_client(&gone.client_id).await);
    assert!(h.has_client(&newcomer).await);
    assert!(
        !h.state
            .store
            .grants(true)
            .await
            .expect("grants")
            .iter()
            .any(|g| g.id == gone.grant_id),
        "the revoked grant went with its client"
    );
    assert_eq!(after.grants, before.grants - 1);
    assert_eq!(after.access_tokens, before.access_tokens - 1);
    assert_eq!(after.refresh_tokens, before.refresh_tokens - 1);
    h.refresh(&gone.client_id, &gone.tokens.refresh)
        .await
        .assert_oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    h.assert_token_refused(&gone.tokens.access).await;
    h.assert_token_works(&live.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn a_client_holding_an_unexchanged_code_is_in_use_until_the_code_expires() {
    let h = Harness::start_with(limits(1, 5)).await;
    let account = h.add_account(PAT, "acme").await;
    let client = h.register(&[REDIRECT]).await;
    let _code = h.code_for(&client, REDIRECT, &Pkce::new(), &account).await;
    let body = format!(r#"{{"redirect_uris":["{REDIRECT}"]}}"#);
    h.register_raw("application/json", body.clone())
        .await
        .assert_oauth_error(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    assert!(h.has_client(&client).await);

    h.clock.advance(spor_companion::consent::CODE_TTL + 1);
    let r = h.register_raw("application/json", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!h.has_client(&client).await);
    h.stop().await;
}

#[tokio::test]
async fn registrations_that_never_connect_are_pruned_after_a_day() {
    let h = Harness::start().await;
    let connected = h.connect().await;
    let idle = h.register(&[REDIRECT]).await;
    h.clock.advance(86_400 + 1);
    h.state.store.prune(h.now()).await.expect("prune");
    assert!(!h.has_client(&idle).await);
    assert!(h.has_client(&connected.client_id).await);
    h.stop().await;
}

#[tokio::test]
async fn revoked_grants_are_pruned_a_month_later_with_their_tokens_and_client() {
    use spor_companion::store::REVOKED_GRANT_RETENTION_SECS;

    let h = Harness::start().await;
    let gone = h.connect().await;
    let live = h.connect_as(&gone.account_id).await;
    let recent = h.connect_as(&gone.account_id).await;
    h.disconnect(&gone.grant_id).await;
    h.clock.advance(REVOKED_GRANT_RETENTION_SECS - 10);
    h.disconnect(&recent.grant_id).await;
    h.clock.advance(11);
    // Keep the live grant's tokens from expiring in the meantime.
    let fresh = h.refresh(&live.client_id, &live.tokens.refresh).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    let before = h.counts().await;

    h.state.store.prune(h.now()).await.expect("prune");
    let after = h.counts().await;
    let ids: Vec<String> = h
        .state
        .store
        .grants(true)
        .await
        .expect("grants")
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert!(!ids.contains(&gone.grant_id), "a month after: forgotten");
    assert!(
        ids.contains(&recent.grant_id),
        "revoked just now: still listed"
    );
    assert!(ids.contains(&live.grant_id));
    assert_eq!(after.grants, before.grants - 1);
    assert_eq!(after.refresh_tokens, before.refresh_tokens - 1);
    assert!(!h.has_client(&gone.client_id).await);
    assert!(h.has_client(&recent.client_id).await);
    h.refresh(&gone.client_id, &gone.tokens.refresh)
        .await
        .assert_oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    h.assert_token_works(&Tokens::from_reply(&fresh).access)
        .await;
    h.stop().await;
}

/// Posts the consent page's add-token form for a fresh pending request.
async fn paste(h: &Harness, id: &str, csrf: &str, pat: &str) -> Reply {
    let resp = h
        .http
        .post(h.url(&format!("/oauth/consent/{id}/account")))
        .header("origin", &h.base)
        .form(&[
            ("csrf", csrf),
            ("server_url", h.upstream.url.as_str()),
            ("pat", pat),
        ])
        .send()
        .await
        .expect("POST account form");
    Reply::read(resp).await
}

#[tokio::test]
async fn rejected_pat_pastes_are_limited_per_minute_without_asking_the_server() {
    let h = Harness::start_with(limits(1000, 2)).await;
    h.upstream.allow(PAT, "acme");
    let client = h.register(&[REDIRECT]).await;
    let id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &Pkce::new()))
        .await;
    let csrf = h.csrf(&id).await;
    let wrong = "spor_pat_wrong_guess_0123456789abcdef";
    for _ in 0..2 {
        let r = paste(&h, &id, &csrf, wrong).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.text.contains("rejected this token"), "{}", r.text);
    }
    let calls = h.upstream.rest_calls().len();
    let limited = paste(&h, &id, &csrf, PAT).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    assert!(
        limited.text.contains("Too many rejected tokens"),
        "{}",
        limited.text
    );
    assert_eq!(
        h.upstream.rest_calls().len(),
        calls,
        "the server was not asked"
    );
    assert!(h.state.store.accounts().await.expect("accounts").is_empty());
    limited.assert_leaks_nothing(&[PAT, wrong]);

    h.clock.advance(60);
    let ok = paste(&h, &id, &csrf, PAT).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    assert_eq!(h.state.store.accounts().await.expect("accounts").len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn the_add_token_form_needs_our_origin_and_csrf_token() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let client = h.register(&[REDIRECT]).await;
    let id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &Pkce::new()))
        .await;
    let r = paste(&h, &id, "wrong-csrf", PAT).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let csrf = h.csrf(&id).await;
    let r = Reply::read(
        h.http
            .post(h.url(&format!("/oauth/consent/{id}/account")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("server_url", h.upstream.url.as_str()),
                ("pat", PAT),
            ])
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "no Origin, no Referer: {}",
        r.text
    );
    assert!(
        h.upstream.rest_calls().is_empty(),
        "the PAT was never sent anywhere"
    );
    assert!(h.state.store.accounts().await.expect("accounts").is_empty());
    h.stop().await;
}
