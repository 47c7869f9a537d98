//! Attacks that cut across routes (docs/security.md): credentials where they
//! must not be, oversized requests, another client's redirect URI, a flood of
//! registrations, what another local user could read on disk, and
//! capabilities in the logs.

use axum::http::StatusCode;
use reqwest::Method;

use crate::support::{
    query_of, scrape_csrf, Harness, Logs, Params, Pkce, Reply, Tokens, PAT, REDIRECT,
};

/// A request body far over every route's bound (16 KiB forms, 4 MiB MCP).
fn oversized(len: usize) -> String {
    "a".repeat(len)
}

/// A code minted for a fresh client, with what is needed to exchange it.
struct Minted {
    client_id: String,
    code: String,
    pkce: Pkce,
}

async fn minted(h: &Harness) -> Minted {
    let account = h.add_account(PAT, "acme").await;
    let client_id = h.register(&[REDIRECT]).await;
    let pkce = Pkce::new();
    let code = h.code_for(&client_id, REDIRECT, &pkce, &account).await;
    Minted {
        client_id,
        code,
        pkce,
    }
}

/// Exchanging `m.code` still works: nothing before it consumed the code.
async fn assert_code_still_exchanges(h: &Harness, m: &Minted) {
    let r = h
        .token(&h.exchange_params(&m.client_id, &m.code, REDIRECT, &m.pkce.verifier))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.assert_token_works(&Tokens::from_reply(&r).access).await;
}

/// POST a `tools/list` to `path` (with its query string), with a bearer
/// header only if `bearer` is given.
async fn post_mcp_at(h: &Harness, path: &str, bearer: Option<&str>) -> Reply {
    let mut req = h
        .http
        .post(h.url(path))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    Reply::read(req.send().await.expect("POST /mcp")).await
}

/// POST `/oauth/token` with its parameters in the query string and an empty
/// form body.
async fn token_with_query(h: &Harness, query: &str) -> Reply {
    Reply::read(
        h.http
            .post(h.url(&format!("/oauth/token?{query}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .expect("POST /oauth/token"),
    )
    .await
}

#[tokio::test]
async fn an_access_token_in_the_query_string_is_ignored_and_never_forwarded() {
    let h = Harness::start().await;
    let c = h.connect().await;
    for param in ["access_token", "token", "bearer"] {
        let r = post_mcp_at(&h, &format!("/mcp?{param}={}", c.tokens.access), None).await;
        // No token was presented the only way we accept one, so the
        // challenge is the bare one (RFC 6750 §3.1: no error code).
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{param}: {}", r.text);
        assert_eq!(r.header("www-authenticate"), Some(&*h.bare_challenge()));
        r.assert_leaks_nothing(&[&c.tokens.access, PAT]);
    }
    assert!(h.upstream.mcp_seen().is_empty(), "nothing was forwarded");
    // With the header as well, the query string still goes nowhere: the
    // upstream URL is the account's, never the request's.
    let r = post_mcp_at(
        &h,
        &format!("/mcp?access_token={}", c.tokens.access),
        Some(&c.tokens.access),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let seen = h.upstream.mcp_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some(&*format!("Bearer {PAT}"))
    );
    assert!(
        seen[0]
            .headers
            .iter()
            .all(|(_, v)| !v.contains(&c.tokens.access)),
        "the host's token reached the server: {:?}",
        seen[0].headers
    );
    h.stop().await;
}

#[tokio::test]
async fn token_parameters_in_the_query_string_are_ignored_and_the_code_survives() {
    let h = Harness::start().await;
    let m = minted(&h).await;
    let query = h
        .exchange_params(&m.client_id, &m.code, REDIRECT, &m.pkce.verifier)
        .encode();
    let r = token_with_query(&h, &query).await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    r.assert_leaks_nothing(&[&m.code, &m.pkce.verifier]);
    assert_eq!(h.counts().await.grants, 0, "no grant from the query string");
    assert_code_still_exchanges(&h, &m).await;
    h.stop().await;
}

#[tokio::test]
async fn a_refresh_token_in_the_query_string_is_ignored_and_keeps_its_grant() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let query = Params::default()
        .add("grant_type", "refresh_token")
        .add("refresh_token", &c.tokens.refresh)
        .add("client_id", &c.client_id)
        .encode();
    let r = token_with_query(&h, &query).await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(h.counts().await.refresh_tokens, 1, "nothing rotated");
    let r = h.refresh(&c.client_id, &c.tokens.refresh).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the token was not spent: {}",
        r.text
    );
    h.stop().await;
}

#[tokio::test]
async fn oversized_oauth_form_bodies_are_413_invalid_request_and_change_nothing() {
    let h = Harness::start().await;
    let m = minted(&h).await;
    let before = h.counts().await;
    for path in ["/oauth/token", "/oauth/revoke"] {
        // A well-formed form that would do something, padded past the bound.
        let body = format!(
            "{}&pad={}",
            h.exchange_params(&m.client_id, &m.code, REDIRECT, &m.pkce.verifier)
                .add("token", &m.code)
                .encode(),
            oversized(64 * 1024)
        );
        let r = Reply::read(
            h.http
                .post(h.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("POST"),
        )
        .await;
        r.assert_oauth_error(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
        r.assert_leaks_nothing(&[&m.code, &m.pkce.verifier]);
    }
    assert_eq!(h.counts().await, before);
    assert_code_still_exchanges(&h, &m).await;
    h.stop().await;
}

#[tokio::test]
async fn an_oversized_mcp_body_is_413_and_never_forwarded() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{{"name":"put_node","arguments":{{"text":"{}"}}}}}}"#,
        oversized(5 * 1024 * 1024)
    );
    let r = h.mcp_post(&c.tokens.access, None, &body).await;
    assert_eq!(
        r.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        &r.text[..200.min(r.text.len())]
    );
    let err = &r.json()["error"];
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("larger than 4194304 bytes")),
        "{err}"
    );
    assert!(h.upstream.mcp_seen().is_empty(), "nothing was forwarded");
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn an_oversized_consent_form_is_refused_and_the_request_stays_pending() {
    let h = Harness::start().await;
    let account = h.add_account(PAT, "acme").await;
    let client_id = h.register(&[REDIRECT]).await;
    let pkce = Pkce::new();
    let id = h
        .authorize(&h.authorize_params(&client_id, REDIRECT, &pkce))
        .await;
    let csrf = h.csrf(&id).await;
    let resp = h
        .http
        .post(h.url(&format!("/oauth/consent/{id}")))
        .header("origin", &h.base)
        .form(&[
            ("csrf", csrf.as_str()),
            ("decision", "allow"),
            ("account_id", account.as_str()),
            ("pad", &oversized(3 * 1024 * 1024)),
        ])
        .send()
        .await
        .expect("POST consent");
    let r = Reply::read(resp).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.header("location"), None, "no code was handed out");
    assert_eq!(h.counts().await.codes, 0);
    // The real decision still goes through.
    let r = h.decide(&id, &csrf, "allow", &account).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(query_of(&r.location(&h.base)).contains_key("code"));
    h.stop().await;
}

#[tokio::test]
async fn oversized_headers_are_refused_before_any_route_and_the_server_keeps_serving() {
    let h = Harness::start().await;
    let c = h.connect().await;
    // One huge header, then too many headers: both past hyper's bounds.
    let huge = oversized(512 * 1024);
    for (method, path) in [
        (Method::POST, "/mcp"),
        (Method::POST, "/oauth/token"),
        (Method::POST, "/oauth/register"),
        (Method::GET, "/.well-known/oauth-authorization-server"),
    ] {
        let r = h
            .http
            .request(method.clone(), h.url(path))
            .bearer_auth(&c.tokens.access)
            .header("x-padding", &huge)
            .body("{}")
            .send()
            .await;
        match r {
            Ok(r) => assert_eq!(
                r.status(),
                reqwest::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "{method} {path}"
            ),
            // hyper may close the connection before the client finishes
            // writing; refused either way.
            Err(e) => assert!(e.is_request() || e.is_body(), "{method} {path}: {e}"),
        }
        let mut req = h
            .http
            .request(method.clone(), h.url(path))
            .bearer_auth(&c.tokens.access);
        for i in 0..200 {
            req = req.header(format!("x-h{i}"), "v");
        }
        let r = req.body("{}").send().await.expect("send");
        assert_eq!(
            r.status(),
            reqwest::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "{method} {path}"
        );
    }
    assert!(h.upstream.mcp_seen().is_empty(), "nothing was forwarded");
    h.assert_token_works(&c.tokens.access).await;
    h.stop().await;
}

#[tokio::test]
async fn another_clients_redirect_uri_is_shown_never_redirected_and_nothing_pends() {
    let h = Harness::start().await;
    h.add_account(PAT, "acme").await;
    let theirs = "https://victim.example/callback";
    h.register(&[theirs]).await;
    let ours = h.register(&["https://attacker.example/callback"]).await;
    let pkce = Pkce::new();
    let r = h
        .authorize_raw(&h.authorize_params(&ours, theirs, &pkce))
        .await;
    r.assert_shown_error(StatusCode::BAD_REQUEST);
    assert!(!r.text.contains("Allow"), "no consent form: {}", r.text);
    assert!(
        h.state.consent.list(h.now()).is_empty(),
        "nothing is pending"
    );
    assert_eq!(h.counts().await.codes, 0);
    h.stop().await;
}

#[tokio::test]
async fn thousands_of_registrations_stay_within_the_cap_and_keep_connected_clients() {
    let h = Harness::start().await;
    let connected = h.connect().await;
    let cap = spor_companion::config::Limits::default().max_clients;
    let total = cap + cap / 2;
    let body = format!(r#"{{"redirect_uris":["{REDIRECT}"],"client_name":"flood"}}"#);
    for i in 0..total {
        let r = h.register_raw("application/json", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "registration {i}: {}",
            r.text
        );
    }
    let count = h.state.store.client_count().await.expect("count");
    assert_eq!(count, cap as i64, "bounded at the cap");
    assert!(
        h.has_client(&connected.client_id).await,
        "a connected client is never evicted"
    );
    h.assert_token_works(&connected.tokens.access).await;
    let r = h
        .refresh(&connected.client_id, &connected.tokens.refresh)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_owner_only_even_if_it_existed_wider() {
    use spor_companion::config::{Config, ConsentMode};
    use spor_companion::secrets::SecretStoreKind;
    use spor_companion::state::AppState;
    use std::os::unix::fs::PermissionsExt;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = Config {
        data_dir: dir.clone(),
        default_server: None,
        consent_mode: ConsentMode::Browser,
    };
    let state = AppState::open(config, SecretStoreKind::File).expect("open");
    let mode = std::fs::metadata(&dir).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "data dir mode {mode:o}");
    drop(state);
}

#[tokio::test]
async fn no_route_grants_cross_origin_reads() {
    let h = Harness::start().await;
    let c = h.connect().await;
    // A page on another loopback port passes the guard (it cannot be told
    // from a local tool), so the browser's same-origin policy must hold:
    // no CORS header anywhere, and preflights get nothing that allows more.
    let page = format!("http://127.0.0.1:{}", crate::support::other_port(h.port));
    for (method, path) in [
        (Method::GET, "/.well-known/oauth-authorization-server"),
        (Method::GET, "/.well-known/oauth-protected-resource/mcp"),
        (Method::POST, "/oauth/register"),
        (Method::POST, "/oauth/token"),
        (Method::POST, "/mcp"),
        (Method::OPTIONS, "/mcp"),
        (Method::OPTIONS, "/oauth/token"),
    ] {
        let r = Reply::read(
            h.http
                .request(method.clone(), h.url(path))
                .header("origin", &page)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization")
                .bearer_auth(&c.tokens.access)
                .header("content-type", "application/json")
                .body(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#)
                .send()
                .await
                .expect("send"),
        )
        .await;
        for (name, _) in r.headers.iter() {
            assert!(
                !name.as_str().starts_with("access-control-"),
                "{method} {path} answered {name}"
            );
        }
        if method == Method::OPTIONS {
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn capabilities_stay_out_of_info_logs_and_are_shortened_at_debug() {
    let logs = Logs::capture();
    let h = Harness::start().await;
    let account = h.add_account(PAT, "acme").await;
    let client = h.register(&[REDIRECT]).await;

    // Authorize, read the page, poll its status, approve, exchange, refresh
    // and call /mcp: every step that handles a capability.
    let pkce = Pkce::new();
    let id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &pkce))
        .await;
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    let csrf = scrape_csrf(&page.text);
    let poll = h
        .get(&format!("/oauth/consent/{id}/status?csrf={csrf}"))
        .await;
    assert_eq!(poll.json()["status"], "pending", "{}", poll.text);
    let approved = h.decide(&id, &csrf, "allow", &account).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.text);
    let code = query_of(&approved.location(&h.base))["code"].clone();
    let exchange = h.exchange_params(&client, &code, REDIRECT, &pkce.verifier);
    let first = Tokens::from_reply(&h.token(&exchange).await);
    let next = Tokens::from_reply(&h.refresh(&client, &first.refresh).await);
    h.assert_token_works(&next.access).await;

    // A denied request, and the code replayed by its own client (WARN).
    let denied_pkce = Pkce::new();
    let denied_id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &denied_pkce))
        .await;
    let denied_csrf = h.csrf(&denied_id).await;
    let denied = h.decide(&denied_id, &denied_csrf, "deny", &account).await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER, "{}", denied.text);
    h.token(&exchange)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    h.stop().await;

    let (info, debug) = (logs.info(), logs.debug());
    // The capture sees the flow, with the ids that are not capabilities.
    for line in [
        "client registered",
        "authorization request waiting for consent",
        "authorization approved",
        "authorization denied",
        "assistant connected",
        "authorization code reused: grant revoked",
    ] {
        assert!(info.contains(line), "no {line:?} at INFO:\n{info}");
    }
    assert!(info.contains(&client) && info.contains(&account), "{info}");
    let capabilities = [
        ("consent request id", id.as_str()),
        ("CSRF token", csrf.as_str()),
        ("denied consent request id", denied_id.as_str()),
        ("denied CSRF token", denied_csrf.as_str()),
        ("authorization code", code.as_str()),
        ("PKCE verifier", pkce.verifier.as_str()),
        ("access token", first.access.as_str()),
        ("refresh token", first.refresh.as_str()),
        ("rotated access token", next.access.as_str()),
        ("rotated refresh token", next.refresh.as_str()),
        ("PAT", PAT),
    ];
    for (what, value) in capabilities {
        assert!(!info.contains(value), "{what} at INFO:\n{info}");
        assert!(!debug.contains(value), "{what} in full at DEBUG:\n{debug}");
    }
    // At debug, request ids appear shortened so one request can be followed.
    for id in [&id, &denied_id] {
        let short = format!("{}…", &id[..6]);
        assert!(debug.contains(&short), "no {short} at DEBUG:\n{debug}");
        assert!(!info.contains(&short), "{short} at INFO:\n{info}");
    }
}
