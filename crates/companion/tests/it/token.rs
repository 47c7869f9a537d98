//! `POST /oauth/token` with `authorization_code` (DESIGN §4, RFC 6749 §5.2).

use axum::http::StatusCode;

use crate::support::{query_of, Harness, Params, Pkce, Reply, Tokens, PAT, REDIRECT};

/// A client holding a fresh, unredeemed code.
struct Coded {
    h: Harness,
    client: String,
    account: String,
    pkce: Pkce,
    code: String,
}

async fn coded() -> Coded {
    let h = Harness::start().await;
    let account = h.add_account(PAT, "acme").await;
    let client = h.register(&[REDIRECT]).await;
    let pkce = Pkce::new();
    let code = h.code_for(&client, REDIRECT, &pkce, &account).await;
    Coded {
        h,
        client,
        account,
        pkce,
        code,
    }
}

impl Coded {
    fn good(&self) -> Params {
        self.h
            .exchange_params(&self.client, &self.code, REDIRECT, &self.pkce.verifier)
    }

    /// Exchanges the code as its own client does: the pair and its grant.
    async fn exchange(&self) -> (Tokens, String) {
        let first = Tokens::from_reply(&self.h.token(&self.good()).await);
        let grant = self.h.grant_of(&first.access).await;
        (first, grant)
    }

    /// Asserts a replay of the used code was refused with `error` (and
    /// `description`) and ended nothing: no row added or changed, the grant
    /// live, its access token working and its refresh token rotating.
    async fn assert_replay_refused_and_grant_intact(
        &self,
        params: &Params,
        (first, grant): &(Tokens, String),
        error: &str,
        description: &str,
    ) {
        let before = self.h.counts().await;
        let r = self.h.token(params).await;
        r.assert_oauth_error(StatusCode::BAD_REQUEST, error);
        assert_eq!(r.json()["error_description"], description);
        r.assert_leaks_nothing(&[
            &self.code,
            &self.pkce.verifier,
            &first.access,
            &first.refresh,
        ]);
        assert_eq!(self.h.counts().await, before, "nothing stored");
        let g = self.h.grant(grant).await;
        assert!(g.revoked_at.is_none(), "the grant was revoked: {g:?}");
        self.h.assert_token_works(&first.access).await;
        let rotated = self.h.refresh(&self.client, &first.refresh).await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    }

    /// Asserts an error, no grant or token stored, nothing leaked.
    async fn assert_refused(&self, r: &Reply, status: StatusCode, error: &str) {
        r.assert_oauth_error(status, error);
        r.assert_leaks_nothing(&[&self.code, &self.pkce.verifier, PAT]);
        let c = self.h.counts().await;
        assert_eq!((c.grants, c.access_tokens, c.refresh_tokens), (0, 0, 0));
    }
}

#[tokio::test]
async fn code_exchange_issues_a_bearer_pair_that_is_not_cached() {
    let c = coded().await;
    let r = c.h.token(&c.good()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 2_592_000);
    assert_eq!(body["scope"], "mcp");
    let t = Tokens::from_reply(&r);
    assert!(t.access.starts_with("spor_oat_"), "{}", t.access);
    assert_eq!(t.access.len(), "spor_oat_".len() + 43);
    assert!(t.refresh.starts_with("spor_ort_"), "{}", t.refresh);
    assert_eq!(t.refresh.len(), "spor_ort_".len() + 43);
    assert!(!r.text.contains(PAT));
    let grant = c.h.grant_of(&t.access).await;
    let g = c.h.grant(&grant).await;
    assert_eq!(g.client_id, c.client);
    assert_eq!(g.account_id.as_deref(), Some(c.account.as_str()));
    c.h.assert_token_works(&t.access).await;
    c.h.stop().await;
}

#[tokio::test]
async fn wrong_code_verifier_is_invalid_grant() {
    let c = coded().await;
    let other = Pkce::new().verifier;
    let r = c.h.token(&c.good().set("code_verifier", &other)).await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_grant")
        .await;
    c.h.stop().await;
}

#[tokio::test]
async fn malformed_code_verifier_is_invalid_request() {
    let c = coded().await;
    let r = c.h.token(&c.good().set("code_verifier", "short")).await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_request")
        .await;
    c.h.stop().await;
}

#[tokio::test]
async fn redirect_uri_differing_from_the_authorization_request_is_invalid_grant() {
    let c = coded().await;
    let r =
        c.h.token(
            &c.good()
                .set("redirect_uri", "http://127.0.0.1:43111/callback"),
        )
        .await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_grant")
        .await;
    c.h.stop().await;
}

#[tokio::test]
async fn code_presented_by_another_client_is_invalid_grant() {
    let c = coded().await;
    let other = c.h.register(&[REDIRECT]).await;
    let r = c.h.token(&c.good().set("client_id", &other)).await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_grant")
        .await;
    c.h.stop().await;
}

#[tokio::test]
async fn code_older_than_ten_minutes_is_invalid_grant() {
    let c = coded().await;
    c.h.clock.advance(601);
    let r = c.h.token(&c.good()).await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_grant")
        .await;
    c.h.stop().await;
}

#[tokio::test]
async fn a_code_whose_account_was_rejected_meanwhile_is_invalid_grant_and_mints_nothing() {
    let c = coded().await;
    spor_companion::accounts::reject(
        &c.h.state,
        &c.account,
        spor_companion::store::RejectReason::Refused,
    )
    .await
    .expect("reject");
    let r = c.h.token(&c.good()).await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_grant")
        .await;
    assert_eq!(
        r.json()["error_description"],
        "the account chosen for this code was removed or its token rejected"
    );
    c.h.stop().await;
}

#[tokio::test]
async fn unknown_code_is_invalid_grant() {
    let c = coded().await;
    let r =
        c.h.token(&c.good().set("code", "this-code-was-never-issued"))
            .await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_grant")
        .await;
    c.h.stop().await;
}

#[tokio::test]
async fn reused_code_is_invalid_grant_and_revokes_the_grant_it_minted() {
    // Its own client with its verifier: the code leaked from that client,
    // so the grant is ended (RFC 9700).
    let c = coded().await;
    let first = Tokens::from_reply(&c.h.token(&c.good()).await);
    let grant = c.h.grant_of(&first.access).await;
    c.h.assert_token_works(&first.access).await;

    let again = c.h.token(&c.good()).await;
    again.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    again.assert_leaks_nothing(&[&c.code, &first.access, &first.refresh]);

    c.h.assert_token_refused(&first.access).await;
    let g = c.h.grant(&grant).await;
    assert_eq!(
        g.revoke_reason.map(|r| r.as_str()),
        Some("authorization_code_reuse")
    );
    let refreshed = c.h.refresh(&c.client, &first.refresh).await;
    refreshed.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(c.h.counts().await.grants, 1, "no second grant");
    c.h.stop().await;
}

#[tokio::test]
async fn a_used_code_replayed_by_another_client_is_invalid_grant_and_keeps_the_grant() {
    let c = coded().await;
    let minted = c.exchange().await;
    // Everything the callback URL and the legitimate client's request
    // showed, sent under another client's id.
    let other = c.h.register(&[REDIRECT]).await;
    c.assert_replay_refused_and_grant_intact(
        &c.good().set("client_id", &other),
        &minted,
        "invalid_grant",
        "authorization code was issued to another client",
    )
    .await;
    c.h.stop().await;
}

#[tokio::test]
async fn a_used_code_replayed_without_the_verifier_is_invalid_request_and_keeps_the_grant() {
    let c = coded().await;
    let minted = c.exchange().await;
    c.assert_replay_refused_and_grant_intact(
        &c.good().remove("code_verifier"),
        &minted,
        "invalid_request",
        "code_verifier is required",
    )
    .await;
    c.h.stop().await;
}

#[tokio::test]
async fn a_used_code_replayed_with_a_wrong_verifier_is_invalid_grant_and_keeps_the_grant() {
    let c = coded().await;
    let minted = c.exchange().await;
    c.assert_replay_refused_and_grant_intact(
        &c.good().set("code_verifier", &Pkce::new().verifier),
        &minted,
        "invalid_grant",
        "code_verifier does not match the code_challenge",
    )
    .await;
    c.h.stop().await;
}

#[tokio::test]
async fn a_used_code_replayed_with_another_redirect_uri_is_invalid_grant_and_keeps_the_grant() {
    let c = coded().await;
    let minted = c.exchange().await;
    c.assert_replay_refused_and_grant_intact(
        &c.good()
            .set("redirect_uri", "http://127.0.0.1:43111/callback"),
        &minted,
        "invalid_grant",
        "redirect_uri does not match the authorization request",
    )
    .await;
    c.h.stop().await;
}

#[tokio::test]
async fn unknown_client_id_is_401_invalid_client_so_the_host_registers_again() {
    let c = coded().await;
    let r =
        c.h.token(&c.good().set("client_id", "client_unknown"))
            .await;
    c.assert_refused(&r, StatusCode::UNAUTHORIZED, "invalid_client")
        .await;
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer error=\"invalid_client\"")
    );
    c.h.stop().await;
}

#[tokio::test]
async fn client_authentication_header_is_invalid_client() {
    let c = coded().await;
    let resp =
        c.h.http
            .post(c.h.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .basic_auth(&c.client, Some("secret"))
            .body(c.good().encode())
            .send()
            .await
            .expect("POST");
    let r = Reply::read(resp).await;
    c.assert_refused(&r, StatusCode::UNAUTHORIZED, "invalid_client")
        .await;
    c.h.stop().await;
}

#[tokio::test]
async fn each_missing_parameter_is_invalid_request() {
    let c = coded().await;
    for missing in [
        "grant_type",
        "client_id",
        "code",
        "redirect_uri",
        "code_verifier",
    ] {
        let r = c.h.token(&c.good().remove(missing)).await;
        c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_request")
            .await;
        assert!(
            r.json()["error_description"]
                .as_str()
                .is_some_and(|d| d.contains(missing)),
            "{missing}: {}",
            r.text
        );
    }
    // The code was never consumed by the failed attempts.
    let ok = c.h.token(&c.good()).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    c.h.stop().await;
}

#[tokio::test]
async fn repeated_parameter_is_invalid_request() {
    let c = coded().await;
    let r = c.h.token(&c.good().add("code", &c.code)).await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_request")
        .await;
    c.h.stop().await;
}

#[tokio::test]
async fn unsupported_grant_type_is_refused() {
    let c = coded().await;
    for grant_type in ["password", "client_credentials", "implicit"] {
        let r = c.h.token(&c.good().set("grant_type", grant_type)).await;
        c.assert_refused(&r, StatusCode::BAD_REQUEST, "unsupported_grant_type")
            .await;
    }
    c.h.stop().await;
}

#[tokio::test]
async fn resource_other_than_our_mcp_endpoint_is_invalid_target() {
    let c = coded().await;
    let r =
        c.h.token(&c.good().set("resource", "https://mcp.spor.example/mcp"))
            .await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_target")
        .await;
    c.h.stop().await;
}

#[tokio::test]
async fn our_resource_in_the_token_request_is_accepted() {
    let c = coded().await;
    let r = c.h.token(&c.good().set("resource", &c.h.url("/mcp"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    c.h.stop().await;
}

#[tokio::test]
async fn json_body_is_invalid_request() {
    let c = coded().await;
    let body: serde_json::Map<String, serde_json::Value> = c
        .good()
        .0
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let resp =
        c.h.http
            .post(c.h.url("/oauth/token"))
            .json(&body)
            .send()
            .await
            .expect("POST");
    let r = Reply::read(resp).await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_request")
        .await;
    c.h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_exchanges_of_one_code_issue_one_pair_and_then_revoke_it() {
    let c = std::sync::Arc::new(coded().await);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.h.token(&c.good()).await })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("exchange task"));
    }
    replies.sort_by_key(|r| r.status);
    assert_eq!(replies[0].status, StatusCode::OK, "{}", replies[0].text);
    replies[1].assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let winner = Tokens::from_reply(&replies[0]);
    let grant = c.h.grant_of(&winner.access).await;
    assert_eq!(
        c.h.grant(&grant).await.revoke_reason.map(|r| r.as_str()),
        Some("authorization_code_reuse")
    );
    c.h.assert_token_refused(&winner.access).await;
    assert_eq!(c.h.counts().await.grants, 1);
    let c = std::sync::Arc::try_unwrap(c).unwrap_or_else(|_| panic!("still shared"));
    c.h.stop().await;
}

#[tokio::test]
async fn a_code_requested_without_redirect_uri_exchanges_without_it() {
    let h = Harness::start().await;
    let account = h.add_account(PAT, "acme").await;
    let client = h.register(&[REDIRECT]).await;
    let pkce = Pkce::new();
    let id = h
        .authorize(
            &h.authorize_params(&client, REDIRECT, &pkce)
                .remove("redirect_uri"),
        )
        .await;
    let csrf = h.csrf(&id).await;
    let r = h.decide(&id, &csrf, "allow", &account).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let loc = r.location(&h.base);
    assert!(
        loc.as_str().starts_with(REDIRECT),
        "sent to the only registered URI: {loc}"
    );
    let code = crate::support::query_of(&loc)["code"].clone();
    let ok = h
        .token(
            &h.exchange_params(&client, &code, REDIRECT, &pkce.verifier)
                .remove("redirect_uri"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    h.stop().await;
}

#[tokio::test]
async fn a_code_requested_with_redirect_uri_needs_it_at_the_exchange() {
    let c = coded().await;
    let r = c.h.token(&c.good().remove("redirect_uri")).await;
    c.assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_request")
        .await;
    c.h.stop().await;
}

/// Runs authorize (asking for `scope`), consent and the code exchange; the
/// token response.
async fn exchange_asking_for(h: &Harness, scope: &str) -> Reply {
    let account = h.add_account(PAT, "acme").await;
    let client = h.register(&[REDIRECT]).await;
    let pkce = Pkce::new();
    let id = h
        .authorize(
            &h.authorize_params(&client, REDIRECT, &pkce)
                .set("scope", scope),
        )
        .await;
    let csrf = h.csrf(&id).await;
    let r = h.decide(&id, &csrf, "allow", &account).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "approve: {}", r.text);
    let code = query_of(&r.location(&h.base))
        .get("code")
        .expect("code in redirect")
        .clone();
    h.token(&h.exchange_params(&client, &code, REDIRECT, &pkce.verifier))
        .await
}

#[tokio::test]
async fn unknown_scopes_are_narrowed_away_and_the_granted_scope_is_stated() {
    let h = Harness::start().await;
    let r = exchange_asking_for(&h, "mcp admin files:write").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["scope"], "mcp");
    h.assert_token_works(&Tokens::from_reply(&r).access).await;
    h.stop().await;
}

#[tokio::test]
async fn offline_access_is_granted_and_kept_across_a_refresh() {
    let h = Harness::start().await;
    let r = exchange_asking_for(&h, "mcp offline_access").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["scope"], "mcp offline_access");
    let t = Tokens::from_reply(&r);
    h.assert_token_works(&t.access).await;
    let client = h.grant(&h.grant_of(&t.access).await).await.client_id;
    let rotated = h.refresh(&client, &t.refresh).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_eq!(rotated.json()["scope"], "mcp offline_access");
    h.stop().await;
}
