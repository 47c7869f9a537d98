//! The consent decision: browser form (origin + CSRF checked) and the CLI
//! path through the control commands and the page's status poll.

use axum::http::StatusCode;
use serde_json::json;
use spor_companion::config::ConsentMode;
use spor_companion::control::{self, Command};

use crate::support::{other_port, query_of, Harness, Pkce, Reply, CLIENT_NAME, PAT, REDIRECT};

/// A stored account, a registered client and one pending request.
struct Pending {
    h: Harness,
    account: String,
    client: String,
    pkce: Pkce,
    id: String,
    csrf: String,
}

async fn pending() -> Pending {
    pending_on(Harness::start().await).await
}

async fn pending_on(h: Harness) -> Pending {
    let account = h.add_account(PAT, "acme").await;
    let client = h.register(&[REDIRECT]).await;
    let pkce = Pkce::new();
    let id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &pkce))
        .await;
    let csrf = h.csrf(&id).await;
    Pending {
        h,
        account,
        client,
        pkce,
        id,
        csrf,
    }
}

async fn post_decision(p: &Pending, origin: Option<&str>, referer: Option<&str>) -> Reply {
    let mut req =
        p.h.http
            .post(p.h.url(&format!("/oauth/consent/{}", p.id)))
            .form(&[
                ("csrf", p.csrf.as_str()),
                ("decision", "allow"),
                ("account_id", p.account.as_str()),
            ]);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if let Some(r) = referer {
        req = req.header("referer", r);
    }
    Reply::read(req.send().await.expect("POST consent")).await
}

/// Asserts the request is still waiting and no code was minted.
async fn assert_still_pending(p: &Pending) {
    let list = p.h.state.consent.list(p.h.now());
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, p.id);
    assert_eq!(p.h.counts().await.codes, 0, "no code minted");
}

#[tokio::test]
async fn approving_redirects_to_the_client_with_code_state_and_the_issuer() {
    let p = pending().await;
    let r = p.h.decide(&p.id, &p.csrf, "allow", &p.account).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let loc = r.location(&p.h.base);
    assert!(loc.as_str().starts_with(&format!("{REDIRECT}?")), "{loc}");
    let q = query_of(&loc);
    assert!(q.get("code").is_some_and(|c| c.len() >= 43), "{loc}");
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    let issuer =
        p.h.get("/.well-known/oauth-authorization-server")
            .await
            .json()["issuer"]
            .as_str()
            .expect("issuer")
            .to_string();
    assert_eq!(q.get("iss"), Some(&issuer));
    assert_eq!(issuer, p.h.base);
    assert!(!q.contains_key("error"));
    assert_eq!(p.h.counts().await.codes, 1);
    assert!(p.h.state.consent.list(p.h.now()).is_empty());
    p.h.stop().await;
}

#[tokio::test]
async fn denying_redirects_with_access_denied_and_mints_no_code() {
    let p = pending().await;
    let r = p.h.decide(&p.id, &p.csrf, "deny", &p.account).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let loc = r.location(&p.h.base);
    assert!(loc.as_str().starts_with(&format!("{REDIRECT}?")), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    assert_eq!(q.get("iss"), Some(&p.h.base));
    assert!(!q.contains_key("code"));
    assert_eq!(p.h.counts().await.codes, 0);
    p.h.stop().await;
}

#[tokio::test]
async fn decision_without_origin_or_referer_is_403() {
    let p = pending().await;
    let r = post_decision(&p, None, None).await;
    r.assert_shown_error(StatusCode::FORBIDDEN);
    r.assert_leaks_nothing(&[&p.csrf]);
    assert_still_pending(&p).await;
    p.h.stop().await;
}

#[tokio::test]
async fn decision_from_a_foreign_origin_is_refused_by_the_loopback_guard() {
    let p = pending().await;
    let r = post_decision(&p, Some("http://evil.example"), None).await;
    r.assert_forbidden_by_guard();
    assert_still_pending(&p).await;
    p.h.stop().await;
}

#[tokio::test]
async fn decision_from_a_loopback_origin_on_another_port_is_403() {
    let p = pending().await;
    let origin = format!("http://127.0.0.1:{}", other_port(p.h.port));
    let r = post_decision(&p, Some(&origin), None).await;
    r.assert_shown_error(StatusCode::FORBIDDEN);
    assert_still_pending(&p).await;
    p.h.stop().await;
}

#[tokio::test]
async fn decision_with_only_a_referer_from_our_own_page_is_accepted() {
    let p = pending().await;
    let referer = p.h.url(&format!("/oauth/consent/{}", p.id));
    let r = post_decision(&p, None, Some(&referer)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(query_of(&r.location(&p.h.base)).contains_key("code"));
    p.h.stop().await;
}

#[tokio::test]
async fn decision_with_a_referer_from_another_port_is_403() {
    let p = pending().await;
    let referer = format!(
        "http://127.0.0.1:{}/oauth/consent/{}",
        other_port(p.h.port),
        p.id
    );
    let r = post_decision(&p, None, Some(&referer)).await;
    r.assert_shown_error(StatusCode::FORBIDDEN);
    assert_still_pending(&p).await;
    p.h.stop().await;
}

#[tokio::test]
async fn decision_with_the_wrong_csrf_token_is_403() {
    let p = pending().await;
    let r =
        p.h.decide(
            &p.id,
            "not-the-csrf-token-of-this-page",
            "allow",
            &p.account,
        )
        .await;
    r.assert_shown_error(StatusCode::FORBIDDEN);
    r.assert_leaks_nothing(&[&p.csrf]);
    assert_still_pending(&p).await;
    p.h.stop().await;
}

#[tokio::test]
async fn a_decided_request_is_gone() {
    let p = pending().await;
    let first = p.h.decide(&p.id, &p.csrf, "allow", &p.account).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let again = p.h.decide(&p.id, &p.csrf, "allow", &p.account).await;
    again.assert_shown_error(StatusCode::NOT_FOUND);
    again.assert_leaks_nothing(&[]);
    assert!(!again.text.contains("code="), "{}", again.text);
    let page = p.h.get(&format!("/oauth/consent/{}", p.id)).await;
    page.assert_shown_error(StatusCode::NOT_FOUND);
    assert_eq!(
        p.h.counts().await.codes,
        1,
        "only the first decision minted a code"
    );
    p.h.stop().await;
}

#[tokio::test]
async fn cli_approval_is_handed_to_the_waiting_page_exactly_once() {
    let p = pending().await;
    let status = format!("/oauth/consent/{}/status?csrf={}", p.id, p.csrf);
    let before = p.h.get(&status).await;
    assert_eq!(before.status, StatusCode::OK);
    assert_eq!(before.json(), json!({ "status": "pending" }));

    let listed = control::execute(&p.h.state, Command::ConsentList).await;
    assert!(listed.ok);
    assert_eq!(listed.data[0]["id"], p.id);
    let reply = control::execute(
        &p.h.state,
        Command::ConsentApprove {
            id: p.id.clone(),
            account_id: Some(p.account.clone()),
            access: None,
        },
    )
    .await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.data, json!({ "id": p.id, "approved": true }));

    let decided = p.h.get(&status).await;
    assert_eq!(decided.status, StatusCode::OK, "{}", decided.text);
    assert_eq!(decided.header("cache-control"), Some("no-store"));
    let body = decided.json();
    assert_eq!(body["status"], "decided");
    assert_eq!(body["approved"], true);
    let redirect = url::Url::parse(body["redirect"].as_str().expect("redirect")).expect("URL");
    assert!(redirect.as_str().starts_with(&format!("{REDIRECT}?")));
    let q = query_of(&redirect);
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    assert_eq!(q.get("iss"), Some(&p.h.base));

    let after = p.h.get(&status).await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
    assert_eq!(after.json(), json!({ "status": "gone" }));

    let t =
        p.h.token(&p.h.exchange_params(&p.client, &q["code"], REDIRECT, &p.pkce.verifier))
            .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    p.h.stop().await;
}

#[tokio::test]
async fn status_poll_with_the_wrong_csrf_reveals_nothing() {
    let p = pending().await;
    let reply = control::execute(
        &p.h.state,
        Command::ConsentApprove {
            id: p.id.clone(),
            account_id: None,
            access: None,
        },
    )
    .await;
    assert!(reply.ok, "{reply:?}");
    let r =
        p.h.get(&format!("/oauth/consent/{}/status?csrf=guess", p.id))
            .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({ "status": "gone" }));
    // The right page still gets it afterwards.
    let ok =
        p.h.get(&format!("/oauth/consent/{}/status?csrf={}", p.id, p.csrf))
            .await;
    assert_eq!(ok.json()["status"], "decided");
    p.h.stop().await;
}

#[tokio::test]
async fn cli_denial_of_an_unknown_request_is_not_found() {
    let h = Harness::start().await;
    let reply = control::execute(
        &h.state,
        Command::ConsentDeny {
            id: "no-such-request".into(),
        },
    )
    .await;
    assert!(!reply.ok);
    assert_eq!(reply.code.as_deref(), Some("not_found"));
    h.stop().await;
}

#[tokio::test]
async fn the_flow_works_and_iss_follows_when_the_browser_uses_another_loopback_spelling() {
    let h = Harness::start().await;
    let account = h.add_account(PAT, "acme").await;
    let client = h.register(&[REDIRECT]).await;
    for name in ["localhost", "[::1]"] {
        let host = format!("{name}:{}", h.port);
        let base = format!("http://{host}");
        let pkce = Pkce::new();
        let params = h.authorize_params(&client, REDIRECT, &pkce);
        let get = |path: String| {
            h.http
                .get(h.url(&path))
                .header("host", host.as_str())
                .send()
        };
        let r = Reply::read(
            get(format!("/oauth/authorize?{}", params.encode()))
                .await
                .expect("authorize"),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let consent = r.header("location").expect("Location").to_string();
        let page = Reply::read(get(consent.clone()).await.expect("page")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let csrf = crate::support::scrape_csrf(&page.text);
        let decided = Reply::read(
            h.http
                .post(h.url(&consent))
                .header("host", host.as_str())
                .header("origin", base.as_str())
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("decision", "allow"),
                    ("account_id", account.as_str()),
                ])
                .send()
                .await
                .expect("decide"),
        )
        .await;
        assert_eq!(
            decided.status,
            StatusCode::SEE_OTHER,
            "{name}: {}",
            decided.text
        );
        let q = query_of(&decided.location(&h.base));
        assert_eq!(q.get("iss"), Some(&base), "{name}");
        let t = h
            .token(&h.exchange_params(&client, &q["code"], REDIRECT, &pkce.verifier))
            .await;
        assert_eq!(t.status, StatusCode::OK, "{name}: {}", t.text);
    }
    h.stop().await;
}

#[tokio::test]
async fn the_client_name_is_shown_bidi_isolated_on_the_page() {
    let p = pending().await;
    let page = p.h.get(&format!("/oauth/consent/{}", p.id)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains(&format!(
            "<strong class=\"client-name\"><bdi>{CLIENT_NAME}</bdi></strong>"
        )),
        "{}",
        page.text
    );
    p.h.stop().await;
}

/// A pending request on a daemon started with `--consent cli`.
async fn pending_cli() -> Pending {
    pending_on(Harness::start_with_consent(ConsentMode::Cli).await).await
}

/// The `data-error` code of a refusal shown by the page.
fn refusal_code(r: &Reply) -> &str {
    let marker = "data-error=\"";
    let start = r
        .text
        .find(marker)
        .unwrap_or_else(|| panic!("no data-error on the page: {}", r.text))
        + marker.len();
    let end = start + r.text[start..].find('"').expect("closing quote");
    &r.text[start..end]
}

#[tokio::test]
async fn in_cli_mode_the_page_shows_the_request_and_the_command_but_no_allow_or_token_form() {
    let p = pending_cli().await;
    let page = p.h.get(&format!("/oauth/consent/{}", p.id)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(&format!("<bdi>{CLIENT_NAME}</bdi>")));
    assert!(page.text.contains("127.0.0.1:43110"), "the redirect host");
    let command = format!(
        "spor-companiond --data-dir {} consent approve {}",
        p.h.dir.path().display(),
        p.id
    );
    assert!(
        page.text.contains(&format!("<code>{command}</code>")),
        "the exact command, {command}: {}",
        page.text
    );
    assert!(!page.text.contains("value=\"allow\""), "no Allow button");
    assert!(!page.text.contains("/account\""), "no add-token form");
    assert!(!page.text.contains("name=\"pat\""), "no token field");
    assert!(page.text.contains("value=\"deny\""), "Deny stays");
    // The page's script still polls the status, so the tab follows the
    // redirect once the terminal approved.
    assert!(page
        .text
        .contains(&format!("data-request=\"{}\" data-csrf=\"", p.id)));
    assert!(page.text.contains("/oauth/assets/consent.js"));
    p.h.stop().await;
}

#[tokio::test]
async fn in_cli_mode_a_forged_allow_is_403_and_mints_no_code() {
    let p = pending_cli().await;
    // Everything our own page would send: origin, CSRF token, account.
    let r = p.h.decide(&p.id, &p.csrf, "allow", &p.account).await;
    r.assert_shown_error(StatusCode::FORBIDDEN);
    assert_eq!(refusal_code(&r), "approve_in_terminal");
    assert!(r.text.contains("consent approve"), "{}", r.text);
    r.assert_leaks_nothing(&[&p.csrf]);
    // Without them the mode refuses first, the same way.
    let r = post_decision(&p, None, None).await;
    r.assert_shown_error(StatusCode::FORBIDDEN);
    assert_eq!(refusal_code(&r), "approve_in_terminal");
    assert_still_pending(&p).await;
    p.h.stop().await;
}

#[tokio::test]
async fn in_cli_mode_a_posted_token_is_403_and_stores_nothing() {
    let p = pending_cli().await;
    p.h.upstream.allow(crate::support::PAT_BETA, "beta");
    // Showing the page asked the server for org choices; the POST must not
    // ask it anything.
    let calls = p.h.upstream.rest_calls();
    let r = Reply::read(
        p.h.http
            .post(p.h.url(&format!("/oauth/consent/{}/account", p.id)))
            .header("origin", &p.h.base)
            .form(&[
                ("csrf", p.csrf.as_str()),
                ("server_url", p.h.upstream.url.as_str()),
                ("pat", crate::support::PAT_BETA),
            ])
            .send()
            .await
            .expect("POST account form"),
    )
    .await;
    r.assert_shown_error(StatusCode::FORBIDDEN);
    assert_eq!(refusal_code(&r), "approve_in_terminal");
    r.assert_leaks_nothing(&[crate::support::PAT_BETA, &p.csrf]);
    assert_eq!(p.h.upstream.rest_calls(), calls, "the PAT went nowhere");
    assert_eq!(p.h.counts().await.accounts, 1, "only the account set up");
    assert_eq!(
        p.h.secrets.entries().keys().collect::<Vec<_>>(),
        [&p.account]
    );
    assert_still_pending(&p).await;
    p.h.stop().await;
}

#[tokio::test]
async fn in_cli_mode_approving_from_the_terminal_completes_the_flow() {
    let p = pending_cli().await;
    let status = format!("/oauth/consent/{}/status?csrf={}", p.id, p.csrf);
    assert_eq!(
        p.h.get(&status).await.json(),
        json!({ "status": "pending" })
    );
    let reply = control::execute(
        &p.h.state,
        Command::ConsentApprove {
            id: p.id.clone(),
            account_id: None,
            access: None,
        },
    )
    .await;
    assert!(reply.ok, "{reply:?}");
    let decided = p.h.get(&status).await.json();
    assert_eq!(decided["status"], "decided", "{decided}");
    let redirect = url::Url::parse(decided["redirect"].as_str().expect("redirect")).expect("URL");
    assert!(redirect.as_str().starts_with(&format!("{REDIRECT}?")));
    let q = query_of(&redirect);
    let t =
        p.h.token(&p.h.exchange_params(&p.client, &q["code"], REDIRECT, &p.pkce.verifier))
            .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    p.h.stop().await;
}

#[tokio::test]
async fn in_cli_mode_deny_on_the_page_still_sends_the_assistant_away() {
    let p = pending_cli().await;
    let r = p.h.decide(&p.id, &p.csrf, "deny", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let q = query_of(&r.location(&p.h.base));
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(p.h.counts().await.codes, 0);
    assert!(p.h.state.consent.list(p.h.now()).is_empty());
    p.h.stop().await;
}
