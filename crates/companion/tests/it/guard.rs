//! The DNS-rebinding guard: every request must name us by a loopback host
//! and our port; a present `Origin` must be a loopback origin (DESIGN §4).

use axum::http::StatusCode;
use reqwest::Method;

use crate::support::{other_port, Connected, Harness, Params, Pkce, Reply, REDIRECT};

/// A request: method, path (with query) and an optional (content type, body).
type Request = (Method, String, Option<(&'static str, String)>);

/// Every route, with a request that would succeed (or at least do
/// something) if the guard let it through.
struct Routes {
    c: Connected,
    pending: String,
    authorize_query: String,
}

impl Routes {
    async fn new(h: &Harness) -> Self {
        let c = h.connect().await;
        let pkce = Pkce::new();
        let params = h.authorize_params(&c.client_id, REDIRECT, &pkce);
        let pending = h.authorize(&params).await;
        Self {
            c,
            pending,
            authorize_query: params.encode(),
        }
    }

    fn all(&self) -> Vec<Request> {
        let form = "application/x-www-form-urlencoded";
        vec![
            (
                Method::GET,
                "/.well-known/oauth-protected-resource/mcp".into(),
                None,
            ),
            (
                Method::GET,
                "/.well-known/oauth-protected-resource".into(),
                None,
            ),
            (
                Method::GET,
                "/.well-known/oauth-authorization-server".into(),
                None,
            ),
            (
                Method::POST,
                "/oauth/register".into(),
                Some((
                    "application/json",
                    serde_json::json!({ "redirect_uris": [REDIRECT] }).to_string(),
                )),
            ),
            (
                Method::GET,
                format!("/oauth/authorize?{}", self.authorize_query),
                None,
            ),
            (
                Method::GET,
                format!("/oauth/consent/{}", self.pending),
                None,
            ),
            (
                Method::POST,
                "/oauth/token".into(),
                Some((
                    form,
                    Params::default()
                        .add("grant_type", "refresh_token")
                        .add("refresh_token", &self.c.tokens.refresh)
                        .add("client_id", &self.c.client_id)
                        .encode(),
                )),
            ),
            (
                Method::POST,
                "/oauth/revoke".into(),
                Some((
                    form,
                    Params::default()
                        .add("token", &self.c.tokens.access)
                        .encode(),
                )),
            ),
            (
                Method::POST,
                "/mcp".into(),
                Some((
                    "application/json",
                    r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.into(),
                )),
            ),
            (Method::GET, "/oauth/assets/consent.js".into(), None),
        ]
    }
}

async fn send(
    h: &Harness,
    routes: &Routes,
    method: Method,
    path: &str,
    body: Option<(&str, String)>,
    header: (&str, &str),
) -> Reply {
    let mut req = h
        .http
        .request(method, h.url(path))
        .header(header.0, header.1);
    if path == "/mcp" {
        req = req.bearer_auth(&routes.c.tokens.access);
    }
    if let Some((ct, b)) = body {
        req = req.header("content-type", ct).body(b);
    }
    Reply::read(req.send().await.expect("request")).await
}

/// Sends every route with each value of `header_name` (built from our
/// port) and asserts each is refused and nothing happened.
async fn assert_every_route_refused(header_name: &str, values: impl Fn(u16) -> Vec<String>) {
    let h = Harness::start().await;
    let routes = Routes::new(&h).await;
    let before = h.counts().await;
    for value in values(h.port) {
        for (method, path, body) in routes.all() {
            let r = send(
                &h,
                &routes,
                method.clone(),
                &path,
                body,
                (header_name, &value),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {path} with {header_name}: {value}: {}",
                r.text
            );
            r.assert_forbidden_by_guard();
            r.assert_leaks_nothing(&[&routes.c.tokens.access, &routes.c.tokens.refresh]);
        }
    }
    assert_eq!(h.counts().await, before, "nothing stored or minted");
    assert_eq!(
        h.state.consent.list(h.now()).len(),
        1,
        "nothing new pending"
    );
    assert!(h.grant(&routes.c.grant_id).await.revoked_at.is_none());
    assert!(h.upstream.mcp_seen().is_empty(), "nothing forwarded");
    h.stop().await;
}

#[tokio::test]
async fn a_foreign_host_is_403_on_every_route() {
    assert_every_route_refused("host", |port| {
        vec![
            format!("evil.example:{port}"),
            format!("localhost.evil.example:{port}"),
            format!("127.0.0.2:{port}"),
        ]
    })
    .await;
}

#[tokio::test]
async fn our_address_with_a_wrong_or_missing_port_in_host_is_403_on_every_route() {
    assert_every_route_refused("host", |port| {
        vec![
            format!("127.0.0.1:{}", other_port(port)),
            format!("localhost:{}", other_port(port)),
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ]
    })
    .await;
}

#[tokio::test]
async fn a_foreign_origin_is_403_on_every_route() {
    assert_every_route_refused("origin", |port| {
        vec![
            "http://evil.example".to_string(),
            format!("https://evil.example:{port}"),
            "null".to_string(),
            format!("http://127.0.0.1.evil.example:{port}"),
            "http://localhost.evil.example".to_string(),
        ]
    })
    .await;
}

#[tokio::test]
async fn a_loopback_origin_on_another_port_is_allowed_on_non_form_routes() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let origin = format!("http://localhost:{}", other_port(h.port));
    let r = Reply::read(
        h.http
            .get(h.url("/.well-known/oauth-protected-resource/mcp"))
            .header("origin", &origin)
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["resource"], h.url("/mcp"));
    let m = Reply::read(
        h.http
            .post(h.url("/mcp"))
            .header("origin", &origin)
            .bearer_auth(&c.tokens.access)
            .header("content-type", "application/json")
            .body(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#)
            .send()
            .await
            .expect("POST /mcp"),
    )
    .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    assert_eq!(m.json()["id"], 3);
    h.stop().await;
}
