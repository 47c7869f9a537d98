//! The OAuth flow as a well-behaved client drives it over HTTP: register,
//! authorize, consent (scraping the page's CSRF token), and token exchange
//! and refresh, ending in a [`Connected`] assistant. Tests that attack one
//! step build on the same pieces with one thing changed.

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use spor_companion::tokens;

use super::harness::Harness;
use super::http::{query_of, Params, Reply};
use super::upstream::PAT;

/// The redirect URI most tests register.
pub const REDIRECT: &str = "http://127.0.0.1:43110/callback";
/// The client name most tests register.
pub const CLIENT_NAME: &str = "Test Assistant";

/// A PKCE pair.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The verifier (43 base64url characters).
    pub verifier: String,
    /// base64url(sha256(verifier)).
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn new() -> Self {
        let verifier = tokens::random_b64(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// A token pair from the token endpoint.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    /// Reads a successful token response.
    pub fn from_reply(r: &Reply) -> Self {
        assert_eq!(r.status, StatusCode::OK, "token response: {}", r.text);
        let v = r.json();
        Self {
            access: v["access_token"].as_str().expect("access_token").into(),
            refresh: v["refresh_token"].as_str().expect("refresh_token").into(),
        }
    }
}

/// An assistant that went through the whole flow.
#[derive(Debug, Clone)]
pub struct Connected {
    pub client_id: String,
    pub account_id: String,
    pub grant_id: String,
    pub tokens: Tokens,
}

impl Harness {
    /// POST a JSON text with a content type to `/oauth/register`.
    pub async fn register_raw(&self, content_type: &str, body: impl Into<reqwest::Body>) -> Reply {
        let resp = self
            .http
            .post(self.url("/oauth/register"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST register");
        Reply::read(resp).await
    }

    /// Registers a client; returns its id.
    pub async fn register(&self, redirect_uris: &[&str]) -> String {
        let r = self
            .register_raw(
                "application/json",
                json!({ "client_name": CLIENT_NAME, "redirect_uris": redirect_uris }).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "register: {}", r.text);
        r.json()["client_id"]
            .as_str()
            .expect("client_id")
            .to_string()
    }

    /// The authorization request parameters of a well-behaved client.
    pub fn authorize_params(&self, client_id: &str, redirect_uri: &str, pkce: &Pkce) -> Params {
        Params::default()
            .add("response_type", "code")
            .add("client_id", client_id)
            .add("redirect_uri", redirect_uri)
            .add("code_challenge", &pkce.challenge)
            .add("code_challenge_method", "S256")
            .add("state", "st-123")
            .add("scope", "mcp")
            .add("resource", &self.url("/mcp"))
    }

    /// GET `/oauth/authorize` with `params`.
    pub async fn authorize_raw(&self, params: &Params) -> Reply {
        self.get(&format!("/oauth/authorize?{}", params.encode()))
            .await
    }

    /// Sends a valid authorization request; returns the pending request id.
    pub async fn authorize(&self, params: &Params) -> String {
        let r = self.authorize_raw(params).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "authorize: {}", r.text);
        let loc = r.header("location").expect("Location").to_string();
        loc.strip_prefix("/oauth/consent/")
            .unwrap_or_else(|| panic!("not sent to consent: {loc}"))
            .to_string()
    }

    /// The consent page's CSRF token.
    pub async fn csrf(&self, request_id: &str) -> String {
        let page = self.get(&format!("/oauth/consent/{request_id}")).await;
        assert_eq!(page.status, StatusCode::OK, "consent page: {}", page.text);
        scrape_csrf(&page.text)
    }

    /// POSTs a consent decision the way our page does.
    pub async fn decide(
        &self,
        request_id: &str,
        csrf: &str,
        decision: &str,
        account_id: &str,
    ) -> Reply {
        let resp = self
            .http
            .post(self.url(&format!("/oauth/consent/{request_id}")))
            .header("origin", &self.base)
            .form(&[
                ("csrf", csrf),
                ("decision", decision),
                ("account_id", account_id),
            ])
            .send()
            .await
            .expect("POST consent");
        Reply::read(resp).await
    }

    /// Register-free part of the flow: authorize, approve; returns the code.
    pub async fn code_for(
        &self,
        client_id: &str,
        redirect_uri: &str,
        pkce: &Pkce,
        account_id: &str,
    ) -> String {
        let id = self
            .authorize(&self.authorize_params(client_id, redirect_uri, pkce))
            .await;
        let csrf = self.csrf(&id).await;
        let r = self.decide(&id, &csrf, "allow", account_id).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "approve: {}", r.text);
        let q = query_of(&r.location(&self.base));
        q.get("code").expect("code in redirect").clone()
    }

    /// The authorization-code token request of a well-behaved client.
    pub fn exchange_params(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Params {
        Params::default()
            .add("grant_type", "authorization_code")
            .add("code", code)
            .add("redirect_uri", redirect_uri)
            .add("code_verifier", verifier)
            .add("client_id", client_id)
    }

    /// POST `/oauth/token`.
    pub async fn token(&self, params: &Params) -> Reply {
        self.post_form("/oauth/token", params).await
    }

    /// A refresh request.
    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> Reply {
        self.token(
            &Params::default()
                .add("grant_type", "refresh_token")
                .add("refresh_token", refresh_token)
                .add("client_id", client_id),
        )
        .await
    }

    /// Registers, adds the `acme` account for [`PAT`], authorizes, approves
    /// and exchanges the code.
    pub async fn connect(&self) -> Connected {
        let account_id = self.add_account(PAT, "acme").await;
        self.connect_as(&account_id).await
    }

    /// Like [`Self::connect`] for an already stored account.
    pub async fn connect_as(&self, account_id: &str) -> Connected {
        let client_id = self.register(&[REDIRECT]).await;
        let pkce = Pkce::new();
        let code = self.code_for(&client_id, REDIRECT, &pkce, account_id).await;
        let r = self
            .token(&self.exchange_params(&client_id, &code, REDIRECT, &pkce.verifier))
            .await;
        let tokens = Tokens::from_reply(&r);
        let grant_id = self.grant_of(&tokens.access).await;
        Connected {
            client_id,
            account_id: account_id.to_string(),
            grant_id,
            tokens,
        }
    }
}

/// The hidden `csrf` input of a consent page.
pub fn scrape_csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf input in page: {html}"))
        + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html[start..end].to_string()
}
