//! `/mcp`: the bearer check with its RFC 9728 challenge, and forwarding to
//! the upstream with the PAT in place of the host's token (DESIGN §2, §4).

use axum::http::StatusCode;
use spor_companion::store::{AccountStatus, ACCESS_TOKEN_TTL};

use crate::support::{assert_invalid_token, closed_port, Harness, Reply, INIT, PAT, PAT_BETA};

#[tokio::test]
async fn no_token_is_401_with_the_resource_metadata_challenge_and_no_error() {
    let h = Harness::start().await;
    let r = h.mcp_with(None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!(
                "Bearer resource_metadata=\"http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp\"",
                h.port
            )
            .as_str()
        )
    );
    assert!(!r
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error="));
    assert!(h.upstream.mcp_seen().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn the_challenge_names_the_host_the_client_used() {
    let h = Harness::start().await;
    let r = Reply::read(
        h.http
            .post(h.url("/mcp"))
            .header("host", format!("localhost:{}", h.port))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!(
                "Bearer resource_metadata=\"http://localhost:{}/.well-known/oauth-protected-resource/mcp\"",
                h.port
            )
            .as_str()
        )
    );
    h.stop().await;
}

#[tokio::test]
async fn a_malformed_authorization_header_is_401_invalid_token() {
    let h = Harness::start().await;
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "spor_oat_abc"] {
        let r = h.mcp_with(Some(header)).await;
        assert_invalid_token(&h, &r);
    }
    assert!(h.upstream.mcp_seen().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_access_token_is_401_invalid_token() {
    let h = Harness::start().await;
    h.connect().await;
    h.assert_token_refused("spor_oat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    h.assert_token_refused("some-other-token").await;
    assert!(h.upstream.mcp_seen().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn an_access_token_older_than_30_days_is_401_invalid_token() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.clock.advance(ACCESS_TOKEN_TTL - 1);
    h.assert_token_works(&c.tokens.access).await;
    h.clock.advance(1);
    h.assert_token_refused(&c.tokens.access).await;
    assert_eq!(
        h.upstream.mcp_seen().len(),
        1,
        "only the live call was forwarded"
    );
    h.stop().await;
}

#[tokio::test]
async fn an_access_token_of_a_revoked_grant_is_401_invalid_token() {
    let h = Harness::start().await;
    let c = h.connect().await;
    assert!(h
        .state
        .store
        .revoke_grant(
            c.grant_id.clone(),
            spor_companion::store::RevokeReason::RevokedByUser,
            h.now()
        )
        .await
        .expect("revoke"));
    h.assert_token_refused(&c.tokens.access).await;
    assert!(h.upstream.mcp_seen().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_valid_token_is_forwarded_with_the_pat_in_place_of_the_hosts_token() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let body =
        r#"{"jsonrpc":"2.0","id":"req-1","method":"tools/call","params":{"name":"query_graph"}}"#;
    let r = Reply::read(
        h.http
            .post(h.url("/mcp"))
            .bearer_auth(&c.tokens.access)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .header("cookie", "companion=1")
            .body(body)
            .send()
            .await
            .expect("POST /mcp"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["id"], "req-1");
    assert_eq!(r.header("mcp-session-id"), Some("upstream-session-1"));

    let seen = h.upstream.mcp_seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.method, "POST");
    assert_eq!(
        s.header("authorization"),
        Some(format!("Bearer {PAT}").as_str())
    );
    assert_eq!(
        s.headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .count(),
        1
    );
    assert_eq!(s.header("mcp-session-id"), None);
    assert_eq!(s.header("mcp-protocol-version"), Some("2025-06-18"));
    assert_eq!(s.header("content-type"), Some("application/json"));
    assert_eq!(s.header("cookie"), None, "only MCP headers travel upstream");
    assert_eq!(s.body, body, "the body is forwarded untouched");
    for (name, value) in &s.headers {
        assert!(
            !value.contains(&c.tokens.access) && !value.contains("spor_oat_"),
            "the host's token reached the upstream in {name}"
        );
    }
    assert!(!s.body.contains("spor_oat_"));
    h.stop().await;
}

#[tokio::test]
async fn delete_with_a_session_id_is_forwarded() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let init = h.mcp_post(&c.tokens.access, None, INIT).await;
    assert_eq!(init.header("mcp-session-id"), Some("upstream-session-1"));
    let r = Reply::read(
        h.http
            .delete(h.url("/mcp"))
            .bearer_auth(&c.tokens.access)
            .header("mcp-session-id", "upstream-session-1")
            .send()
            .await
            .expect("DELETE /mcp"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let seen = h.upstream.mcp_seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "DELETE");
    assert_eq!(seen[1].header("mcp-session-id"), Some("upstream-session-1"));
    assert_eq!(
        seen[1].header("authorization"),
        Some(format!("Bearer {PAT}").as_str())
    );
    h.stop().await;
}

#[tokio::test]
async fn other_methods_are_405() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let r = Reply::read(
        h.http
            .put(h.url("/mcp"))
            .bearer_auth(&c.tokens.access)
            .send()
            .await
            .expect("PUT /mcp"),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, POST, DELETE"));
    assert!(h.upstream.mcp_seen().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn upstream_rejecting_the_pat_makes_the_host_reauthorize_and_revokes_the_accounts_grants() {
    let h = Harness::start().await;
    let one = h.connect().await;
    let two = h.connect_as(&one.account_id).await;
    let other_account = h.add_account(PAT_BETA, "beta").await;
    let other = h.connect_as(&other_account).await;
    h.upstream.reject_mcp();

    let r = h.mcp(&one.tokens.access).await;
    assert_invalid_token(&h, &r);
    r.assert_leaks_nothing(&[]);

    let account = h
        .state
        .store
        .account(one.account_id.clone())
        .await
        .expect("read")
        .expect("account kept");
    assert_eq!(account.status, AccountStatus::Rejected);
    for c in [&one, &two] {
        let g = h.grant(&c.grant_id).await;
        assert_eq!(g.revoke_reason.map(|r| r.as_str()), Some("token_rejected"));
    }
    assert!(
        h.grant(&other.grant_id).await.revoked_at.is_none(),
        "other account untouched"
    );
    // The upstream is not asked again for the revoked grants.
    let forwarded = h.upstream.mcp_seen().len();
    h.assert_token_refused(&two.tokens.access).await;
    assert_eq!(h.upstream.mcp_seen().len(), forwarded);
    h.refresh(&one.client_id, &one.tokens.refresh)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    h.stop().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_json_rpc_error_carrying_the_request_id() {
    let h = Harness::start().await;
    let mcp_url = format!("http://127.0.0.1:{}/mcp", closed_port().await);
    let account = h.add_account_with_mcp(PAT, "acme", &mcp_url).await;
    let c = h.connect_as(&account).await;
    let r = Reply::read(
        h.http
            .post(h.url("/mcp"))
            .bearer_auth(&c.tokens.access)
            .header("content-type", "application/json")
            .body(r#"{"jsonrpc":"2.0","id":42,"method":"tools/list"}"#)
            .send()
            .await
            .expect("POST /mcp"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    let body = r.json();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 42);
    assert_eq!(body["error"]["code"], -32000);
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("unreachable"), "{message}");
    r.assert_leaks_nothing(&[PAT, &c.tokens.access]);
    assert!(
        h.grant(&c.grant_id).await.revoked_at.is_none(),
        "an outage revokes nothing"
    );
    // Another account on a live upstream keeps being served.
    let live = h.add_account(PAT_BETA, "beta").await;
    let other = h.connect_as(&live).await;
    h.assert_token_works(&other.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn a_stored_pat_used_directly_as_bearer_is_forwarded_for_its_account() {
    let h = Harness::start().await;
    h.add_account(PAT, "acme").await;
    h.add_account(PAT_BETA, "beta").await;
    let r = h.mcp(PAT_BETA).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["id"], 7);
    let seen = h.upstream.mcp_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {PAT_BETA}").as_str())
    );
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_pat_as_bearer_is_401_invalid_token() {
    let h = Harness::start().await;
    h.add_account(PAT, "acme").await;
    h.assert_token_refused("spor_pat_not_one_we_hold_0123456789abcdef")
        .await;
    assert!(h.upstream.mcp_seen().is_empty());
    h.stop().await;
}
