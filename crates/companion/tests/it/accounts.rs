//! Adding and removing PATs: validated upstream, all-or-nothing, and
//! removal cascading to every grant minted from the PAT (DESIGN §2); the
//! consent page's add-token form, which takes only a server already in use.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use spor_companion::accounts::{self, AccountError};
use spor_companion::sensitive::Sensitive;
use spor_companion::store::AccountStatus;

use crate::support::{
    hash_prefix, other_port, FakeUpstream, Harness, Pkce, Reply, PAT, PAT_BETA, REDIRECT,
    UPSTREAM_REJECTION,
};

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

/// A pending request: its id and the page's CSRF token.
async fn consent_request(h: &Harness) -> (String, String) {
    let client = h.register(&[REDIRECT]).await;
    let id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &Pkce::new()))
        .await;
    let csrf = h.csrf(&id).await;
    (id, csrf)
}

/// Posts the consent page's add-token form as our page would; `server`
/// `None` leaves the field out.
async fn paste_on_page(
    h: &Harness,
    id: &str,
    csrf: &str,
    server: Option<&str>,
    pat: &str,
) -> Reply {
    let mut form = vec![("csrf", csrf), ("pat", pat)];
    if let Some(s) = server {
        form.push(("server_url", s));
    }
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

/// Asserts the page's refusal of a server that is not in use: `400`, the
/// `server_not_allowed` code, the known server named, no secret echoed.
fn assert_server_not_allowed(r: &Reply, known: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.text.contains("data-error=\"server_not_allowed\""),
        "{}",
        r.text
    );
    assert!(
        r.text.contains(known),
        "names the server in use: {}",
        r.text
    );
    r.assert_leaks_nothing(&[PAT, PAT_BETA]);
}

#[tokio::test]
async fn the_page_refuses_a_token_for_another_server_than_the_configured_one() {
    let h = Harness::start_with_default_server().await;
    // A look-alike: it knows the same PAT and answers /v1/me with the
    // person's name, as a planted server would.
    let planted = FakeUpstream::start().await;
    planted.allow(PAT, "acme");
    let (id, csrf) = consent_request(&h).await;

    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert!(
        !page.text.contains("name=\"server_url\""),
        "no server field: {}",
        page.text
    );
    assert!(
        page.text
            .contains(&format!("Server: <code>{}</code>", h.upstream.url)),
        "the configured server, read-only: {}",
        page.text
    );

    let r = paste_on_page(&h, &id, &csrf, Some(&planted.url), PAT).await;
    assert_server_not_allowed(&r, &h.upstream.url);
    assert!(
        planted.rest_calls().is_empty(),
        "the planted server was never asked"
    );
    assert!(planted.mcp_seen().is_empty());
    assert!(h.upstream.rest_calls().is_empty());
    assert_nothing_stored(&h).await;
    assert_eq!(h.state.consent.list(h.now()).len(), 1, "still pending");
    planted.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn the_page_refuses_another_server_once_an_account_names_one() {
    let h = Harness::start().await;
    let account = h.add_account(PAT, "acme").await;
    let planted = FakeUpstream::start().await;
    planted.allow(PAT_BETA, "beta");
    let (id, csrf) = consent_request(&h).await;
    for spelling in [
        planted.url.clone(),
        format!("{}/", planted.url),
        "not a url".into(),
    ] {
        let r = paste_on_page(&h, &id, &csrf, Some(&spelling), PAT_BETA).await;
        assert_server_not_allowed(&r, &h.upstream.url);
    }
    assert!(
        planted.rest_calls().is_empty(),
        "the planted server was never asked"
    );
    let stored: Vec<String> = h
        .state
        .store
        .accounts()
        .await
        .expect("accounts")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(stored, vec![account.clone()]);
    assert_eq!(h.secrets.entries().keys().collect::<Vec<_>>(), [&account]);
    planted.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn the_page_adds_a_token_for_the_known_server_named_or_not() {
    let h = Harness::start_with_default_server().await;
    h.upstream.allow(PAT, "acme");
    h.upstream.allow(PAT_BETA, "beta");
    let (id, csrf) = consent_request(&h).await;
    let r = paste_on_page(&h, &id, &csrf, None, PAT).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "no server named: {}",
        r.text
    );
    // The same server in another spelling is the same server.
    let r = paste_on_page(
        &h,
        &id,
        &csrf,
        Some(&format!("{}/", h.upstream.url)),
        PAT_BETA,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let accounts = h.state.store.accounts().await.expect("accounts");
    assert_eq!(accounts.len(), 2);
    assert!(
        accounts.iter().all(|a| a.server == h.upstream.url),
        "{accounts:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn with_no_server_known_the_page_offers_hosted_spor_and_takes_ones_own() {
    let h = Harness::start().await;
    let own = FakeUpstream::start().await;
    own.allow(PAT, "acme");
    let (id, csrf) = consent_request(&h).await;
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    // The harness plays hosted Spor with its fake upstream.
    assert!(
        page.text.contains(&format!(
            "Server: Hosted Spor <code>{}</code>",
            h.upstream.url
        )),
        "{}",
        page.text
    );
    assert!(
        page.text.contains(
            "<details class=\"own-server\"><summary>My organization runs its own Spor server</summary>\
             <label for=\"server_url\">Spor server URL</label>\
             <input id=\"server_url\" name=\"server_url\" type=\"url\" placeholder"
        ),
        "{}",
        page.text
    );
    let r = paste_on_page(&h, &id, &csrf, Some(&own.url), PAT).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let accounts = h.state.store.accounts().await.expect("accounts");
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].server, own.url);
    assert_eq!(accounts[0].mcp_url, format!("{}/mcp", own.url));
    assert!(
        h.upstream.rest_calls().is_empty(),
        "hosted Spor was not asked"
    );
    own.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn the_organization_picker_shows_each_accounts_full_origin() {
    let h = Harness::start().await;
    h.add_account(PAT, "acme").await;
    // Same person, same org, another server: only the origin tells them apart.
    let port = url::Url::parse(&h.upstream.url)
        .expect("upstream URL")
        .port()
        .expect("port");
    let lookalike = format!("http://localhost:{}", other_port(port));
    h.store_account(
        "acct_lookalike",
        &lookalike,
        &format!("{lookalike}/mcp"),
        "acme",
        PAT_BETA,
    )
    .await;
    let (id, _) = consent_request(&h).await;
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let options: Vec<&str> = page
        .text
        .split("<option ")
        .skip(1)
        .filter(|o| o.contains("Alice Example"))
        .collect();
    assert_eq!(options.len(), 2, "{}", page.text);
    assert!(
        options
            .iter()
            .any(|o| o.contains(&format!("· {}</option>", h.upstream.url))),
        "{options:?}"
    );
    assert!(
        options
            .iter()
            .any(|o| o.contains(&format!("· {lookalike}</option>"))),
        "{options:?}"
    );
    // Both servers are in use, so the token form offers exactly those two.
    let select = page
        .text
        .split("<select id=\"server_url\" name=\"server_url\" required>")
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .unwrap_or_else(|| panic!("no server choice: {}", page.text));
    assert_eq!(select.matches("<option ").count(), 2, "{select}");
    for server in [&h.upstream.url, &lookalike] {
        assert!(
            select.contains(&format!("<option value=\"{server}\">{server}</option>")),
            "{select}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_generic_server_that_speaks_only_mcp_2026_is_validated_with_server_discover() {
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    // A server of the newest revision only: no handshake, so `initialize`
    // gets its "unsupported version" error; `server/discover` with its
    // mirrored headers answers.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/mcp",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let msg: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let method = msg["method"].as_str().unwrap_or_default().to_string();
                log.lock().expect("log").push(method.clone());
                let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
                    == Some("Bearer modern_token_1");
                let mirrored = headers.get("mcp-method").and_then(|v| v.to_str().ok())
                    == Some(method.as_str())
                    && headers.get("mcp-protocol-version").is_some();
                match (authorized, method.as_str(), mirrored) {
                    (false, _, _) => (StatusCode::UNAUTHORIZED, String::new()),
                    (true, "server/discover", true) => (
                        StatusCode::OK,
                        serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {
                            "supportedVersions": ["2026-07-28"], "capabilities": {},
                            "serverInfo": {"name": "modern-only", "version": "1"}}})
                        .to_string(),
                    ),
                    _ => (
                        StatusCode::BAD_REQUEST,
                        serde_json::json!({"jsonrpc": "2.0", "id": 1, "error": {
                            "code": -32022, "message": "unsupported protocol version"}})
                        .to_string(),
                    ),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let h = Harness::start().await;
    let added = accounts::add_generic_account(&h.state, &url, "Modern", pat("modern_token_1"))
        .await
        .expect("a modern-only server is accepted");
    assert_eq!(added.account.mcp_url, url);
    assert_eq!(
        *seen.lock().expect("log"),
        ["initialize", "server/discover"]
    );
    // A token it refuses is refused as before, and nothing is stored.
    let h2 = Harness::start().await;
    let err = accounts::add_generic_account(&h2.state, &url, "Modern", pat("wrong_token"))
        .await
        .expect_err("refused");
    assert!(matches!(err, AccountError::Rejected(_)), "{err:?}");
    assert_nothing_stored(&h2).await;
    server.abort();
    h.stop().await;
    h2.stop().await;
}
