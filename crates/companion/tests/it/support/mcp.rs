//! Calling the companion's `/mcp` gateway as an assistant does, and the
//! checks on its bearer challenge.

use axum::http::StatusCode;

use super::harness::Harness;
use super::http::Reply;

/// An MCP `initialize` request.
pub const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"it","version":"0"}}}"#;

impl Harness {
    /// POST a JSON-RPC request to `/mcp` with the given `Authorization`.
    pub async fn mcp_with(&self, authorization: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(self.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        Reply::read(req.send().await.expect("POST /mcp")).await
    }

    /// POST `body` to `/mcp` with `Bearer <token>` and, if given, a session id.
    pub async fn mcp_post(&self, token: &str, session: Option<&str>, body: &str) -> Reply {
        let mut req = self
            .http
            .post(self.url("/mcp"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        Reply::read(req.send().await.expect("POST /mcp")).await
    }

    /// POST a JSON-RPC request to `/mcp` with `Bearer <token>`.
    pub async fn mcp(&self, token: &str) -> Reply {
        self.mcp_with(Some(&format!("Bearer {token}"))).await
    }

    /// The `WWW-Authenticate` challenge without an error.
    pub fn bare_challenge(&self) -> String {
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            self.base
        )
    }

    /// Asserts `/mcp` refuses `token` as an invalid token.
    pub async fn assert_token_refused(&self, token: &str) {
        let r = self.mcp(token).await;
        assert_invalid_token(self, &r);
    }

    /// Asserts `/mcp` accepts `token` (the fake upstream answers 200).
    pub async fn assert_token_works(&self, token: &str) {
        let r = self.mcp(token).await;
        assert_eq!(r.status, StatusCode::OK, "/mcp: {}", r.text);
        assert_eq!(r.json()["id"], 7);
    }
}

/// Asserts a `401` with `error="invalid_token"` and our resource metadata.
pub fn assert_invalid_token(h: &Harness, r: &Reply) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "body: {}", r.text);
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(
        challenge.starts_with(&format!("{}, error=\"invalid_token\"", h.bare_challenge())),
        "challenge: {challenge}"
    );
    assert_eq!(r.json()["error"], "invalid_token");
}
