//! What the desktop app shows and does (`desktop::*`), headless: the views
//! of the state, the actions behind its buttons with their `{code, message}`
//! errors, the server's lifecycle (port in use, another port, another
//! companion on the same data dir), and how a token refused upstream —
//! expired or revoked — shows up.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use serde_json::Value;
use spor_companion::clock::rfc3339;
use spor_companion::config::Limits;
use spor_companion::consent::PENDING_TTL;
use spor_companion::desktop::{
    self, DesktopError, Reachability, Server, ServerState, ServerStatus, Settings, TokenState,
    DEFAULT_PORT, SETTINGS_NAME,
};
use spor_companion::events::Event;
use spor_companion::sensitive::Sensitive;
use spor_companion::store::{AccountStatus, RejectReason};
use spor_companion::tokens;
use spor_companion::upstream::ContactSource;

use crate::support::{
    assert_invalid_token, closed_port, Harness, Pkce, CLIENT_NAME, PAT, PAT_BETA, REDIRECT, START,
    UPSTREAM_EXPIRED, UPSTREAM_REJECTION,
};

/// A `tools/call`, so the call log has a method and a tool.
const CALL: &str = r#"{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"put_node","arguments":{"title":"t"}}}"#;
/// A PAT the fake upstream does not know.
const UNKNOWN_PAT: &str = "spor_pat_wrong_guess_0123456789abcdef";
/// A second PAT for org `acme`, to replace [`PAT`] with.
const PAT_NEWER: &str = "spor_pat_alice_newer_00112233445566778899";

fn pat(s: &str) -> Sensitive<String> {
    Sensitive::new(s.to_string())
}

/// The status of a server running where the harness runs.
fn running(h: &Harness) -> ServerStatus {
    ServerStatus {
        state: ServerState::Running,
        port: h.port,
        mcp_url: Some(h.url("/mcp")),
        message: None,
    }
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, DesktopError>, code: &str) -> DesktopError {
    let err = result.expect_err(code);
    assert_eq!(err.code, code, "{err:?}");
    assert!(!err.message.is_empty(), "{err:?}");
    err
}

async fn assert_nothing_stored(h: &Harness) {
    assert!(h.state.store.accounts().await.expect("accounts").is_empty());
    assert_eq!(h.secrets.entries(), BTreeMap::new());
}

/// A registered client's authorization request, waiting for consent.
async fn pending_request(h: &Harness) -> String {
    let client = h.register(&[REDIRECT]).await;
    h.authorize(&h.authorize_params(&client, REDIRECT, &Pkce::new()))
        .await
}

fn free_to_bind(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn control_socket(h: &Harness) -> std::path::PathBuf {
    spor_companion::control::socket_path(h.dir.path())
}

// ---------------------------------------------------------------- overview

#[tokio::test]
async fn overview_of_a_fresh_install_is_empty_and_names_the_mcp_url_and_secret_store() {
    let h = Harness::start().await;
    let ov = desktop::overview(&h.state, running(&h))
        .await
        .expect("overview");
    assert!(ov.accounts.is_empty());
    assert!(ov.assistants.is_empty());
    assert!(ov.pending.is_empty());
    assert_eq!(ov.server, running(&h));
    assert_eq!(
        ov.claude_command,
        format!(
            "claude mcp add --transport http --scope user spor {}",
            h.url("/mcp")
        )
    );
    assert_eq!(ov.secret_store, "in-memory store (tests only)");
    assert_eq!(ov.data_dir, h.dir.path().display().to_string());
    // The window reads camelCase.
    let json = serde_json::to_value(&ov).expect("serializes");
    assert_eq!(
        json["claudeCommand"],
        Value::String(ov.claude_command.clone())
    );
    assert_eq!(json["server"]["mcpUrl"], Value::String(h.url("/mcp")));
    assert_eq!(json["server"]["state"], "running");
    h.stop().await;
}

#[tokio::test]
async fn overview_while_not_running_still_offers_the_command_for_the_wanted_port() {
    let h = Harness::start().await;
    let status = ServerStatus {
        state: ServerState::PortInUse,
        port: 45_678,
        mcp_url: None,
        message: Some("in use".into()),
    };
    let ov = desktop::overview(&h.state, status.clone())
        .await
        .expect("overview");
    assert_eq!(
        ov.claude_command,
        "claude mcp add --transport http --scope user spor http://127.0.0.1:45678/mcp"
    );
    assert_eq!(ov.server, status);
    h.stop().await;
}

#[tokio::test]
async fn overview_lists_a_connected_assistant_with_its_account_and_recent_calls() {
    let h = Harness::start().await;
    let c = h.connect().await;

    let ov = desktop::overview(&h.state, running(&h))
        .await
        .expect("overview");
    assert_eq!(ov.accounts.len(), 1);
    let a = &ov.accounts[0];
    assert_eq!(a.id, c.account_id);
    assert_eq!(a.label, "acme");
    assert_eq!(a.org, "acme");
    assert_eq!(a.who.as_deref(), Some("Alice Example <alice@example.com>"));
    assert_eq!(a.server, h.upstream.url);
    assert_eq!(a.server_host, h.upstream.url.trim_start_matches("http://"));
    assert_eq!(a.state, TokenState::Valid);
    assert_eq!(a.assistants, 1);
    assert_eq!(ov.assistants.len(), 1);
    let g = &ov.assistants[0];
    assert_eq!(g.id, c.grant_id);
    assert_eq!(g.name, CLIENT_NAME);
    assert_eq!(g.account_id.as_deref(), Some(c.account_id.as_str()));
    assert_eq!(g.account_label.as_deref(), Some("acme"));
    assert_eq!(g.org.as_deref(), Some("acme"));
    assert_eq!(g.connected_at, rfc3339(START));
    assert_eq!(g.connected_at, "2027-01-15T08:00:00Z");
    assert_eq!(g.last_used_at, None);
    assert!(g.recent.is_empty());
    assert!(ov.pending.is_empty());

    h.clock.advance(90);
    let r = h.mcp_post(&c.tokens.access, None, CALL).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.calls_when(&c.grant_id, 1).await;
    let ov = desktop::overview(&h.state, running(&h))
        .await
        .expect("overview");
    let g = &ov.assistants[0];
    assert_eq!(g.last_used_at, Some(rfc3339(START + 90)));
    assert_eq!(g.recent.len(), 1, "{:?}", g.recent);
    assert_eq!(g.recent[0].method, "tools/call");
    assert_eq!(g.recent[0].tool.as_deref(), Some("put_node"));
    assert_eq!(g.recent[0].outcome, "ok");
    assert_eq!(g.recent[0].at, rfc3339(START + 90));
    let text = serde_json::to_string(&ov).expect("serializes");
    assert!(
        !text.contains("spor_pat_") && !text.contains("spor_oat_"),
        "{text}"
    );
    h.stop().await;
}

#[tokio::test]
async fn overview_lists_requests_waiting_for_consent() {
    let h = Harness::start().await;
    let id = pending_request(&h).await;
    let ov = desktop::overview(&h.state, running(&h))
        .await
        .expect("overview");
    assert_eq!(ov.pending.len(), 1);
    assert_eq!(ov.pending[0].id, id);
    assert_eq!(ov.pending[0].client_name, CLIENT_NAME);
    assert_eq!(ov.pending[0].redirect_host, "127.0.0.1:43110");
    assert_eq!(ov.pending[0].created_at, rfc3339(START));
    h.stop().await;
}

// ------------------------------------------------------------ consent view

#[tokio::test]
async fn consent_view_of_an_unknown_request_is_not_found() {
    let h = Harness::start().await;
    let err = assert_code(desktop::consent_view(&h.state, "nope").await, "not_found");
    assert!(err.message.contains("expired"), "{}", err.message);
    h.stop().await;
}

#[tokio::test]
async fn consent_view_of_an_expired_request_is_not_found() {
    let h = Harness::start().await;
    let id = pending_request(&h).await;
    h.clock.advance(PENDING_TTL);
    assert_code(desktop::consent_view(&h.state, &id).await, "not_found");
    h.stop().await;
}

#[tokio::test]
async fn consent_view_without_accounts_asks_for_a_token_and_knows_no_server() {
    let h = Harness::start().await;
    let id = pending_request(&h).await;
    let v = desktop::consent_view(&h.state, &id).await.expect("view");
    assert_eq!(v.id, id);
    assert_eq!(v.client_name, CLIENT_NAME);
    assert_eq!(v.redirect_host, "127.0.0.1:43110");
    assert_eq!(v.expires_at, rfc3339(START + PENDING_TTL));
    assert!(v.options.is_empty(), "{:?}", v.options);
    assert!(v.needs_token);
    assert_eq!(v.known_server, None);
    h.stop().await;
}

#[tokio::test]
async fn consent_view_without_accounts_offers_the_configured_server() {
    let h = Harness::start_with_default_server().await;
    let id = pending_request(&h).await;
    let v = desktop::consent_view(&h.state, &id).await.expect("view");
    assert!(v.needs_token);
    assert_eq!(v.known_server.as_deref(), Some(h.upstream.url.as_str()));
    h.stop().await;
}

#[tokio::test]
async fn consent_view_after_adding_a_token_offers_that_account() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let id = pending_request(&h).await;
    let added = desktop::add_account(&h.state, Some(&h.upstream.url), pat(PAT))
        .await
        .expect("added");
    let v = desktop::consent_view(&h.state, &id).await.expect("view");
    assert!(!v.needs_token);
    assert_eq!(v.known_server.as_deref(), Some(h.upstream.url.as_str()));
    assert_eq!(v.options.len(), 1, "{:?}", v.options);
    let o = &v.options[0];
    assert_eq!(o.account_id.as_deref(), Some(added.account.id.as_str()));
    assert_eq!(o.org, "acme");
    assert_eq!(o.who, "Alice Example <alice@example.com>");
    assert_eq!(o.server, h.upstream.url);
    assert_eq!(o.server_host, h.upstream.url.trim_start_matches("http://"));
    assert!(!o.rejected);
    // And the option can be approved from the window.
    desktop::approve(&h.state, &id, Some(&added.account.id), None)
        .await
        .expect("approved");
    assert_code(desktop::consent_view(&h.state, &id).await, "not_found");
    h.stop().await;
}

#[tokio::test]
async fn consent_view_marks_a_rejected_account_and_asks_for_a_token_when_it_is_the_only_one() {
    let h = Harness::start().await;
    let acme = h.add_account(PAT, "acme").await;
    let id = pending_request(&h).await;
    h.state
        .store
        .reject_account(acme.clone(), RejectReason::Refused, h.now())
        .await
        .expect("reject");
    let v = desktop::consent_view(&h.state, &id).await.expect("view");
    assert_eq!(v.options.len(), 1, "{:?}", v.options);
    assert_eq!(v.options[0].account_id.as_deref(), Some(acme.as_str()));
    assert!(v.options[0].rejected);
    assert!(v.needs_token);

    // A second, valid account is enough to go on.
    h.add_account(PAT_BETA, "beta").await;
    let v = desktop::consent_view(&h.state, &id).await.expect("view");
    assert_eq!(v.options.len(), 2, "{:?}", v.options);
    assert!(!v.needs_token);
    let rejected: Vec<_> = v
        .options
        .iter()
        .map(|o| (o.org.as_str(), o.rejected))
        .collect();
    assert!(rejected.contains(&("acme", true)), "{rejected:?}");
    assert!(rejected.contains(&("beta", false)), "{rejected:?}");
    h.stop().await;
}

#[tokio::test]
async fn approve_and_deny_from_the_window_refuse_with_stable_codes_and_mint_nothing() {
    let h = Harness::start().await;
    let id = pending_request(&h).await;
    assert_code(
        desktop::approve(&h.state, &id, None, None).await,
        "no_account",
    );
    // The window sends "" when nothing is picked.
    assert_code(
        desktop::approve(&h.state, &id, Some(""), None).await,
        "no_account",
    );
    assert_code(
        desktop::approve(&h.state, &id, Some("acct_nope"), None).await,
        "unknown_account",
    );
    let acme = h.add_account(PAT, "acme").await;
    h.add_account(PAT_BETA, "beta").await;
    assert_code(
        desktop::approve(&h.state, &id, None, None).await,
        "account_required",
    );
    h.state
        .store
        .reject_account(acme.clone(), RejectReason::Expired, h.now())
        .await
        .expect("reject");
    assert_code(
        desktop::approve(&h.state, &id, Some(&acme), None).await,
        "account_rejected",
    );
    assert_code(
        desktop::approve(&h.state, "nope", Some(&acme), None).await,
        "not_found",
    );
    assert_eq!(h.counts().await.codes, 0, "no code minted");
    assert_eq!(h.state.consent.list(h.now()).len(), 1, "still waiting");

    desktop::deny(&h.state, &id).expect("denied");
    assert_code(desktop::consent_view(&h.state, &id).await, "not_found");
    assert_code(desktop::deny(&h.state, &id), "not_found");
    assert_eq!(h.counts().await.codes, 0);
    h.stop().await;
}

// ------------------------------------------------------------- add account

#[tokio::test]
async fn add_account_stores_the_token_and_returns_the_account_view() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let added = desktop::add_account(&h.state, Some(&h.upstream.url), pat(PAT))
        .await
        .expect("added");
    assert!(!added.replaced);
    assert_eq!(added.disconnected, 0);
    assert!(added.warnings.is_empty(), "{:?}", added.warnings);
    assert_eq!(added.account.label, "acme");
    assert_eq!(added.account.state, TokenState::Valid);
    assert_eq!(added.account.assistants, 0);
    assert_eq!(added.account.added_at, rfc3339(START));
    assert_eq!(
        h.secrets.entries(),
        BTreeMap::from([(added.account.id.clone(), PAT.to_string())])
    );
    assert_eq!(h.upstream.rest_calls(), ["GET /v1/me"]);
    h.stop().await;
}

#[tokio::test]
async fn add_account_refuses_text_that_is_not_a_pat_and_stores_nothing() {
    let h = Harness::start().await;
    for text in [
        "hello",
        "spor_oat_0123456789abcdef0123456789",
        "spor_pat_short",
        "",
    ] {
        let err = assert_code(
            desktop::add_account(&h.state, Some(&h.upstream.url), pat(text)).await,
            "not_a_token",
        );
        assert_eq!(
            err.message,
            "That is not a Spor personal access token (they start with spor_pat_)."
        );
    }
    assert!(h.upstream.rest_calls().is_empty(), "nothing was sent");
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn add_account_without_a_server_uses_the_configured_one() {
    let h = Harness::start_with_default_server().await;
    h.upstream.allow(PAT, "acme");
    let added = desktop::add_account(&h.state, None, pat(PAT))
        .await
        .expect("added");
    assert_eq!(added.account.server, h.upstream.url);
    assert_eq!(h.upstream.rest_calls(), ["GET /v1/me"]);
    h.stop().await;
}

#[tokio::test]
async fn add_account_with_a_token_the_server_rejects_is_token_rejected_and_stores_nothing() {
    let h = Harness::start().await;
    let err = assert_code(
        desktop::add_account(&h.state, Some(&h.upstream.url), pat(UNKNOWN_PAT)).await,
        "token_rejected",
    );
    assert_eq!(
        err.message,
        format!("The server rejected this token: {UPSTREAM_REJECTION}.")
    );
    assert!(!format!("{err:?}").contains(UNKNOWN_PAT));
    assert_eq!(h.upstream.rest_calls(), ["GET /v1/me"]);
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn add_account_with_an_expired_token_says_so_and_stores_nothing() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    h.upstream.expire(PAT);
    let err = assert_code(
        desktop::add_account(&h.state, Some(&h.upstream.url), pat(PAT)).await,
        "token_rejected",
    );
    assert_eq!(
        err.message,
        format!("The server rejected this token: {UPSTREAM_EXPIRED}.")
    );
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn add_account_for_an_unreachable_server_is_unreachable_and_stores_nothing() {
    let h = Harness::start().await;
    let server = format!("http://127.0.0.1:{}", closed_port().await);
    let err = assert_code(
        desktop::add_account(&h.state, Some(&server), pat(PAT)).await,
        "unreachable",
    );
    assert!(err.message.contains(&server), "{}", err.message);
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn add_account_is_rate_limited_after_too_many_rejected_tokens_without_asking_the_server() {
    let h = Harness::start_with(Limits {
        max_clients: 1000,
        rejected_pastes_per_minute: 2,
        ..Limits::default()
    })
    .await;
    h.upstream.allow(PAT, "acme");
    for _ in 0..2 {
        assert_code(
            desktop::add_account(&h.state, Some(&h.upstream.url), pat(UNKNOWN_PAT)).await,
            "token_rejected",
        );
    }
    let asked = h.upstream.rest_calls().len();
    let err = assert_code(
        desktop::add_account(&h.state, Some(&h.upstream.url), pat(PAT)).await,
        "rate_limited",
    );
    assert!(
        err.message.starts_with("Too many rejected tokens"),
        "{}",
        err.message
    );
    // Replacing a token is the same form, and limited the same way.
    assert_code(
        desktop::replace_token(&h.state, "acct_any", pat(PAT)).await,
        "rate_limited",
    );
    assert_eq!(
        h.upstream.rest_calls().len(),
        asked,
        "the server was not asked"
    );
    assert_nothing_stored(&h).await;

    h.clock.advance(60);
    desktop::add_account(&h.state, Some(&h.upstream.url), pat(PAT))
        .await
        .expect("allowed again a minute later");
    h.stop().await;
}

#[tokio::test]
async fn add_account_stores_the_token_without_surrounding_whitespace() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let pasted = format!("  \n{PAT}\t\r\n ");
    let server = format!(" {} ", h.upstream.url);
    let added = desktop::add_account(&h.state, Some(&server), pat(&pasted))
        .await
        .expect("added");
    assert_eq!(added.account.server, h.upstream.url);
    assert_eq!(
        h.secrets.entries(),
        BTreeMap::from([(added.account.id.clone(), PAT.to_string())])
    );
    let stored = h
        .state
        .store
        .account(added.account.id.clone())
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.pat_hash, tokens::hash(PAT));
    // What reaches the upstream is the trimmed PAT.
    let c = h.connect_as(&added.account.id).await;
    h.assert_token_works(&c.tokens.access).await;
    let seen = h.upstream.mcp_seen().pop().expect("forwarded");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {PAT}").as_str())
    );
    // And a script holding the PAT may use it directly.
    h.assert_token_works(PAT).await;
    h.stop().await;
}

// ----------------------------------------------------------- replace token

#[tokio::test]
async fn replace_token_of_an_unknown_account_is_not_found() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let err = assert_code(
        desktop::replace_token(&h.state, "acct_nope", pat(PAT)).await,
        "not_found",
    );
    assert!(err.message.contains("acct_nope"), "{}", err.message);
    assert!(h.upstream.rest_calls().is_empty());
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn replace_token_with_a_token_of_another_org_is_wrong_org_and_changes_nothing() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.upstream.allow(PAT_BETA, "beta");
    let before = h
        .state
        .store
        .account(c.account_id.clone())
        .await
        .expect("read");
    let err = assert_code(
        desktop::replace_token(&h.state, &c.account_id, pat(PAT_BETA)).await,
        "wrong_org",
    );
    assert_eq!(
        err.message,
        "This token is for the organization beta, not acme; add it as a new account instead."
    );
    assert_eq!(
        h.secrets.entries(),
        BTreeMap::from([(c.account_id.clone(), PAT.to_string())]),
        "the old PAT is still stored, and only it"
    );
    let after = h.state.store.accounts().await.expect("accounts");
    assert_eq!(after.len(), 1, "no account was added");
    assert_eq!(after[0].pat_hash, before.expect("account").pat_hash);
    assert_eq!(h.grant(&c.grant_id).await.revoked_at, None);
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn replace_token_with_a_token_the_server_rejects_changes_nothing() {
    let h = Harness::start().await;
    let c = h.connect().await;
    assert_code(
        desktop::replace_token(&h.state, &c.account_id, pat(UNKNOWN_PAT)).await,
        "token_rejected",
    );
    assert_code(
        desktop::replace_token(&h.state, &c.account_id, pat("not a token")).await,
        "not_a_token",
    );
    assert_eq!(
        h.secrets.entries(),
        BTreeMap::from([(c.account_id.clone(), PAT.to_string())])
    );
    assert_eq!(h.grant(&c.grant_id).await.revoked_at, None);
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn replace_token_disconnects_the_old_tokens_assistants_and_stores_the_new_one() {
    let h = Harness::start().await;
    let one = h.connect().await;
    let two = h.connect_as(&one.account_id).await;
    h.upstream.allow(PAT_NEWER, "acme");
    let replaced =
        desktop::replace_token(&h.state, &one.account_id, pat(&format!("{PAT_NEWER}\n")))
            .await
            .expect("replaced");
    assert!(replaced.replaced);
    assert_eq!(replaced.disconnected, 2);
    assert_eq!(replaced.account.id, one.account_id);
    assert_eq!(replaced.account.state, TokenState::Valid);
    assert_eq!(replaced.account.assistants, 0);
    assert_eq!(
        h.secrets.entries(),
        BTreeMap::from([(one.account_id.clone(), PAT_NEWER.to_string())])
    );
    let stored = h
        .state
        .store
        .account(one.account_id.clone())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(stored.pat_hash, tokens::hash(PAT_NEWER));
    for c in [&one, &two] {
        assert_eq!(
            h.grant(&c.grant_id).await.revoke_reason.map(|r| r.as_str()),
            Some("token_replaced")
        );
        h.assert_token_refused(&c.tokens.access).await;
    }
    // A script holding the old PAT is refused; the new one works directly.
    h.assert_token_refused(PAT).await;
    h.assert_token_works(PAT_NEWER).await;
    // A new assistant goes out with the new PAT.
    let three = h.connect_as(&one.account_id).await;
    h.assert_token_works(&three.tokens.access).await;
    let seen = h.upstream.mcp_seen().pop().expect("forwarded");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {PAT_NEWER}").as_str())
    );
    h.stop().await;
}

#[tokio::test]
async fn replace_token_of_a_rejected_account_makes_it_valid_again() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.upstream.expire(PAT);
    assert_invalid_token(&h, &h.mcp(&c.tokens.access).await);
    h.upstream.allow(PAT_NEWER, "acme");
    let replaced = desktop::replace_token(&h.state, &c.account_id, pat(PAT_NEWER))
        .await
        .expect("replaced");
    assert_eq!(replaced.disconnected, 0, "its grants had already ended");
    assert_eq!(replaced.account.state, TokenState::Valid);
    let stored = h
        .state
        .store
        .account(c.account_id.clone())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(stored.status, AccountStatus::Valid);
    assert_eq!(stored.rejected_reason, None);
    let again = h.connect_as(&c.account_id).await;
    h.assert_token_works(&again.tokens.access).await;
    h.stop().await;
}

// ------------------------------------------------ remove, disconnect, activity

#[tokio::test]
async fn remove_account_disconnects_its_live_assistants_and_forgets_the_token() {
    let h = Harness::start().await;
    let one = h.connect().await;
    let two = h.connect_as(&one.account_id).await;
    let three = h.connect_as(&one.account_id).await;
    desktop::disconnect(&h.state, &three.grant_id)
        .await
        .expect("disconnected");
    let other_account = h.add_account(PAT_BETA, "beta").await;
    let other = h.connect_as(&other_account).await;

    let removed = desktop::remove_account(&h.state, &one.account_id, false)
        .await
        .expect("removed");
    assert_eq!(removed.disconnected, 2, "the live ones only");
    assert!(!removed.revoked_upstream);
    for c in [&one, &two] {
        h.assert_token_refused(&c.tokens.access).await;
    }
    h.assert_token_works(&other.tokens.access).await;
    assert_eq!(
        h.secrets.entries(),
        BTreeMap::from([(other_account.clone(), PAT_BETA.to_string())])
    );
    let ov = desktop::overview(&h.state, running(&h))
        .await
        .expect("overview");
    assert_eq!(ov.accounts.len(), 1);
    assert_eq!(ov.accounts[0].id, other_account);
    assert_eq!(ov.assistants.len(), 1);
    assert_eq!(ov.assistants[0].id, other.grant_id);
    assert!(h.upstream.deleted().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn remove_account_of_an_unknown_account_is_not_found() {
    let h = Harness::start().await;
    assert_code(
        desktop::remove_account(&h.state, "acct_nope", false).await,
        "not_found",
    );
    h.stop().await;
}

#[tokio::test]
async fn disconnect_of_an_unknown_assistant_is_not_found() {
    let h = Harness::start().await;
    let err = assert_code(desktop::disconnect(&h.state, "g_nope").await, "not_found");
    assert_eq!(err.message, "That assistant is no longer connected.");
    h.stop().await;
}

#[tokio::test]
async fn disconnect_ends_that_assistant_at_once_and_only_it() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let other = h.connect_as(&c.account_id).await;
    h.assert_token_works(&c.tokens.access).await;
    desktop::disconnect(&h.state, &c.grant_id)
        .await
        .expect("disconnected");
    h.assert_token_refused(&c.tokens.access).await;
    h.refresh(&c.client_id, &c.tokens.refresh)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        h.grant(&c.grant_id).await.revoke_reason.map(|r| r.as_str()),
        Some("revoked_by_user")
    );
    h.assert_token_works(&other.tokens.access).await;
    // Twice is not found: it is no longer connected.
    assert_code(
        desktop::disconnect(&h.state, &c.grant_id).await,
        "not_found",
    );
    h.stop().await;
}

#[tokio::test]
async fn activity_of_an_unknown_assistant_is_not_found() {
    let h = Harness::start().await;
    let err = assert_code(desktop::activity(&h.state, "g_nope", 10).await, "not_found");
    assert_eq!(err.message, "No such assistant.");
    h.stop().await;
}

#[tokio::test]
async fn activity_lists_the_newest_calls_first_even_after_a_disconnect() {
    let h = Harness::start().await;
    let c = h.connect().await;
    assert!(desktop::activity(&h.state, &c.grant_id, 10)
        .await
        .expect("activity")
        .is_empty());
    let r = h
        .mcp_post(&c.tokens.access, None, crate::support::INIT)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.calls_when(&c.grant_id, 1).await;
    h.clock.advance(5);
    let r = h.mcp_post(&c.tokens.access, None, CALL).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.calls_when(&c.grant_id, 2).await;

    desktop::disconnect(&h.state, &c.grant_id)
        .await
        .expect("disconnected");
    let all = desktop::activity(&h.state, &c.grant_id, 10)
        .await
        .expect("activity");
    let methods: Vec<_> = all.iter().map(|a| a.method.as_str()).collect();
    assert_eq!(methods, ["tools/call", "initialize"]);
    assert_eq!(all[0].at, rfc3339(START + 5));
    // A limit of 0 still shows one.
    let one = desktop::activity(&h.state, &c.grant_id, 0)
        .await
        .expect("activity");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].method, "tools/call");
    h.stop().await;
}

// ------------------------------------------------- tokens refused upstream

#[tokio::test]
async fn an_expired_token_at_the_gateway_shows_as_expired() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.upstream.expire(PAT);
    let r = h.mcp(&c.tokens.access).await;
    assert_invalid_token(&h, &r);
    let a = h
        .state
        .store
        .account(c.account_id.clone())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(a.status, AccountStatus::Rejected);
    assert_eq!(a.rejected_reason, Some(RejectReason::Expired));
    assert_eq!(
        h.grant(&c.grant_id).await.revoke_reason.map(|r| r.as_str()),
        Some("token_rejected")
    );
    let ov = desktop::overview(&h.state, running(&h))
        .await
        .expect("overview");
    assert_eq!(ov.accounts[0].state, TokenState::Expired);
    assert_eq!(ov.accounts[0].assistants, 0);
    assert!(ov.assistants.is_empty());
    let json = serde_json::to_value(&ov).expect("serializes");
    assert_eq!(json["accounts"][0]["state"], "expired");
    h.stop().await;
}

#[tokio::test]
async fn a_plain_401_at_the_gateway_shows_as_rejected() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.upstream.reject_mcp();
    let r = h.mcp(&c.tokens.access).await;
    assert_invalid_token(&h, &r);
    let a = h
        .state
        .store
        .account(c.account_id.clone())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(a.status, AccountStatus::Rejected);
    assert_eq!(a.rejected_reason, Some(RejectReason::Refused));
    let ov = desktop::overview(&h.state, running(&h))
        .await
        .expect("overview");
    assert_eq!(ov.accounts[0].state, TokenState::Rejected);
    let json = serde_json::to_value(&ov).expect("serializes");
    assert_eq!(json["accounts"][0]["state"], "rejected");
    h.stop().await;
}

// --------------------------------------------------------- check upstreams

#[tokio::test]
async fn check_upstreams_reports_a_server_that_takes_the_token_as_reachable() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let checked = desktop::check_upstreams(&h.state).await.expect("checked");
    assert_eq!(
        checked,
        [Reachability {
            server: h.upstream.url.clone(),
            server_host: h.upstream.url.trim_start_matches("http://").to_string(),
            reachable: true,
            message: None,
            at: rfc3339(h.now()),
            source: ContactSource::Check,
        }]
    );
    assert!(h.upstream.rest_calls().contains(&"GET /v1/me".to_string()));
    let a = h
        .state
        .store
        .account(c.account_id.clone())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(a.status, AccountStatus::Valid);
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn check_upstreams_marks_a_revoked_token_rejected_and_ends_its_assistants() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let other_account = h.add_account(PAT_BETA, "beta").await;
    let other = h.connect_as(&other_account).await;
    h.upstream.revoke(PAT);
    let mut events = h.state.events.subscribe();
    let checked = desktop::check_upstreams(&h.state).await.expect("checked");
    assert_eq!(checked.len(), 1, "one row per server: {checked:?}");
    assert!(checked[0].reachable, "{checked:?}");
    let a = h
        .state
        .store
        .account(c.account_id.clone())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(a.status, AccountStatus::Rejected);
    assert_eq!(a.rejected_reason, Some(RejectReason::Refused));
    assert_eq!(
        h.grant(&c.grant_id).await.revoke_reason.map(|r| r.as_str()),
        Some("token_rejected")
    );
    h.assert_token_refused(&c.tokens.access).await;
    assert_eq!(h.grant(&other.grant_id).await.revoked_at, None);
    h.assert_token_works(&other.tokens.access).await;
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(
        seen.contains(&Event::GrantRevoked {
            grant_id: c.grant_id.clone()
        }),
        "{seen:?}"
    );
    assert!(
        seen.contains(&Event::AccountRejected {
            account_id: c.account_id.clone()
        }),
        "{seen:?}"
    );
    let ov = desktop::overview(&h.state, running(&h))
        .await
        .expect("overview");
    let acme = ov
        .accounts
        .iter()
        .find(|a| a.id == c.account_id)
        .expect("acme");
    assert_eq!(acme.state, TokenState::Rejected);
    h.stop().await;
}

#[tokio::test]
async fn check_upstreams_marks_an_expired_token_expired() {
    let h = Harness::start().await;
    let c = h.connect().await;
    h.upstream.expire(PAT);
    desktop::check_upstreams(&h.state).await.expect("checked");
    let a = h
        .state
        .store
        .account(c.account_id.clone())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(a.status, AccountStatus::Rejected);
    assert_eq!(a.rejected_reason, Some(RejectReason::Expired));
    h.assert_token_refused(&c.tokens.access).await;
    let ov = desktop::overview(&h.state, running(&h))
        .await
        .expect("overview");
    assert_eq!(ov.accounts[0].state, TokenState::Expired);
    h.stop().await;
}

#[tokio::test]
async fn check_upstreams_reports_a_closed_port_unreachable_and_keeps_the_account() {
    let h = Harness::start().await;
    let server = format!("http://127.0.0.1:{}", closed_port().await);
    h.store_account("acct_gone", &server, &format!("{server}/mcp"), "acme", PAT)
        .await;
    let c = h.connect_as("acct_gone").await;
    let checked = desktop::check_upstreams(&h.state).await.expect("checked");
    assert_eq!(checked.len(), 1, "{checked:?}");
    let r = &checked[0];
    assert_eq!(r.server, server);
    assert!(!r.reachable);
    let message = r.message.as_deref().expect("a reason");
    assert!(
        message.starts_with(&format!("Cannot reach {server}/v1/me")),
        "{message}"
    );
    assert!(!message.contains(PAT));
    let a = h
        .state
        .store
        .account("acct_gone".into())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        a.status,
        AccountStatus::Valid,
        "unreachable is not rejected"
    );
    assert_eq!(h.grant(&c.grant_id).await.revoked_at, None);
    h.stop().await;
}

#[tokio::test]
async fn check_upstreams_of_nothing_is_empty() {
    let h = Harness::start().await;
    assert!(desktop::check_upstreams(&h.state)
        .await
        .expect("checked")
        .is_empty());
    assert!(h.upstream.rest_calls().is_empty());
    h.stop().await;
}

// ------------------------------------------------------------------ server

#[tokio::test]
async fn server_on_a_port_held_by_another_program_is_port_in_use_and_holds_nothing() {
    let h = Harness::start().await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("address").port();
    let server = Server::new(h.state.clone(), port);
    let status = server.start(port).await;
    assert_eq!(status.state, ServerState::PortInUse, "{status:?}");
    assert_eq!(status.port, port);
    assert_eq!(status.mcp_url, None);
    let message = status.message.clone().expect("a message");
    assert!(message.contains(&format!("Port {port} ")), "{message}");
    assert_eq!(server.status().await, status);
    assert!(!control_socket(&h).exists(), "no control socket left bound");
    drop(holder);
    assert!(free_to_bind(port), "the port was not taken over");
    h.stop().await;
}

#[tokio::test]
async fn server_use_port_on_a_busy_port_is_port_in_use_and_not_remembered() {
    let h = Harness::start().await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("address").port();
    let server = Server::new(h.state.clone(), DEFAULT_PORT);
    let status = server
        .use_port(u32::from(port))
        .await
        .expect("a valid port is tried");
    assert_eq!(status.state, ServerState::PortInUse, "{status:?}");
    assert_eq!(status.port, port);
    assert!(!h.dir.path().join(SETTINGS_NAME).exists(), "not remembered");
    assert_eq!(
        desktop::configured_port(h.dir.path(), None),
        Ok(DEFAULT_PORT)
    );
    drop(holder);
    h.stop().await;
}

#[tokio::test]
async fn server_use_port_refuses_ports_outside_1024_to_65535() {
    let h = Harness::start().await;
    let server = Server::new(h.state.clone(), DEFAULT_PORT);
    for port in [0, 80, 1023, 65_536, 70_000] {
        let err = assert_code(server.use_port(port).await, "invalid_port");
        assert_eq!(err.message, "Choose a port between 1024 and 65535.");
    }
    let status = server.status().await;
    assert_eq!(status.state, ServerState::Starting);
    assert_eq!(status.port, DEFAULT_PORT);
    assert!(!h.dir.path().join(SETTINGS_NAME).exists());
    assert!(!control_socket(&h).exists());
    h.stop().await;
}

#[tokio::test]
async fn server_use_port_serves_there_remembers_it_and_stop_releases_it() {
    let h = Harness::start().await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("address").port();
    let server = Server::new(h.state.clone(), taken);
    assert_eq!(server.start(taken).await.state, ServerState::PortInUse);

    // The person picks another port.
    let port = closed_port().await;
    let status = server.use_port(u32::from(port)).await.expect("valid port");
    assert_eq!(status.state, ServerState::Running, "{status:?}");
    assert_eq!(status.port, port);
    let mcp_url = format!("http://127.0.0.1:{port}/mcp");
    assert_eq!(status.mcp_url.as_deref(), Some(mcp_url.as_str()));
    assert_eq!(status.message, None);
    assert_eq!(server.status().await, status);
    // It really serves, as the same companion.
    let meta = h
        .http
        .get(format!(
            "http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
        ))
        .send()
        .await
        .expect("GET metadata");
    assert_eq!(meta.status(), StatusCode::OK);
    let meta: Value = meta.json().await.expect("JSON");
    assert_eq!(meta["resource"], Value::String(mcp_url.clone()));
    assert!(control_socket(&h).exists(), "the CLI can reach it");
    // Remembered for the next start.
    assert_eq!(Settings::load(h.dir.path()), Settings { port: Some(port) });
    let saved: Value = serde_json::from_slice(
        &std::fs::read(h.dir.path().join(SETTINGS_NAME)).expect("settings.json"),
    )
    .expect("JSON");
    assert_eq!(saved, serde_json::json!({ "port": port }));
    assert_eq!(desktop::configured_port(h.dir.path(), None), Ok(port));

    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("stops within 10 s");
    let stopped = server.status().await;
    assert_eq!(stopped.state, ServerState::Starting);
    assert_eq!(stopped.mcp_url, None);
    assert!(free_to_bind(port), "stop released the port");
    assert!(
        !control_socket(&h).exists(),
        "stop removed the control socket"
    );
    drop(holder);
    h.stop().await;
}

#[tokio::test]
async fn moving_to_another_port_ends_the_old_ports_streams_and_serves_on_the_new_one() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let open = |port: u16| {
        let http = h.http.clone();
        let token = c.tokens.access.clone();
        async move {
            let resp = http
                .get(format!("http://127.0.0.1:{port}/mcp"))
                .bearer_auth(token)
                .header("accept", "text/event-stream")
                .send()
                .await
                .expect("GET /mcp");
            assert_eq!(resp.status(), StatusCode::OK);
            let mut stream = resp.bytes_stream();
            let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("first event in time")
                .expect("a chunk")
                .expect("bytes");
            assert!(String::from_utf8_lossy(&first).contains("notifications/hello"));
            stream
        }
    };
    let server = Server::new(h.state.clone(), DEFAULT_PORT);
    let first = closed_port().await;
    assert_eq!(
        server
            .use_port(u32::from(first))
            .await
            .expect("valid")
            .state,
        ServerState::Running
    );
    let mut old_stream = open(first).await;

    let second = closed_port().await;
    let moved = tokio::time::timeout(Duration::from_secs(10), server.use_port(u32::from(second)))
        .await
        .expect("an open stream does not hold the restart up")
        .expect("valid");
    assert_eq!(moved.state, ServerState::Running, "{moved:?}");
    assert_eq!(moved.port, second);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = old_stream.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the old port's stream ended");
    assert!(free_to_bind(first), "the old port was released");
    assert_eq!(
        Settings::load(h.dir.path()),
        Settings { port: Some(second) }
    );

    let _new_stream = open(second).await;
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("stop does not wait for open streams");
    assert!(free_to_bind(second));
    h.stop().await;
}

#[tokio::test]
async fn server_restarts_on_its_own_port() {
    let h = Harness::start().await;
    let port = closed_port().await;
    let server = Server::new(h.state.clone(), port);
    assert_eq!(server.start(port).await.state, ServerState::Running);
    // Starting again first releases the old listener, so the same port works.
    let again = server.start(port).await;
    assert_eq!(again.state, ServerState::Running, "{again:?}");
    assert_eq!(again.port, port);
    server.stop().await;
    assert!(free_to_bind(port));
    h.stop().await;
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_fails_naming_the_other_companion() {
    let h = Harness::start().await;
    let first = Server::new(h.state.clone(), 0);
    assert_eq!(first.start(0).await.state, ServerState::Running);

    let port = closed_port().await;
    let second = Server::new(h.state.clone(), port);
    let status = second.start(port).await;
    assert_eq!(status.state, ServerState::Failed, "{status:?}");
    assert_eq!(status.mcp_url, None);
    let message = status.message.expect("a message");
    assert!(
        message.starts_with("Another Spor Companion is already running with the data folder"),
        "{message}"
    );
    assert!(
        message.contains(&h.dir.path().display().to_string()),
        "{message}"
    );
    assert!(free_to_bind(port), "the failed start left its port free");

    // Once the first one quits, the second one can start.
    first.stop().await;
    assert_eq!(second.start(port).await.state, ServerState::Running);
    second.stop().await;
    h.stop().await;
}

#[test]
fn configured_port_is_the_environments_else_the_saved_one_else_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(desktop::configured_port(dir.path(), None), Ok(DEFAULT_PORT));
    assert_eq!(
        desktop::configured_port(dir.path(), Some("  ")),
        Ok(DEFAULT_PORT)
    );
    Settings { port: Some(45_001) }
        .save(dir.path())
        .expect("saved");
    assert_eq!(desktop::configured_port(dir.path(), None), Ok(45_001));
    assert_eq!(desktop::configured_port(dir.path(), Some("")), Ok(45_001));
    assert_eq!(
        desktop::configured_port(dir.path(), Some("45002")),
        Ok(45_002)
    );
    assert_eq!(
        desktop::configured_port(dir.path(), Some(" 45003\n")),
        Ok(45_003)
    );
    for garbage in ["abc", "70000", "-1", "45 002"] {
        let err = desktop::configured_port(dir.path(), Some(garbage)).expect_err(garbage);
        assert_eq!(err.code, "invalid_port");
        assert!(
            err.message.contains("SPOR_COMPANION_PORT"),
            "{}",
            err.message
        );
        assert!(err.message.contains(garbage), "{}", err.message);
    }
    // A malformed file means defaults, not a failure.
    std::fs::write(dir.path().join(SETTINGS_NAME), b"{ not json").expect("write");
    assert_eq!(desktop::configured_port(dir.path(), None), Ok(DEFAULT_PORT));
}
