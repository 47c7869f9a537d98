//! Refresh-token rotation: single use, a short grace window for racing
//! hosts, theft detection after it (DESIGN §4); the access tokens a
//! rotation replaced stop working a short grace after it.

use std::sync::Arc;

use axum::http::StatusCode;
use spor_companion::store::REFRESH_GRACE_SECS;

use crate::support::{assert_invalid_token, Harness, Tokens};

/// The gateway's refusal of an access token replaced longer ago than
/// `Limits::superseded_access_grace` (60 s by default).
const SUPERSEDED: &str = "the access token was replaced by a refresh; use the newer one";

/// Asserts `/mcp` refuses `token` as replaced by a refresh.
async fn assert_superseded(h: &Harness, token: &str) {
    let r = h.mcp(token).await;
    assert_invalid_token(h, &r);
    assert_eq!(r.json()["error_description"], SUPERSEDED, "{}", r.text);
}

#[tokio::test]
async fn rotation_issues_a_new_pair_and_the_old_access_token_works_through_the_grace() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let r = h.refresh(&c.client_id, &c.tokens.refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.json()["token_type"], "Bearer");
    assert_eq!(r.json()["expires_in"], 2_592_000);
    let next = Tokens::from_reply(&r);
    assert_ne!(next.access, c.tokens.access);
    assert_ne!(next.refresh, c.tokens.refresh);
    assert!(next.access.starts_with("spor_oat_"));
    assert!(next.refresh.starts_with("spor_ort_"));
    assert_eq!(h.grant_of(&next.access).await, c.grant_id);
    h.assert_token_works(&next.access).await;
    // Calls already under way with the old token finish.
    h.assert_token_works(&c.tokens.access).await;
    // The successor rotates in turn.
    let third = h.refresh(&c.client_id, &next.refresh).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text);
    h.stop().await;
}

#[tokio::test]
async fn a_superseded_access_token_works_59_seconds_after_the_refresh_and_is_refused_at_61() {
    let h = Harness::start().await;
    let c = h.connect().await;
    // Used (and cached by the gateway) before the refresh.
    h.assert_token_works(&c.tokens.access).await;
    let next = Tokens::from_reply(&h.refresh(&c.client_id, &c.tokens.refresh).await);
    h.clock.advance(59);
    h.assert_token_works(&c.tokens.access).await;
    h.assert_token_works(&next.access).await;
    h.clock.advance(2);
    assert_superseded(&h, &c.tokens.access).await;
    h.assert_token_works(&next.access).await;
    // Refused, not revoked: the grant and its newest tokens carry on.
    assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
    let r = h.refresh(&c.client_id, &next.refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_superseded(&h, &c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn each_access_tokens_grace_runs_from_the_refresh_that_replaced_it() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let second = Tokens::from_reply(&h.refresh(&c.client_id, &c.tokens.refresh).await);
    h.clock.advance(30);
    let third = Tokens::from_reply(&h.refresh(&c.client_id, &second.refresh).await);
    h.clock.advance(31);
    // 61 s after the first refresh, 31 s after the second.
    assert_superseded(&h, &c.tokens.access).await;
    h.assert_token_works(&second.access).await;
    h.assert_token_works(&third.access).await;
    h.clock.advance(30);
    assert_superseded(&h, &second.access).await;
    h.assert_token_works(&third.access).await;
    h.stop().await;
}

#[tokio::test]
async fn an_access_token_never_superseded_still_works_after_29_days() {
    let h = Harness::start().await;
    let c = h.connect().await;
    // Another assistant's refresh replaces only its own grant's token.
    let other = h.connect_as(&c.account_id).await;
    let rotated = Tokens::from_reply(&h.refresh(&other.client_id, &other.tokens.refresh).await);
    h.clock.advance(29 * 86_400);
    h.assert_token_works(&c.tokens.access).await;
    h.assert_token_works(&rotated.access).await;
    assert_superseded(&h, &other.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn reuse_inside_the_grace_window_returns_the_same_successor_pair() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let first = Tokens::from_reply(&h.refresh(&c.client_id, &c.tokens.refresh).await);
    h.clock.advance(REFRESH_GRACE_SECS);
    let r = h.refresh(&c.client_id, &c.tokens.refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let again = Tokens::from_reply(&r);
    assert_eq!(again.access, first.access);
    assert_eq!(again.refresh, first.refresh);
    assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
    h.assert_token_works(&first.access).await;
    assert_eq!(
        h.refresh(&c.client_id, &first.refresh).await.status,
        StatusCode::OK
    );
    h.stop().await;
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_whole_grant() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let successor = Tokens::from_reply(&h.refresh(&c.client_id, &c.tokens.refresh).await);
    h.clock.advance(REFRESH_GRACE_SECS + 1);
    let r = h.refresh(&c.client_id, &c.tokens.refresh).await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    r.assert_leaks_nothing(&[]);
    let g = h.grant(&c.grant_id).await;
    assert_eq!(
        g.revoke_reason.map(|r| r.as_str()),
        Some("refresh_token_reuse")
    );
    h.assert_token_refused(&successor.access).await;
    h.assert_token_refused(&c.tokens.access).await;
    h.refresh(&c.client_id, &successor.refresh)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    h.stop().await;
}

#[tokio::test]
async fn refresh_by_another_client_is_invalid_grant_and_keeps_the_grant() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let other = h.register(&["http://127.0.0.1/other"]).await;
    let before = h.counts().await;
    let r = h.refresh(&other, &c.tokens.refresh).await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    r.assert_leaks_nothing(&[]);
    assert_eq!(h.counts().await, before, "nothing minted");
    assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
    h.assert_token_works(&c.tokens.access).await;
    // The rightful client can still use its refresh token.
    let ok = h.refresh(&c.client_id, &c.tokens.refresh).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    h.stop().await;
}

#[tokio::test]
async fn refresh_token_older_than_90_days_is_invalid_grant() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.clock.advance(90 * 86_400);
    let before = h.counts().await;
    let r = h.refresh(&c.client_id, &c.tokens.refresh).await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(h.counts().await, before, "nothing minted");
    h.stop().await;
}

#[tokio::test]
async fn refresh_token_just_short_of_90_days_still_rotates() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.clock.advance(90 * 86_400 - 1);
    let r = h.refresh(&c.client_id, &c.tokens.refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.stop().await;
}

#[tokio::test]
async fn unknown_refresh_token_is_invalid_grant() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let r = h
        .refresh(&c.client_id, "spor_ort_never-issued-by-this-server")
        .await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
    h.stop().await;
}

#[tokio::test]
async fn refresh_asking_for_an_unknown_scope_is_invalid_scope() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let before = h.counts().await;
    let r = h
        .token(
            &crate::support::Params::default()
                .add("grant_type", "refresh_token")
                .add("refresh_token", &c.tokens.refresh)
                .add("client_id", &c.client_id)
                .add("scope", "admin"),
        )
        .await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_scope");
    assert_eq!(h.counts().await, before);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_racing_refreshes_of_one_token_all_get_the_same_pair_and_keep_the_grant() {
    const RACERS: usize = 64;
    let h = Arc::new(Harness::start().await);
    let c = h.connect().await;
    // Released together, so the requests overlap in the server as much as
    // two cores allow.
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (h, start) = (h.clone(), start.clone());
        let (client, refresh) = (c.client_id.clone(), c.tokens.refresh.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            h.refresh(&client, &refresh).await
        }));
    }
    let mut pairs = Vec::new();
    for t in tasks {
        let r = t.await.expect("refresh task");
        // Inside the grace window there is no definite error to give: every
        // racer must get the pair.
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let p = Tokens::from_reply(&r);
        pairs.push((p.access, p.refresh));
    }
    assert_eq!(pairs.len(), RACERS);
    assert!(pairs.windows(2).all(|w| w[0] == w[1]), "pairs differ");
    assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
    assert_eq!(h.counts().await.refresh_tokens, 2, "exactly one rotation");
    h.assert_token_works(&pairs[0].0).await;
    // The successor is a normal refresh token: it rotates once more.
    let r = h.refresh(&c.client_id, &pairs[0].1).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(h.grant(&c.grant_id).await.revoked_at.is_none());
    let h = Arc::try_unwrap(h).unwrap_or_else(|_| panic!("harness still shared"));
    h.stop().await;
}
