//! Adding and removing PATs: validated upstream, all-or-nothing, and
//! removal cascading to every grant minted from the PAT (DESIGN §2).

use std::collections::BTreeMap;

use spor_companion::accounts::{self, AccountError};
use spor_companion::sensitive::Sensitive;
use spor_companion::store::AccountStatus;

use crate::support::{hash_prefix, Harness, PAT, UPSTREAM_REJECTION};

fn pat(s: &str) -> Sensitive<String> {
    Sensitive::new(s.to_string())
}

async fn assert_nothing_stored(h: &Harness) {
    assert!(h.state.store.accounts().await.expect("accounts").is_empty());
    assert_eq!(h.secrets.entries(), BTreeMap::new());
}

#[tokio::test]
async fn a_pat_the_server_accepts_is_stored_with_its_identity_and_secret() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let added = accounts::add_spor_account(&h.state, &h.upstream.url, None, pat(PAT))
        .await
        .expect("added");
    assert!(!added.replaced);
    assert!(added.warnings.is_empty());
    let a = &added.account;
    assert_eq!(a.server, h.upstream.url);
    assert_eq!(a.mcp_url, format!("{}/mcp", h.upstream.url));
    assert_eq!(a.org, "acme");
    assert_eq!(a.person.as_deref(), Some("p_alice"));
    assert_eq!(a.name.as_deref(), Some("Alice Example"));
    assert_eq!(a.email.as_deref(), Some("alice@example.com"));
    assert!(a.bound);
    assert_eq!(a.status, AccountStatus::Valid);
    assert_eq!(a.pat_hash, spor_companion::tokens::hash(PAT));
    let stored = h.state.store.accounts().await.expect("accounts");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, a.id);
    assert_eq!(
        h.secrets.entries(),
        BTreeMap::from([(a.id.clone(), PAT.to_string())])
    );
    assert_eq!(h.upstream.rest_calls(), ["GET /v1/me"]);
    h.stop().await;
}

#[tokio::test]
async fn a_pat_the_server_rejects_is_refused_with_its_message_and_nothing_is_stored() {
    let h = Harness::start().await;
    let unknown = "spor_pat_revoked_0123456789abcdef0123";
    let err = accounts::add_spor_account(&h.state, &h.upstream.url, None, pat(unknown))
        .await
        .expect_err("rejected");
    match &err {
        AccountError::Rejected(m) => assert_eq!(m, UPSTREAM_REJECTION),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!err.to_string().contains(unknown));
    assert!(!format!("{err:?}").contains(unknown));
    assert_eq!(h.upstream.rest_calls(), ["GET /v1/me"]);
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn text_that_is_not_a_pat_is_refused_without_asking_the_server() {
    let h = Harness::start().await;
    for text in [
        "hello",
        "spor_oat_0123456789abcdef0123456789",
        "spor_pat_short",
    ] {
        let err = accounts::add_spor_account(&h.state, &h.upstream.url, None, pat(text))
            .await
            .expect_err("not a PAT");
        assert!(matches!(err, AccountError::NotAPat), "{text}: {err:?}");
    }
    assert!(h.upstream.rest_calls().is_empty());
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_server_is_invalid_url_and_the_pat_is_not_sent() {
    let h = Harness::start().await;
    let err = accounts::add_spor_account(&h.state, "http://spor.example", None, pat(PAT))
        .await
        .expect_err("refused");
    assert!(matches!(err, AccountError::InvalidUrl(_)), "{err:?}");
    assert!(!err.to_string().contains(PAT));
    assert!(h.upstream.rest_calls().is_empty());
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn removing_an_account_revokes_every_grant_minted_from_it_and_forgets_the_pat() {
    let h = Harness::start().await;
    let one = h.connect().await;
    let two = h.connect_as(&one.account_id).await;
    let removed = accounts::remove_account(&h.state, &one.account_id, false)
        .await
        .expect("removed");
    let mut revoked = removed.revoked_grants.clone();
    revoked.sort();
    let mut expected = vec![one.grant_id.clone(), two.grant_id.clone()];
    expected.sort();
    assert_eq!(revoked, expected);
    assert!(!removed.revoked_upstream);
    for c in [&one, &two] {
        h.assert_token_refused(&c.tokens.access).await;
        let g = h.grant(&c.grant_id).await;
        assert_eq!(g.revoke_reason.map(|r| r.as_str()), Some("account_removed"));
        assert!(g.revoked_at.is_some());
    }
    assert!(h
        .state
        .store
        .account(one.account_id.clone())
        .await
        .expect("read")
        .is_none());
    assert_nothing_stored(&h).await;
    assert!(h.upstream.deleted().is_empty(), "upstream left alone");
    // The PAT no longer works as a direct bearer either.
    h.assert_token_refused(PAT).await;
    h.stop().await;
}

#[tokio::test]
async fn removing_with_revoke_upstream_deletes_the_pat_on_the_server_by_hash_prefix() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let removed = accounts::remove_account(&h.state, &c.account_id, true)
        .await
        .expect("removed");
    assert!(removed.revoked_upstream);
    assert_eq!(removed.revoked_grants, std::slice::from_ref(&c.grant_id));
    assert_eq!(h.upstream.deleted(), [hash_prefix(PAT)]);
    assert!(h
        .upstream
        .rest_calls()
        .contains(&format!("DELETE /v1/me/tokens/{}", hash_prefix(PAT))));
    h.assert_token_refused(&c.tokens.access).await;
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn removing_an_unknown_account_is_not_found() {
    let h = Harness::start().await;
    let err = accounts::remove_account(&h.state, "acct_nope", false)
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, AccountError::NotFound(ref id) if id == "acct_nope"),
        "{err:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn replacing_the_pat_of_an_org_revokes_the_grants_of_the_old_one() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let first = accounts::add_spor_account(&h.state, &h.upstream.url, None, pat(PAT))
        .await
        .expect("added");
    let c = h.connect_as(&first.account.id).await;
    let newer = "spor_pat_alice_newer_00112233445566778899";
    h.upstream.allow(newer, "acme");
    let second = accounts::add_spor_account(&h.state, &h.upstream.url, None, pat(newer))
        .await
        .expect("replaced");
    assert!(second.replaced);
    assert_eq!(second.account.id, first.account.id);
    assert_eq!(second.revoked_grants, std::slice::from_ref(&c.grant_id));
    assert_eq!(
        h.grant(&c.grant_id).await.revoke_reason.map(|r| r.as_str()),
        Some("token_replaced")
    );
    h.assert_token_refused(&c.tokens.access).await;
    assert_eq!(
        h.secrets.entries(),
        BTreeMap::from([(first.account.id.clone(), newer.to_string())])
    );
    h.stop().await;
}

#[tokio::test]
async fn pasting_the_same_pat_again_keeps_its_assistants_connected() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let first = accounts::add_spor_account(&h.state, &h.upstream.url, None, pat(PAT))
        .await
        .expect("added");
    let c = h.connect_as(&first.account.id).await;
    let again = accounts::add_spor_account(&h.state, &h.upstream.url, None, pat(PAT))
        .await
        .expect("added again");
    assert!(again.replaced);
    assert!(
        again.revoked_grants.is_empty(),
        "{:?}",
        again.revoked_grants
    );
    assert_eq!(h.grant(&c.grant_id).await.revoked_at, None);
    h.stop().await;
}

#[tokio::test]
async fn a_generic_token_is_validated_with_initialize_and_forwarded_like_a_pat() {
    let h = Harness::start().await;
    let token = "gwi_spark_token_abc123";
    h.upstream.allow(token, "unused");
    let mcp_url = format!("{}/mcp", h.upstream.url);
    let added = accounts::add_generic_account(&h.state, &mcp_url, "GWI Spark", pat(token))
        .await
        .expect("generic account added");
    let a = &added.account;
    assert_eq!(a.kind, spor_companion::store::AccountKind::Generic);
    assert_eq!(
        (a.org.as_str(), a.name.as_deref()),
        ("default", Some("GWI Spark"))
    );
    assert_eq!(a.mcp_url, mcp_url);
    assert!(added.warnings.is_empty());
    // The initialize it was validated with, and the session it ended.
    let seen = h.upstream.mcp_seen();
    assert!(seen[0].body.contains("\"initialize\""), "{}", seen[0].body);

    let c = h.connect_as(&a.id).await;
    let r = h
        .mcp_post(&c.tokens.access, None, crate::support::INIT)
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.text);
    let last = h.upstream.mcp_seen().pop().expect("forwarded");
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    h.stop().await;
}

#[tokio::test]
async fn a_generic_token_the_server_refuses_stores_nothing() {
    let h = Harness::start().await;
    let mcp_url = format!("{}/mcp", h.upstream.url);
    let err =
        accounts::add_generic_account(&h.state, &mcp_url, "GWI Spark", pat("gwi_unknown_token"))
            .await
            .expect_err("refused");
    assert!(matches!(err, AccountError::Rejected(_)), "{err:?}");
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn a_server_that_is_not_mcp_is_refused_as_generic_upstream() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    // /v1/me answers 200 JSON, but not an MCP initialize result.
    let err = accounts::add_generic_account(
        &h.state,
        &format!("{}/v1/me", h.upstream.url),
        "Not MCP",
        pat(PAT),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("not an MCP server"), "{err}");
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn generic_labels_and_tokens_are_checked_before_anything_is_sent() {
    let h = Harness::start().await;
    let mcp_url = format!("{}/mcp", h.upstream.url);
    for (label, token, want) in [
        ("", "tok", "label"),
        ("ok", "has space", "token"),
        ("ok", "", "token"),
    ] {
        let err = accounts::add_generic_account(&h.state, &mcp_url, label, pat(token))
            .await
            .expect_err("refused");
        assert!(err.to_string().contains(want), "{err}");
    }
    assert!(h.upstream.mcp_seen().is_empty());
    assert_nothing_stored(&h).await;
    h.stop().await;
}
