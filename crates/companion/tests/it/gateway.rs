//! `/mcp` beyond the bearer check: sessions bound to grants, upstream
//! failures, live streams ending on revocation, and the call log.

use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use spor_companion::control::{self, Command};

use crate::support::{Harness, McpMode, INIT};

const CALL: &str = r#"{"jsonrpc":"2.0","id":"c-9","method":"tools/call","params":{"name":"put_node","arguments":{"title":"argument-value-that-must-not-be-logged"}}}"#;

#[tokio::test]
async fn a_session_created_by_one_grant_is_404_for_another_and_never_forwarded() {
    let h = Harness::start().await;
    let a = h.connect().await;
    let b = h.connect_as(&a.account_id).await;
    let init = h.mcp_post(&a.tokens.access, None, INIT).await;
    assert_eq!(init.status, StatusCode::OK, "{}", init.text);
    let session = init
        .header("mcp-session-id")
        .expect("session id")
        .to_string();
    let before = h.upstream.mcp_seen().len();

    let stolen = h.mcp_post(&b.tokens.access, Some(&session), CALL).await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{}", stolen.text);
    assert_eq!(stolen.json()["id"], "c-9");
    assert_eq!(stolen.json()["error"]["code"], -32001);
    assert_eq!(
        h.upstream.mcp_seen().len(),
        before,
        "nothing reached the upstream"
    );

    let own = h.mcp_post(&a.tokens.access, Some(&session), CALL).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_session_id_is_404() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let r = h
        .mcp_post(&c.tokens.access, Some("guessed-session"), CALL)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(h.upstream.mcp_seen().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_deleted_session_cannot_be_used_again() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let init = h.mcp_post(&c.tokens.access, None, INIT).await;
    let session = init.header("mcp-session-id").expect("session").to_string();
    let del = h
        .http
        .delete(h.url("/mcp"))
        .bearer_auth(&c.tokens.access)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(del.status(), StatusCode::OK);
    let again = h.mcp_post(&c.tokens.access, Some(&session), CALL).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
    h.stop().await;
}

#[tokio::test]
async fn a_revoked_grants_sessions_are_forgotten_and_never_rebound() {
    let h = Harness::start().await;
    let a = h.connect().await;
    let b = h.connect_as(&a.account_id).await;
    let init = h.mcp_post(&a.tokens.access, None, INIT).await;
    assert_eq!(init.status, StatusCode::OK, "{}", init.text);
    let session = init.header("mcp-session-id").expect("session").to_string();
    let hash = spor_companion::tokens::hash(&session);
    assert!(h
        .state
        .store
        .session_principal(hash.clone())
        .await
        .expect("lookup")
        .is_some());

    h.disconnect(&a.grant_id).await;
    assert_eq!(
        h.state.store.session_principal(hash).await.expect("lookup"),
        None,
        "the row went with the grant"
    );
    // A session nobody owns is refused, never handed to the next caller.
    let before = h.upstream.mcp_seen().len();
    let r = h.mcp_post(&b.tokens.access, Some(&session), CALL).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(h.upstream.mcp_seen().len(), before, "nothing forwarded");
    h.assert_token_works(&b.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn upstream_5xx_is_a_json_rpc_error_naming_the_status() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.upstream.set_mcp_mode(McpMode::Fail500);
    let r = h.mcp_post(&c.tokens.access, None, CALL).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(r.json()["id"], "c-9");
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("failed with HTTP 500"), "{msg}");
    // Keeps serving once the fault clears (faults.rs: others meanwhile).
    h.upstream.set_mcp_mode(McpMode::Normal);
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn a_stalled_upstream_is_a_timeout_error_not_a_hang() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.upstream.set_mcp_mode(McpMode::Stall);
    let r = h.mcp_post(&c.tokens.access, None, CALL).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text);
    assert_eq!(r.json()["id"], "c-9");
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("did not answer in time"), "{msg}");
    // Keeps serving once the fault clears (faults.rs: others meanwhile).
    h.upstream.set_mcp_mode(McpMode::Normal);
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn upstream_429_passes_through_with_retry_after() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.upstream.set_mcp_mode(McpMode::RateLimited);
    let r = h.mcp_post(&c.tokens.access, None, CALL).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(
        r.json()["error"]["code"],
        "rate_limited",
        "passed through: {}",
        r.text
    );
    h.upstream.set_mcp_mode(McpMode::Normal);
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn revoking_a_grant_ends_its_open_stream_and_only_its_own() {
    let h = Harness::start().await;
    let a = h.connect().await;
    let b = h.connect_as(&a.account_id).await;
    let open = |token: String| {
        let http = h.http.clone();
        let url = h.url("/mcp");
        async move {
            http.get(url)
                .bearer_auth(token)
                .header("accept", "text/event-stream")
                .send()
                .await
                .expect("GET /mcp")
        }
    };
    let resp_a = open(a.tokens.access.clone()).await;
    let resp_b = open(b.tokens.access.clone()).await;
    assert_eq!(resp_a.status(), StatusCode::OK);
    let mut stream_a = resp_a.bytes_stream();
    let mut stream_b = resp_b.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), stream_a.next())
        .await
        .expect("first event");
    assert!(
        String::from_utf8_lossy(&first.expect("chunk").expect("bytes"))
            .contains("notifications/hello")
    );
    let first_b = tokio::time::timeout(Duration::from_secs(5), stream_b.next())
        .await
        .expect("first event b");
    assert!(first_b.is_some());

    let reply = control::execute(
        &h.state,
        Command::GrantsRevoke {
            id: a.grant_id.clone(),
        },
    )
    .await;
    assert!(reply.ok, "{reply:?}");
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = stream_a.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the revoked grant's stream ended");
    let still_open = tokio::time::timeout(Duration::from_millis(300), stream_b.next()).await;
    assert!(still_open.is_err(), "the other grant's stream stays open");
    h.stop().await;
}

#[tokio::test]
async fn calls_are_logged_with_method_and_tool_but_never_arguments() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let r = h.mcp_post(&c.tokens.access, None, CALL).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let calls = h.calls_when(&c.grant_id, 1).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].method, "tools/call");
    assert_eq!(calls[0].tool.as_deref(), Some("put_node"));
    assert_eq!(calls[0].outcome, "ok");
    assert_eq!(calls[0].status, Some(200));
    assert_eq!(calls[0].grant_id.as_deref(), Some(c.grant_id.as_str()));
    let activity = control::execute(
        &h.state,
        Command::GrantsActivity {
            id: c.grant_id.clone(),
            limit: 5,
        },
    )
    .await;
    assert!(activity.ok, "{activity:?}");
    assert_eq!(activity.data[0]["tool"], "put_node");
    for entry in std::fs::read_dir(h.dir.path()).expect("data dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("argument-value-that-must-not-be-logged"),
            "arguments were stored"
        );
    }
    h.stop().await;
}

// The gateway remembers what a valid access token resolved to; these show
// that the memory never outlives a change to the grant, its account or the
// token's lifetime. Each token is used twice first, so the refusal comes
// from a token the gateway had cached.

async fn used_twice(h: &Harness) -> crate::support::Connected {
    let c = h.connect().await;
    h.assert_token_works(&c.tokens.access).await;
    h.assert_token_works(&c.tokens.access).await;
    c
}

/// A second connection to the companion's database file, as the CLI (another
/// process) would open it.
fn another_process(h: &Harness) -> rusqlite::Connection {
    rusqlite::Connection::open(h.dir.path().join("companion.db")).expect("open")
}

#[tokio::test]
async fn a_cached_token_is_refused_on_the_next_call_after_its_grant_is_revoked() {
    let h = Harness::start().await;
    let c = used_twice(&h).await;
    let other = h.connect_as(&c.account_id).await;
    h.assert_token_works(&other.tokens.access).await;
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
    h.assert_token_works(&other.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn a_cached_token_is_refused_after_another_process_revokes_its_grant() {
    let h = Harness::start().await;
    let c = used_twice(&h).await;
    let changed = another_process(&h)
        .execute(
            "UPDATE grants SET revoked_at = ?1, revoke_reason = 'account_removed' WHERE id = ?2",
            rusqlite::params![h.now(), c.grant_id],
        )
        .expect("revoke from outside");
    assert_eq!(changed, 1);
    h.assert_token_refused(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn a_cached_token_is_refused_after_another_process_marks_its_account_rejected() {
    let h = Harness::start().await;
    let c = used_twice(&h).await;
    another_process(&h)
        .execute(
            "UPDATE accounts SET status = 'rejected' WHERE id = ?1",
            [&c.account_id],
        )
        .expect("reject from outside");
    h.assert_token_refused(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let h = Harness::start().await;
    let c = used_twice(&h).await;
    h.clock.advance(spor_companion::store::ACCESS_TOKEN_TTL);
    let r = h.mcp(&c.tokens.access).await;
    crate::support::assert_invalid_token(&h, &r);
    assert!(r.text.contains("expired"), "{}", r.text);
    h.stop().await;
}
