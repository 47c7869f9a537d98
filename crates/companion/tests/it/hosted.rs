//! Hosted Spor out of the box: the hosted addresses as the default (a
//! stand-in mapped as hosted, never the internet), the MCP URL a Spor
//! account gets, patience with a graph that wakes slowly, and reachability
//! from what was already heard rather than from polling the server.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use spor_companion::accounts;
use spor_companion::clock::rfc3339;
use spor_companion::desktop::{self, DesktopError};
use spor_companion::sensitive::Sensitive;
use spor_companion::upstream::{ContactSource, HostedSpor, Upstream};

use crate::support::{closed_port, FakeUpstream, Harness, Pkce, Reply, PAT, PAT_BETA, REDIRECT};

fn pat(s: &str) -> Sensitive<String> {
    Sensitive::new(s.to_string())
}

/// Hosted Spor played by the fake upstream, with its MCP endpoint on
/// another origin (`localhost` for `127.0.0.1`), as hosted Spor's is: an
/// account that got `server/mcp` instead would show it.
fn hosted_on_another_origin(url: &str) -> Upstream {
    Upstream::new().hosting(HostedSpor {
        rest: url.to_string(),
        mcp: format!("{}/mcp", url.replace("127.0.0.1", "localhost")),
    })
}

fn hosted_mcp(h: &Harness) -> String {
    format!("{}/mcp", h.upstream.url.replace("127.0.0.1", "localhost"))
}

/// Waits one second for an answer: shorter than the fake upstream's wake
/// in the tests that need it to give up.
fn impatient(url: &str) -> Upstream {
    Upstream::with_timeout(Duration::from_secs(1)).hosting(HostedSpor {
        rest: url.to_string(),
        mcp: format!("{url}/mcp"),
    })
}

/// Waits five seconds: longer than the fake upstream's wake in the tests
/// that need it to be patient.
fn patient(url: &str) -> Upstream {
    Upstream::with_timeout(Duration::from_secs(5)).hosting(HostedSpor {
        rest: url.to_string(),
        mcp: format!("{url}/mcp"),
    })
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, DesktopError>, code: &str) -> DesktopError {
    let err = result.expect_err(code);
    assert_eq!(err.code, code, "{err:?}");
    err
}

async fn assert_nothing_stored(h: &Harness) {
    assert!(h.state.store.accounts().await.expect("accounts").is_empty());
    assert_eq!(h.secrets.entries(), BTreeMap::new());
}

/// A pending request: its id and the page's CSRF token.
async fn consent_request(h: &Harness) -> (String, String) {
    let client = h.register(&[REDIRECT]).await;
    let id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &Pkce::new()))
        .await;
    let csrf = h.csrf(&id).await;
    (id, csrf)
}

/// Posts the page's add-token form with these fields besides the CSRF token.
async fn paste_on_page(h: &Harness, id: &str, csrf: &str, fields: &[(&str, &str)]) -> Reply {
    let mut form = vec![("csrf", csrf)];
    form.extend_from_slice(fields);
    let resp = h
        .http
        .post(h.url(&format!("/oauth/consent/{id}/account")))
        .header("origin", &h.base)
        .form(&form)
        .send()
        .await
        .expect("POST account form");
    Reply::read(resp).await
}

// ------------------------------------------------------------ addresses

#[tokio::test]
async fn with_no_server_named_or_known_a_token_is_for_hosted_spor_with_its_own_mcp_endpoint() {
    let h = Harness::start_with_upstream_client(hosted_on_another_origin).await;
    h.upstream.allow(PAT, "acme");
    for blank in [None, Some(""), Some("  ")] {
        let added = desktop::add_account(&h.state, blank, pat(PAT))
            .await
            .expect("added for hosted Spor");
        assert_eq!(added.account.server, h.upstream.url);
        assert_eq!(added.account.mcp_url, hosted_mcp(&h));
    }
    // Naming hosted Spor's REST base does the same.
    let named = desktop::add_account(&h.state, Some(&h.upstream.url), pat(PAT))
        .await
        .expect("added");
    assert_eq!(named.account.mcp_url, hosted_mcp(&h));
    // Assistants' calls go to hosted Spor's MCP endpoint.
    let c = h.connect_as(&named.account.id).await;
    h.assert_token_works(&c.tokens.access).await;
    let seen = h.upstream.mcp_seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].header("host"),
        Some(
            hosted_mcp(&h)
                .trim_start_matches("http://")
                .trim_end_matches("/mcp")
        ),
        "sent to the hosted MCP origin"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_self_hosted_server_keeps_its_mcp_at_server_slash_mcp() {
    let h = Harness::start_with_upstream_client(hosted_on_another_origin).await;
    let own = FakeUpstream::start().await;
    own.allow(PAT, "acme");
    let added = desktop::add_account(&h.state, Some(&own.url), pat(PAT))
        .await
        .expect("added");
    assert_eq!(added.account.server, own.url);
    assert_eq!(added.account.mcp_url, format!("{}/mcp", own.url));
    assert!(
        h.upstream.rest_calls().is_empty(),
        "hosted Spor was not asked"
    );
    own.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn an_mcp_url_set_for_a_spor_account_is_used_and_kept_for_its_servers_next_org() {
    let h = Harness::start().await;
    let own = FakeUpstream::start().await;
    own.allow(PAT, "acme");
    own.allow(PAT_BETA, "beta");
    let unusual = format!("{}/spor/mcp", own.url);
    let added =
        desktop::add_account_with_mcp_url(&h.state, Some(&own.url), Some(&unusual), pat(PAT))
            .await
            .expect("added");
    assert_eq!(added.account.mcp_url, unusual);
    // The same server's next organization gets the same endpoint, unasked.
    let beta = desktop::add_account(&h.state, Some(&own.url), pat(PAT_BETA))
        .await
        .expect("added");
    assert_eq!(beta.account.org, "beta");
    assert_eq!(beta.account.mcp_url, unusual);
    own.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn an_mcp_url_a_pat_may_not_go_to_is_invalid_url_and_nothing_is_sent() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    for bad in [
        "http://mcp.example.com/mcp",
        "not a url",
        "https://u:p@mcp.example.com/mcp",
    ] {
        assert_code(
            desktop::add_account_with_mcp_url(&h.state, Some(&h.upstream.url), Some(bad), pat(PAT))
                .await,
            "invalid_url",
        );
    }
    assert!(h.upstream.rest_calls().is_empty(), "the PAT was not sent");
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn with_no_server_known_the_page_adds_a_token_for_hosted_spor() {
    let h = Harness::start_with_upstream_client(hosted_on_another_origin).await;
    h.upstream.allow(PAT, "acme");
    let (id, csrf) = consent_request(&h).await;
    let r = paste_on_page(&h, &id, &csrf, &[("pat", PAT)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let accounts = h.state.store.accounts().await.expect("accounts");
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].server, h.upstream.url);
    assert_eq!(accounts[0].mcp_url, hosted_mcp(&h));
    h.stop().await;
}

#[tokio::test]
async fn the_page_takes_an_mcp_url_only_while_no_server_is_known() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    h.upstream.allow(PAT_BETA, "beta");
    let (id, csrf) = consent_request(&h).await;
    let unusual = format!("{}/spor/mcp", h.upstream.url);
    // First run: the person's own server and its unusual MCP endpoint.
    let r = paste_on_page(
        &h,
        &id,
        &csrf,
        &[
            ("server_url", &h.upstream.url),
            ("mcp_url", &unusual),
            ("pat", PAT),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let accounts = h.state.store.accounts().await.expect("accounts");
    assert_eq!(accounts[0].mcp_url, unusual);
    // From now on the page shows the server and no MCP URL field, and an
    // MCP URL posted anyway is refused before anything is sent or stored.
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert!(!page.text.contains("name=\"mcp_url\""), "{}", page.text);
    let validations = || {
        h.upstream
            .rest_calls()
            .iter()
            .filter(|c| *c == "GET /v1/me")
            .count()
    };
    let before = validations();
    let planted = FakeUpstream::start().await;
    let elsewhere = format!("{}/mcp", planted.url);
    for fields in [
        vec![("mcp_url", elsewhere.as_str()), ("pat", PAT_BETA)],
        vec![
            ("server_url", h.upstream.url.as_str()),
            ("mcp_url", elsewhere.as_str()),
            ("pat", PAT_BETA),
        ],
    ] {
        let r = paste_on_page(&h, &id, &csrf, &fields).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(
            r.text.contains("data-error=\"mcp_url_not_allowed\""),
            "{}",
            r.text
        );
        assert!(!r.text.contains(PAT_BETA), "no secret echoed");
    }
    assert_eq!(validations(), before, "the PAT was not sent");
    assert!(planted.mcp_seen().is_empty());
    let accounts = h.state.store.accounts().await.expect("accounts");
    assert_eq!(accounts.len(), 1, "nothing stored");
    assert_eq!(h.secrets.entries().len(), 1, "no PAT stored");
    // Without one, the next organization's token keeps the known endpoint.
    let r = paste_on_page(&h, &id, &csrf, &[("pat", PAT_BETA)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let beta = h
        .state
        .store
        .account_for(h.upstream.url.clone(), "beta".into())
        .await
        .expect("read")
        .expect("beta stored");
    assert_eq!(beta.mcp_url, unusual);
    planted.stop().await;
    h.stop().await;
}

// ------------------------------------------------------------ patience

#[tokio::test]
async fn a_graph_waking_within_the_bound_is_waited_for() {
    let h = Harness::start_with_upstream_client(patient).await;
    h.upstream.allow(PAT, "acme");
    h.upstream.set_rest_delay(Duration::from_secs(2));
    let added = desktop::add_account(&h.state, None, pat(PAT))
        .await
        .expect("added once the graph woke");
    assert_eq!(added.account.org, "acme");
    h.stop().await;
}

#[tokio::test]
async fn a_wake_beyond_the_bound_is_a_timeout_that_stores_nothing_and_is_not_a_rejection() {
    let h = Harness::start_with_upstream_client(impatient).await;
    h.upstream.allow(PAT, "acme");
    h.upstream.set_rest_delay(Duration::from_secs(3));
    let err = assert_code(
        desktop::add_account(&h.state, None, pat(PAT)).await,
        "timeout",
    );
    assert_eq!(
        err.message,
        format!(
            "No answer from {}/v1/me within 1 s. A Spor graph that was asleep can take up to about a minute to wake up; nothing was stored, so try again.",
            h.upstream.url
        )
    );
    assert!(!err.message.contains(PAT));
    assert_nothing_stored(&h).await;
    assert!(
        h.state.pastes.allowed(h.now(), 1),
        "a slow wake is not counted as a rejected token"
    );
    // Once awake, the same token goes through.
    h.upstream.set_rest_delay(Duration::ZERO);
    let added = desktop::add_account(&h.state, None, pat(PAT))
        .await
        .expect("the next try goes through");
    assert_eq!(added.account.org, "acme");
    h.stop().await;
}

#[tokio::test]
async fn on_the_page_a_wake_beyond_the_bound_is_a_504_timeout_and_stores_nothing() {
    let h = Harness::start_with_upstream_client(impatient).await;
    h.upstream.allow(PAT, "acme");
    h.upstream.set_rest_delay(Duration::from_secs(3));
    let (id, csrf) = consent_request(&h).await;
    let r = paste_on_page(&h, &id, &csrf, &[("pat", PAT)]).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text);
    assert!(r.text.contains("data-error=\"timeout\""), "{}", r.text);
    assert!(r.text.contains("within 1 s"), "{}", r.text);
    assert!(!r.text.contains(PAT));
    assert_nothing_stored(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn the_page_says_it_is_waking_the_graph_when_the_check_takes_long() {
    let h = Harness::start().await;
    let (id, _) = consent_request(&h).await;
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert!(
        page.text.contains(
            "<p class=\"hint wake\" role=\"status\" hidden>The first request after a quiet spell wakes your organization's Spor graph"
        ),
        "{}",
        page.text
    );
    let script = h.get("/oauth/assets/consent.js").await;
    assert!(
        script.text.contains("Waking your Spor graph…"),
        "{}",
        script.text
    );
    assert!(script.text.contains("}, 2000);"), "{}", script.text);
    h.stop().await;
}

// ------------------------------------------------------------ no polling

#[tokio::test]
async fn the_window_shows_reachability_without_asking_and_a_check_asks_once_per_server() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let added = desktop::add_account(&h.state, None, pat(PAT))
        .await
        .expect("added");
    // Connecting asks for the person's organizations on the consent page.
    let c = h.connect_as(&added.account.id).await;
    h.assert_token_works(&c.tokens.access).await;
    let rest = h.upstream.rest_calls();
    let mcp = h.upstream.mcp_seen().len();
    // What the window shows, however often it reads it, asks nobody.
    for _ in 0..3 {
        let ov = desktop::overview(&h.state, running(&h))
            .await
            .expect("overview");
        assert_eq!(ov.upstreams.len(), 1, "{:?}", ov.upstreams);
        assert!(ov.upstreams[0].reachable);
    }
    assert_eq!(h.upstream.rest_calls(), rest, "no REST request");
    assert_eq!(h.upstream.mcp_seen().len(), mcp, "no MCP request");
    // Opening the window (or "Check now") asks each account's token once.
    h.clock.advance(30);
    let checked = desktop::check_upstreams(&h.state).await.expect("checked");
    assert_eq!(checked.len(), 1, "one row per server: {checked:?}");
    assert_eq!(checked[0].source, ContactSource::Check);
    assert_eq!(checked[0].at, rfc3339(h.now()));
    assert_eq!(h.upstream.rest_calls()[rest.len()..], ["GET /v1/me"]);
    h.stop().await;
}

fn running(h: &Harness) -> desktop::ServerStatus {
    desktop::ServerStatus {
        state: desktop::ServerState::Running,
        port: h.port,
        mcp_url: Some(h.url("/mcp")),
        message: None,
    }
}

#[tokio::test]
async fn reachability_comes_from_the_last_validation_and_assistants_calls_without_asking() {
    let h = Harness::start().await;
    h.upstream.allow(PAT, "acme");
    let added = desktop::add_account(&h.state, None, pat(PAT))
        .await
        .expect("added");
    let seen = desktop::reachability(&h.state).await.expect("read");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].server, h.upstream.url);
    assert!(seen[0].reachable);
    assert_eq!(seen[0].source, ContactSource::Validation);
    // An assistant's call, later, is newer news.
    let c = h.connect_as(&added.account.id).await;
    let rest = h.upstream.rest_calls();
    h.clock.advance(5);
    h.assert_token_works(&c.tokens.access).await;
    h.calls_when(&c.grant_id, 1).await;
    let seen = desktop::reachability(&h.state).await.expect("read");
    assert_eq!(seen[0].source, ContactSource::Traffic);
    assert!(seen[0].reachable);
    assert_eq!(h.upstream.rest_calls(), rest, "nothing was asked");
    h.stop().await;
}

#[tokio::test]
async fn an_assistants_call_that_cannot_reach_the_server_shows_it_unreachable() {
    let h = Harness::start().await;
    let server = format!("http://127.0.0.1:{}", closed_port().await);
    h.store_account("acct_gone", &server, &format!("{server}/mcp"), "acme", PAT)
        .await;
    let c = h.connect_as("acct_gone").await;
    assert!(
        desktop::reachability(&h.state)
            .await
            .expect("read")
            .is_empty(),
        "nothing heard yet"
    );
    let r = h.mcp(&c.tokens.access).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    h.calls_when(&c.grant_id, 1).await;
    let seen = desktop::reachability(&h.state).await.expect("read");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(!seen[0].reachable);
    assert_eq!(seen[0].source, ContactSource::Traffic);
    assert_eq!(
        seen[0].message.as_deref(),
        Some("An assistant's last call could not reach it.")
    );
    // The account is not rejected for it.
    let a = h
        .state
        .store
        .account("acct_gone".into())
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(a.status, spor_companion::store::AccountStatus::Valid);
    h.stop().await;
}

#[tokio::test]
async fn new_token_server_is_the_one_in_use_else_hosted_spor() {
    let h = Harness::start_with_upstream_client(hosted_on_another_origin).await;
    assert_eq!(accounts::new_token_server(&h.state).await, h.upstream.url);
    let own = "https://spor.example.com";
    h.store_account("acct_own", own, &format!("{own}/mcp"), "acme", PAT)
        .await;
    assert_eq!(accounts::new_token_server(&h.state).await, own);
    h.stop().await;
}
