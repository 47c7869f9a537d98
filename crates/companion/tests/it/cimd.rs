//! Client ID Metadata Documents: a client whose `client_id` is the `https`
//! URL of its document signs in without registering, the consent says which
//! host vouches for its name, one client stands for all its installations,
//! the document is kept as its caching headers allow, and every document
//! that cannot be used is refused with its reason and leaves nothing stored.
//! Documents come from a local HTTPS server with a CA made for the test,
//! reached through the library's seam; the address rule is the production
//! one (`keep_public`), and one case uses the production fetcher itself.

use std::net::IpAddr;

use axum::http::StatusCode;
use serde_json::{json, Value};
use spor_companion::client_documents::ClientDocuments;

use crate::support::{
    closed_port, query_of, Answer, DocumentServer, FixedNames, Harness, Pkce, DOC_HOST, PAT,
};

const PATH: &str = "/oauth/client-metadata.json";

/// A document as a CIMD host publishes it, for `url`.
fn document(url: &str, name: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": name,
        "client_uri": "https://docs.example.test/",
        "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

async fn started() -> (DocumentServer, Harness) {
    let docs = DocumentServer::start().await;
    let h = Harness::start_with_client_documents(docs.fetcher()).await;
    (docs, h)
}

/// Authorizes `client_id` with an ephemeral loopback port; the consent id.
async fn authorize(h: &Harness, client_id: &str, port: u16, pkce: &Pkce) -> String {
    let redirect = format!("http://127.0.0.1:{port}/callback");
    h.authorize(&h.authorize_params(client_id, &redirect, pkce))
        .await
}

#[tokio::test]
async fn a_client_named_by_its_document_signs_in_and_the_consent_says_who_vouches_for_it() {
    let (docs, h) = started().await;
    let url = docs.url(PATH);
    docs.serve(PATH, Answer::json(&document(&url, "Claude Code")));
    let meta = h.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(meta.json()["client_id_metadata_document_supported"], true);
    let account = h.add_account(PAT, "acme").await;

    // No registration: the authorization request names the document.
    let pkce = Pkce::new();
    let id = authorize(&h, &url, 49_152, &pkce).await;
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert!(page.text.contains("Claude Code"), "{}", page.text);
    assert!(
        page.text
            .contains(&format!("verified by {DOC_HOST}</span>")),
        "{}",
        page.text
    );
    assert!(!page.text.contains("name as stated by the app"));
    let listed = h.state.consent.list(h.state.now());
    assert_eq!(listed[0].verified_by.as_deref(), Some(DOC_HOST));
    assert_eq!(listed[0].client_id, url);

    let csrf = h.csrf(&id).await;
    let r = h.decide(&id, &csrf, "allow", &account).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let code = query_of(&r.location(&h.base))["code"].clone();
    let redirect = "http://127.0.0.1:49152/callback";
    let t = h
        .token(&h.exchange_params(&url, &code, redirect, &pkce.verifier))
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let grant = h
        .grant(
            &h.grant_of(t.json()["access_token"].as_str().expect("access"))
                .await,
        )
        .await;
    assert_eq!(grant.client_id, url);
    assert_eq!(grant.client_name, "Claude Code");
    assert_eq!(grant.verified_by.as_deref(), Some(DOC_HOST));
    // The refresh token works for the URL client too.
    let refreshed = h
        .refresh(&url, t.json()["refresh_token"].as_str().expect("refresh"))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);

    // A second installation (another port, RFC 8252 §7.3) is the same
    // client, and the fresh document is not fetched again.
    let again = authorize(&h, &url, 61_000, &Pkce::new()).await;
    assert_ne!(again, id);
    assert_eq!(h.counts().await.clients, 1);
    assert_eq!(docs.fetches(PATH), 1, "kept for the default 5 minutes");
    h.stop().await;
    docs.stop().await;
}

#[tokio::test]
async fn a_document_is_kept_for_its_max_age_then_fetched_again_and_no_store_is_never_kept() {
    let (docs, h) = started().await;
    let url = docs.url(PATH);
    let mut answer = Answer::json(&document(&url, "Editor One"));
    answer.cache_control = Some("public, max-age=60".into());
    docs.serve(PATH, answer);

    authorize(&h, &url, 50_001, &Pkce::new()).await;
    h.clock.advance(59);
    authorize(&h, &url, 50_002, &Pkce::new()).await;
    assert_eq!(docs.fetches(PATH), 1, "within max-age");

    // The host renames its client; after max-age the new name is shown.
    let mut renamed = Answer::json(&document(&url, "Editor Two"));
    renamed.cache_control = Some("max-age=60".into());
    docs.serve(PATH, renamed);
    h.clock.advance(2);
    let id = authorize(&h, &url, 50_003, &Pkce::new()).await;
    assert_eq!(docs.fetches(PATH), 2, "refetched after max-age");
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert!(page.text.contains("Editor Two"), "{}", page.text);
    let stored = h
        .state
        .store
        .client(url.clone())
        .await
        .expect("db")
        .expect("client");
    assert_eq!(stored.name, "Editor Two");
    assert_eq!(h.counts().await.clients, 1);

    let other = "/no-store.json";
    let other_url = docs.url(other);
    let mut uncached = Answer::json(&document(&other_url, "Editor Three"));
    uncached.cache_control = Some("no-store".into());
    docs.serve(other, uncached);
    authorize(&h, &other_url, 50_004, &Pkce::new()).await;
    authorize(&h, &other_url, 50_005, &Pkce::new()).await;
    assert_eq!(docs.fetches(other), 2);
    h.stop().await;
    docs.stop().await;
}

/// Asserts the refusal page for `client_id` with `code` and `reason` in it,
/// and that nothing was stored or queued for consent.
async fn assert_refused(h: &Harness, client_id: &str, code: &str, reason: &str) {
    let pkce = Pkce::new();
    let r = h
        .authorize_raw(&h.authorize_params(client_id, "http://127.0.0.1:50123/callback", &pkce))
        .await;
    r.assert_shown_error(StatusCode::BAD_REQUEST);
    assert!(
        r.text.contains(&format!("data-error=\"{code}\"")),
        "{client_id}: want {code}: {}",
        r.text
    );
    let text = r
        .text
        .replace("&#x2F;", "/")
        .replace("&#39;", "'")
        .replace("&quot;", "\"");
    assert!(text.contains(client_id), "names the URL: {}", r.text);
    assert!(
        text.contains(reason),
        "{client_id}: want {reason:?}: {}",
        r.text
    );
    assert_eq!(h.counts().await.clients, 0, "{client_id}: no client row");
    assert!(
        h.state.consent.list(h.state.now()).is_empty(),
        "{client_id}: no consent"
    );
}

#[tokio::test]
async fn documents_on_addresses_that_are_not_public_are_never_fetched() {
    let docs = DocumentServer::start().await;
    let url = docs.url(PATH);
    docs.serve(PATH, Answer::json(&document(&url, "Sneaky")));
    for (ip, what) in [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("192.168.1.20", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fd00::5", "a unique-local address"),
    ] {
        let ip: IpAddr = ip.parse().expect("ip");
        let names = FixedNames::new().answer(DOC_HOST, &[ip]).public_only();
        let h = Harness::start_with_client_documents(docs.fetcher_resolving(names)).await;
        let reason = format!("{DOC_HOST} resolves to {ip}, {what}");
        assert_refused(&h, &url, "address_not_public", &reason).await;
        h.stop().await;
    }
    assert_eq!(docs.fetches(PATH), 0, "no request ever reached the server");
    docs.stop().await;
}

#[tokio::test]
async fn the_shipped_fetcher_refuses_a_name_that_resolves_to_this_machine() {
    // The production fetcher (system resolver, public addresses only):
    // `localhost` resolves without DNS to 127.0.0.1 and ::1.
    let h = Harness::start_with_client_documents(ClientDocuments::new()).await;
    assert_refused(
        &h,
        "https://localhost/client.json",
        "address_not_public",
        "localhost resolves to",
    )
    .await;
    // An address in place of a name is refused before any lookup.
    assert_refused(
        &h,
        "https://127.0.0.1/client.json",
        "bad_url",
        "its host must be a name, not an address",
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn documents_that_cannot_be_used_are_refused_with_their_reason_and_nothing_is_stored() {
    let (docs, h) = started().await;
    let at = |path: &str| docs.url(path);

    let mut redirect = Answer::json(&json!({}));
    redirect.status = 302;
    redirect.location = Some(at("/elsewhere.json"));
    docs.serve("/redirect.json", redirect);
    let mut missing = Answer::json(&json!({}));
    missing.status = 404;
    docs.serve("/gone.json", missing);
    let mut html = Answer::json(&document(&at("/html.json"), "Html"));
    html.content_type = Some("text/html".into());
    docs.serve("/html.json", html);
    let mut big = document(&at("/big.json"), "Big");
    big["padding"] = Value::String("x".repeat(70 * 1024));
    docs.serve("/big.json", Answer::json(&big));
    docs.serve(
        "/mismatch.json",
        Answer::json(&document(&at("/other.json"), "Mismatch")),
    );
    let mut nameless = document(&at("/nameless.json"), "x");
    nameless
        .as_object_mut()
        .expect("object")
        .remove("client_name");
    docs.serve("/nameless.json", Answer::json(&nameless));
    let mut no_redirects = document(&at("/no-redirects.json"), "x");
    no_redirects
        .as_object_mut()
        .expect("object")
        .remove("redirect_uris");
    docs.serve("/no-redirects.json", Answer::json(&no_redirects));
    let mut secret = document(&at("/secret.json"), "Secret");
    secret["token_endpoint_auth_method"] = "client_secret_basic".into();
    docs.serve("/secret.json", Answer::json(&secret));

    for (path, code, reason) in [
        (
            "/redirect.json",
            "redirect",
            "answered with a redirect (302), which Spor Companion does not follow",
        ),
        ("/gone.json", "bad_status", "answered 404 instead of 200"),
        (
            "/html.json",
            "not_json",
            "answered with text/html, not application/json",
        ),
        (
            "/big.json",
            "too_large",
            "the document is larger than 64 KiB",
        ),
        (
            "/mismatch.json",
            "client_id_mismatch",
            "the document's client_id is not its own URL",
        ),
        (
            "/nameless.json",
            "missing_field",
            "the document has no client_name",
        ),
        (
            "/no-redirects.json",
            "missing_field",
            "the document has no redirect_uris",
        ),
        (
            "/secret.json",
            "invalid_field",
            "token_endpoint_auth_method must be \"none\"",
        ),
    ] {
        assert_refused(&h, &at(path), code, reason).await;
    }
    assert_eq!(
        docs.fetches("/elsewhere.json"),
        0,
        "the redirect was not followed"
    );
    h.stop().await;

    // Nobody listens where the name points.
    let closed = closed_port().await;
    let unreachable = format!("https://{DOC_HOST}:{closed}{PATH}");
    let h = Harness::start_with_client_documents(docs.fetcher()).await;
    assert_refused(
        &h,
        &unreachable,
        "unreachable",
        "its server could not be reached",
    )
    .await;
    h.stop().await;
    docs.stop().await;
}

#[tokio::test]
async fn a_redirect_uri_the_document_does_not_list_is_shown_an_error_and_nothing_is_stored() {
    let (docs, h) = started().await;
    let url = docs.url(PATH);
    docs.serve(PATH, Answer::json(&document(&url, "Claude Code")));
    for redirect in [
        "http://127.0.0.1:50123/elsewhere",
        "https://evil.example/callback",
    ] {
        let r = h
            .authorize_raw(&h.authorize_params(&url, redirect, &Pkce::new()))
            .await;
        r.assert_shown_error(StatusCode::BAD_REQUEST);
        assert!(
            r.text
                .contains("The redirect_uri does not match any registered for this assistant."),
            "{}",
            r.text
        );
    }
    assert_eq!(h.counts().await.clients, 0);
    assert!(h.state.consent.list(h.state.now()).is_empty());
    h.stop().await;
    docs.stop().await;
}

/// An HTTP CONNECT proxy on `127.0.0.1` that tunnels every request to
/// `target` and counts the tunnels it opened.
async fn connect_proxy(target: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let port = listener.local_addr().expect("addr").port();
    let tunnels = std::sync::Arc::new(AtomicUsize::new(0));
    let count = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                if !head.starts_with(b"CONNECT ") {
                    return;
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (port, tunnels)
}

#[tokio::test]
async fn through_a_system_proxy_documents_are_fetched_and_this_machine_is_still_refused() {
    use std::sync::atomic::Ordering;
    let docs = DocumentServer::start().await;
    let url = docs.url(PATH);
    docs.serve(PATH, Answer::json(&document(&url, "Behind A Proxy")));
    let (proxy_port, tunnels) = connect_proxy(docs.port).await;
    let proxy = reqwest::Proxy::https(format!("http://127.0.0.1:{proxy_port}")).expect("proxy");
    let h = Harness::start_with_client_documents(ClientDocuments::through_proxy(
        proxy,
        Some(docs.root()),
    ))
    .await;

    // A name this machine cannot resolve: the proxy resolves and fetches.
    let id = authorize(&h, &url, 50_600, &Pkce::new()).await;
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert!(page.text.contains("Behind A Proxy"), "{}", page.text);
    assert_eq!(tunnels.load(Ordering::SeqCst), 1);
    assert_eq!(docs.fetches(PATH), 1);

    // A name this machine resolves to itself never reaches the proxy.
    let local = "https://localhost/client.json";
    let r = h
        .authorize_raw(&h.authorize_params(local, "http://127.0.0.1:50601/callback", &Pkce::new()))
        .await;
    r.assert_shown_error(StatusCode::BAD_REQUEST);
    assert!(
        r.text.contains("data-error=\"address_not_public\""),
        "{}",
        r.text
    );
    assert_eq!(tunnels.load(Ordering::SeqCst), 1, "no tunnel for localhost");
    assert_eq!(h.counts().await.clients, 1, "only the proxied client");
    h.stop().await;
    docs.stop().await;
}

#[tokio::test]
async fn a_document_naming_a_known_host_whose_port_another_program_holds_is_a_warning() {
    use spor_companion::consent::requester::WarningKind;
    let (docs, h) = started().await;
    let claude = docs.url("/claude.json");
    docs.serve(
        "/claude.json",
        Answer::json(&document(&claude, "Claude Code")),
    );
    let editor = docs.url("/editor.json");
    docs.serve(
        "/editor.json",
        Answer::json(&document(&editor, "Editor One")),
    );
    // This test process holds the port: it is not Claude Code.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();

    let id = authorize(&h, &claude, port, &Pkce::new()).await;
    let who = h
        .state
        .consent
        .pending(&id, h.state.now())
        .expect("pending")
        .requester;
    assert_eq!(who.expected_app.as_deref(), Some("Claude Code"));
    let kinds: Vec<_> = who.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(kinds, [WarningKind::OtherProgramListens]);
    assert!(
        who.warnings[0]
            .message
            .contains(&format!("pid {}", std::process::id()))
            && who.warnings[0]
                .message
                .ends_with("not by Claude Code, which this assistant's metadata document names."),
        "{}",
        who.warnings[0].message
    );
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert!(
        page.text.contains("data-warning=\"other_program_listens\""),
        "{}",
        page.text
    );

    // A name that is no known host's expects no particular program.
    let id = authorize(&h, &editor, port, &Pkce::new()).await;
    let who = h
        .state
        .consent
        .pending(&id, h.state.now())
        .expect("pending")
        .requester;
    assert_eq!(who.expected_app, None);
    assert!(who.warnings.is_empty(), "{:?}", who.warnings);
    drop(holder);
    h.stop().await;
    docs.stop().await;
}
