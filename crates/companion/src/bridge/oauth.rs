//! The bridge as an OAuth 2.1 client of the companion (or any MCP
//! authorization server): discovery (RFC 9728 → RFC 8414), dynamic
//! registration (RFC 7591), authorization code + PKCE S256 through the
//! browser and a loopback callback, refresh with rotation. Credentials live
//! in the secret store, and every renewal happens under a cross-process
//! lock, so several bridges share one registration and one token pair
//! instead of racing each other through the browser.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::browser;
use super::callback::{Callback, Outcome};
use crate::clock::Clock;
use crate::secrets::{SecretError, SecretStore};
use crate::sensitive::Sensitive;
use crate::tokens::random_b64;

/// Renew this long before the access token's stated expiry.
const EXPIRY_MARGIN_SECS: i64 = 60;
/// Bound on metadata, registration and token responses.
const MAX_JSON: usize = 256 * 1024;

/// Why the bridge could not get a usable access token. Messages are shown to
/// the person (as the JSON-RPC error the host displays) and carry no secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The server did not answer at all.
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    /// Discovery documents were missing or wrong.
    #[error("{0}")]
    Discovery(String),
    /// Dynamic registration failed.
    #[error("registration with {0} failed: {1}")]
    Registration(String, String),
    /// The person declined in the consent screen.
    #[error("access was not granted ({0}). Ask your assistant to connect again to retry.")]
    Denied(String),
    /// Nobody finished the consent screen in time.
    #[error("nobody approved the connection within {0} s. Ask your assistant to connect again to retry.")]
    TimedOut(u64),
    /// The token endpoint refused.
    #[error("the token endpoint refused: {0}")]
    Token(String),
    /// The callback listener could not start.
    #[error("cannot listen for the sign-in answer on 127.0.0.1: {0}")]
    Callback(String),
    /// Reading or writing the stored credentials failed.
    #[error(transparent)]
    Store(#[from] SecretError),
    /// The cross-process lock could not be taken.
    #[error("cannot lock {0}: {1}")]
    Lock(PathBuf, String),
}

/// What the bridge keeps per (server, host): its registration and tokens.
#[derive(Clone, Default)]
struct Credentials {
    issuer: String,
    client_id: String,
    access_token: Option<Sensitive<String>>,
    refresh_token: Option<Sensitive<String>>,
    expires_at: Option<i64>,
}

/// The stored shape; only ever built right before it is written to the
/// secret store, so the plain strings never outlive that call.
#[derive(Serialize, Deserialize)]
struct Stored {
    issuer: String,
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

/// Endpoints found by discovery.
#[derive(Clone, Debug)]
struct Endpoints {
    issuer: String,
    authorization: Url,
    token: Url,
    registration: Option<Url>,
    iss_parameter: bool,
}

/// How a token-endpoint call failed.
enum TokenFailure {
    /// OAuth error code from a 4xx answer (`invalid_grant`, `invalid_client`, …).
    Refused(String, String),
    /// Anything else (unreachable, 5xx, garbage): do not involve the person.
    Other(AuthError),
}

/// Settings of one bridge's OAuth client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The MCP endpoint (the protected resource).
    pub resource: Url,
    /// `client_name` at registration; also part of the storage key.
    pub client_name: String,
    /// Preferred loopback callback port.
    pub callback_port: u16,
    /// How long to wait for the person in the browser.
    pub auth_timeout: Duration,
    /// The cross-process lock file for this resource.
    pub lock_path: PathBuf,
}

/// The OAuth client. Cheap to share behind an `Arc`.
pub struct OAuthClient {
    settings: ClientSettings,
    http: reqwest::Client,
    store: SecretStore,
    clock: Arc<dyn Clock>,
    key: String,
    current: tokio::sync::Mutex<Credentials>,
    endpoints: tokio::sync::Mutex<Option<Endpoints>>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("resource", &self.settings.resource.as_str())
            .field("client_name", &self.settings.client_name)
            .finish_non_exhaustive()
    }
}

fn fresh(c: &Credentials, now: i64) -> Option<Sensitive<String>> {
    let token = c.access_token.clone()?;
    match c.expires_at {
        Some(at) if at - EXPIRY_MARGIN_SECS <= now => None,
        _ => Some(token),
    }
}

fn pkce_pair() -> (Sensitive<String>, String) {
    let verifier = random_b64(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (Sensitive::new(verifier), challenge)
}

/// The well-known URL for `suffix` under `base`, path-inserted (RFC 8414 §3.1,
/// RFC 9728 §3.1).
fn well_known(base: &Url, suffix: &str) -> Url {
    let mut u = base.clone();
    let path = base.path().trim_end_matches('/');
    u.set_path(&format!("/.well-known/{suffix}{path}"));
    u.set_query(None);
    u.set_fragment(None);
    u
}

/// Pulls `resource_metadata="…"` out of a `WWW-Authenticate` value.
pub fn resource_metadata_hint(www_authenticate: &str) -> Option<String> {
    let at = www_authenticate.find("resource_metadata=")?;
    let rest = &www_authenticate[at + "resource_metadata=".len()..];
    let value = match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split([',', ' ']).next()?,
    };
    Some(value.to_string())
}

fn same_resource(a: &str, b: &Url) -> bool {
    a.trim_end_matches('/') == b.as_str().trim_end_matches('/')
}

impl OAuthClient {
    /// A client for `settings`, keeping credentials in `store`.
    pub fn new(
        settings: ClientSettings,
        store: SecretStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Unreachable(settings.resource.to_string(), e.to_string()))?;
        let key = format!("{}#{}", settings.resource, settings.client_name);
        Ok(Self {
            settings,
            http,
            store,
            clock,
            key,
            current: tokio::sync::Mutex::new(Credentials::default()),
            endpoints: tokio::sync::Mutex::new(None),
        })
    }

    /// A usable access token: the one in hand while it is fresh, else one
    /// renewed (stored by another bridge, refreshed, or authorized anew).
    pub async fn access_token(&self, hint: Option<&str>) -> Result<Sensitive<String>, AuthError> {
        {
            let cur = self.current.lock().await;
            if let Some(t) = fresh(&cur, self.clock.now()) {
                return Ok(t);
            }
        }
        self.renew(None, hint).await
    }

    /// Called after `rejected` got a 401: finds or makes a better token.
    /// `hint` is the `resource_metadata` URL from that 401, if any.
    pub async fn renew(
        &self,
        rejected: Option<&Sensitive<String>>,
        hint: Option<&str>,
    ) -> Result<Sensitive<String>, AuthError> {
        let mut cur = self.current.lock().await;
        let _guard = self.lock_file().await?;
        let stored = self.load().await?;
        let now = self.clock.now();
        // Another bridge (or an earlier caller here) may have renewed already.
        if let Some(t) = fresh(&stored, now) {
            if rejected.is_none_or(|r| r.expose() != t.expose()) {
                *cur = stored;
                return Ok(t);
            }
        }
        let ep = self.endpoints(hint).await?;
        let mut creds = stored;
        if creds.issuer != ep.issuer {
            creds = Credentials::default();
        }
        if let (Some(refresh), false) = (creds.refresh_token.clone(), creds.client_id.is_empty()) {
            match self.refresh(&ep, &creds.client_id, &refresh).await {
                Ok(next) => {
                    creds.set_tokens(next, now);
                    self.save(&creds).await?;
                    let token = creds.access_token.clone();
                    *cur = creds;
                    return token.ok_or_else(|| AuthError::Token("no access token".into()));
                }
                Err(TokenFailure::Refused(code, why)) => {
                    tracing::info!(error = %code, "refresh refused ({why}); authorizing again");
                    if code == "invalid_client" {
                        creds.client_id.clear();
                    }
                    creds.clear_tokens();
                    // Never leave a refresh token that is known dead.
                    self.save(&creds).await?;
                }
                Err(TokenFailure::Other(e)) => return Err(e),
            }
        }
        let creds = self.authorize(&ep, creds).await?;
        self.save(&creds).await?;
        let token = creds.access_token.clone();
        *cur = creds;
        token.ok_or_else(|| AuthError::Token("no access token".into()))
    }

    /// The token in hand, without renewing it (for saying goodbye).
    pub async fn current_token(&self) -> Result<Sensitive<String>, AuthError> {
        self.current
            .lock()
            .await
            .access_token
            .clone()
            .ok_or_else(|| AuthError::Token("no access token".into()))
    }

    /// Forgets this bridge's stored credentials (not the grant on the server).
    pub async fn forget(&self) -> Result<(), AuthError> {
        let _guard = self.lock_file().await?;
        self.store.delete_async(self.key.clone()).await?;
        *self.current.lock().await = Credentials::default();
        Ok(())
    }

    async fn lock_file(&self) -> Result<File, AuthError> {
        let path = self.settings.lock_path.clone();
        let err = {
            let path = path.clone();
            move |e: String| AuthError::Lock(path.clone(), e)
        };
        tokio::task::spawn_blocking(move || -> Result<File, String> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| e.to_string())?;
            f.lock().map_err(|e| e.to_string())?;
            Ok(f)
        })
        .await
        .map_err(|e| err(e.to_string()))?
        .map_err(err)
    }

    async fn load(&self) -> Result<Credentials, AuthError> {
        let Some(raw) = self.store.get_async(self.key.clone()).await? else {
            return Ok(Credentials::default());
        };
        // An unreadable entry is as good as none: the next step rewrites it.
        let Ok(s) = serde_json::from_str::<Stored>(raw.expose()) else {
            tracing::warn!("stored bridge credentials are unreadable; starting over");
            return Ok(Credentials::default());
        };
        Ok(Credentials {
            issuer: s.issuer,
            client_id: s.client_id,
            access_token: s.access_token.map(Sensitive::new),
            refresh_token: s.refresh_token.map(Sensitive::new),
            expires_at: s.expires_at,
        })
    }

    async fn save(&self, c: &Credentials) -> Result<(), AuthError> {
        let stored = Stored {
            issuer: c.issuer.clone(),
            client_id: c.client_id.clone(),
            access_token: c.access_token.as_ref().map(|t| t.expose().clone()),
            refresh_token: c.refresh_token.as_ref().map(|t| t.expose().clone()),
            expires_at: c.expires_at,
        };
        let json = serde_json::to_string(&stored)
            .map_err(|e| AuthError::Token(format!("cannot encode credentials: {e}")))?;
        self.store
            .set_async(self.key.clone(), Sensitive::new(json))
            .await?;
        Ok(())
    }

    async fn get_json(&self, url: &Url) -> Result<Option<Value>, AuthError> {
        let resp = self
            .http
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| self.unreachable(url, &e))?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        Ok(read_json(resp).await.ok())
    }

    fn unreachable(&self, url: &Url, e: &reqwest::Error) -> AuthError {
        let why = if e.is_connect() {
            "connection refused; is Spor Companion running?".to_string()
        } else if e.is_timeout() {
            "timed out".to_string()
        } else {
            "the connection failed".to_string()
        };
        AuthError::Unreachable(origin(url), why)
    }

    async fn endpoints(&self, hint: Option<&str>) -> Result<Endpoints, AuthError> {
        let mut cached = self.endpoints.lock().await;
        if let Some(ep) = cached.as_ref() {
            return Ok(ep.clone());
        }
        let resource = &self.settings.resource;
        let mut candidates = Vec::new();
        if let Some(h) = hint.and_then(|h| Url::parse(h).ok()) {
            // Only a same-origin hint: a hostile server must not point the
            // bridge at someone else's metadata.
            if h.origin() == resource.origin() {
                candidates.push(h);
            }
        }
        candidates.push(well_known(resource, "oauth-protected-resource"));
        let mut root = resource.clone();
        root.set_path("/");
        candidates.push(well_known(&root, "oauth-protected-resource"));
        let mut prm = None;
        for c in &candidates {
            if let Some(v) = self.get_json(c).await? {
                prm = Some(v);
                break;
            }
        }
        let prm = prm.ok_or_else(|| {
            AuthError::Discovery(format!(
                "{resource} does not publish OAuth protected-resource metadata"
            ))
        })?;
        if let Some(r) = prm.get("resource").and_then(Value::as_str) {
            if !same_resource(r, resource) {
                return Err(AuthError::Discovery(format!(
                    "the protected-resource metadata names {r}, not {resource}"
                )));
            }
        }
        let issuer = prm
            .get("authorization_servers")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::Discovery("no authorization server is named".into()))?
            .to_string();
        let issuer_url = Url::parse(&issuer)
            .map_err(|_| AuthError::Discovery(format!("bad issuer {issuer:?}")))?;
        let asm = self
            .get_json(&well_known(&issuer_url, "oauth-authorization-server"))
            .await?
            .ok_or_else(|| {
                AuthError::Discovery(format!(
                    "{issuer} publishes no authorization-server metadata"
                ))
            })?;
        if asm.get("issuer").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(AuthError::Discovery(format!(
                "the authorization-server metadata does not name {issuer} as its issuer"
            )));
        }
        if let Some(methods) = asm
            .get("code_challenge_methods_supported")
            .and_then(Value::as_array)
        {
            if !methods.iter().any(|m| m == "S256") {
                return Err(AuthError::Discovery(format!(
                    "{issuer} does not support PKCE S256"
                )));
            }
        }
        let url_of = |field: &str| -> Result<Option<Url>, AuthError> {
            match asm.get(field).and_then(Value::as_str) {
                None => Ok(None),
                Some(s) => Url::parse(s)
                    .map(Some)
                    .map_err(|_| AuthError::Discovery(format!("bad {field} {s:?}"))),
            }
        };
        let missing = |f: &str| AuthError::Discovery(format!("{issuer} has no {f}"));
        let ep = Endpoints {
            authorization: url_of("authorization_endpoint")?
                .ok_or_else(|| missing("authorization_endpoint"))?,
            token: url_of("token_endpoint")?.ok_or_else(|| missing("token_endpoint"))?,
            registration: url_of("registration_endpoint")?,
            iss_parameter: asm
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            issuer,
        };
        *cached = Some(ep.clone());
        Ok(ep)
    }

    async fn register(&self, ep: &Endpoints, redirect_uri: &str) -> Result<String, AuthError> {
        let reg = ep.registration.clone().ok_or_else(|| {
            AuthError::Registration(
                ep.issuer.clone(),
                "it offers no dynamic registration".into(),
            )
        })?;
        let body = serde_json::json!({
            "client_name": self.settings.client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "software_id": "spor-companion-bridge",
            "software_version": env!("CARGO_PKG_VERSION"),
        });
        let resp = self
            .http
            .post(reg.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| self.unreachable(&reg, &e))?;
        let status = resp.status();
        let json = read_json(resp).await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(AuthError::Registration(
                ep.issuer.clone(),
                oauth_error_text(status, &json),
            ));
        }
        json.get("client_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| AuthError::Registration(ep.issuer.clone(), "no client_id".into()))
    }

    /// Whether the server still knows `client_id`: a refresh with a token
    /// nobody holds answers `invalid_grant` for a known client and
    /// `invalid_client` for an unknown one, without touching any grant.
    async fn client_known(&self, ep: &Endpoints, client_id: &str) -> Result<bool, AuthError> {
        let probe = Sensitive::new(format!("spor_ort_probe{}", random_b64(16)));
        match self.refresh(ep, client_id, &probe).await {
            Err(TokenFailure::Refused(code, _)) => Ok(code != "invalid_client"),
            Err(TokenFailure::Other(e)) => Err(e),
            Ok(_) => Ok(true),
        }
    }

    async fn authorize(
        &self,
        ep: &Endpoints,
        mut creds: Credentials,
    ) -> Result<Credentials, AuthError> {
        let callback = Callback::bind(self.settings.callback_port)
            .await
            .map_err(|e| AuthError::Callback(e.to_string()))?;
        let redirect_uri = callback.redirect_uri();
        if !creds.client_id.is_empty() && !self.client_known(ep, &creds.client_id).await? {
            tracing::info!("the server no longer knows this bridge; registering again");
            creds.client_id.clear();
        }
        if creds.client_id.is_empty() {
            creds.client_id = self.register(ep, &redirect_uri).await?;
            creds.issuer = ep.issuer.clone();
            creds.clear_tokens();
            // Keep the registration even if the person never approves.
            self.save(&creds).await?;
        }
        let (verifier, challenge) = pkce_pair();
        let state = Sensitive::new(random_b64(24));
        let mut url = ep.authorization.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &creds.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state.expose())
            .append_pair("resource", self.settings.resource.as_str());
        // The page is where the person decides; stderr reaches the host's log.
        eprintln!(
            "spor bridge: approve the connection in your browser. If no browser opened, visit:\n{url}"
        );
        if let Err(e) = browser::open(url.as_str()) {
            tracing::warn!("{e}");
        }
        let timeout = self.settings.auth_timeout;
        let outcome = callback
            .wait(state, timeout)
            .await
            .ok_or(AuthError::TimedOut(timeout.as_secs()))?;
        let (code, iss) = match outcome {
            Outcome::Code { code, iss } => (code, iss),
            Outcome::Error { error, description } => {
                return Err(AuthError::Denied(match description {
                    Some(d) => format!("{error}: {d}"),
                    None => error,
                }))
            }
        };
        // RFC 9207: a response from another issuer is a mix-up attack.
        match iss {
            Some(i) if i != ep.issuer => {
                return Err(AuthError::Token(format!(
                    "the answer came from {i}, not {}",
                    ep.issuer
                )))
            }
            None if ep.iss_parameter => {
                return Err(AuthError::Token(
                    "the answer did not say who issued it".into(),
                ))
            }
            _ => {}
        }
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.expose().as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("client_id", creds.client_id.as_str()),
            ("code_verifier", verifier.expose().as_str()),
            ("resource", self.settings.resource.as_str()),
        ];
        match self.token_request(ep, &form).await {
            Ok(t) => {
                creds.set_tokens(t, self.clock.now());
                Ok(creds)
            }
            Err(TokenFailure::Refused(code, why)) => {
                Err(AuthError::Token(format!("{code}: {why}")))
            }
            Err(TokenFailure::Other(e)) => Err(e),
        }
    }

    async fn refresh(
        &self,
        ep: &Endpoints,
        client_id: &str,
        refresh: &Sensitive<String>,
    ) -> Result<TokenResponse, TokenFailure> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose().as_str()),
            ("client_id", client_id),
            ("resource", self.settings.resource.as_str()),
        ];
        self.token_request(ep, &form).await
    }

    async fn token_request(
        &self,
        ep: &Endpoints,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, TokenFailure> {
        let resp = self
            .http
            .post(ep.token.clone())
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| TokenFailure::Other(self.unreachable(&ep.token, &e)))?;
        let status = resp.status();
        let json = read_json(resp).await.unwrap_or(Value::Null);
        if status.is_success() {
            return TokenResponse::parse(&json).map_err(TokenFailure::Other);
        }
        match json.get("error").and_then(Value::as_str) {
            Some(code) if status.is_client_error() => Err(TokenFailure::Refused(
                code.to_string(),
                oauth_error_text(status, &json),
            )),
            _ => Err(TokenFailure::Other(AuthError::Token(oauth_error_text(
                status, &json,
            )))),
        }
    }
}

/// A successful token response.
struct TokenResponse {
    access: Sensitive<String>,
    refresh: Option<Sensitive<String>>,
    expires_in: Option<i64>,
}

impl TokenResponse {
    fn parse(json: &Value) -> Result<Self, AuthError> {
        let access = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::Token("the answer has no access_token".into()))?;
        let bearer = json
            .get("token_type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
        if !bearer {
            return Err(AuthError::Token("the token is not a Bearer token".into()));
        }
        Ok(Self {
            access: Sensitive::new(access.to_string()),
            refresh: json
                .get("refresh_token")
                .and_then(Value::as_str)
                .map(|s| Sensitive::new(s.to_string())),
            expires_in: json.get("expires_in").and_then(Value::as_i64),
        })
    }
}

impl Credentials {
    fn set_tokens(&mut self, t: TokenResponse, now: i64) {
        self.access_token = Some(t.access);
        // A server that does not rotate keeps the old refresh token valid.
        if t.refresh.is_some() {
            self.refresh_token = t.refresh;
        }
        self.expires_at = t.expires_in.map(|s| now.saturating_add(s));
    }

    fn clear_tokens(&mut self) {
        self.access_token = None;
        self.refresh_token = None;
        self.expires_at = None;
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

async fn read_json(resp: reqwest::Response) -> Result<Value, ()> {
    let mut resp = resp;
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| ())? {
        if buf.len() + chunk.len() > MAX_JSON {
            return Err(());
        }
        buf.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&buf).map_err(|_| ())
}

fn oauth_error_text(status: StatusCode, json: &Value) -> String {
    let code = json.get("error").and_then(Value::as_str);
    let desc = json.get("error_description").and_then(Value::as_str);
    match (code, desc) {
        (Some(c), Some(d)) => format!("{c} ({d})"),
        (Some(c), None) => c.to_string(),
        _ => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_are_path_inserted() {
        let r = Url::parse("http://127.0.0.1:7767/mcp").expect("url");
        assert_eq!(
            well_known(&r, "oauth-protected-resource").as_str(),
            "http://127.0.0.1:7767/.well-known/oauth-protected-resource/mcp"
        );
        let i = Url::parse("http://127.0.0.1:7767").expect("url");
        assert_eq!(
            well_known(&i, "oauth-authorization-server").as_str(),
            "http://127.0.0.1:7767/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn resource_metadata_is_read_quoted_or_bare() {
        assert_eq!(
            resource_metadata_hint(
                r#"Bearer error="invalid_token", resource_metadata="http://h/x""#
            )
            .as_deref(),
            Some("http://h/x")
        );
        assert_eq!(
            resource_metadata_hint("Bearer resource_metadata=http://h/y, error=x").as_deref(),
            Some("http://h/y")
        );
        assert_eq!(resource_metadata_hint("Bearer realm=x"), None);
        assert_eq!(
            resource_metadata_hint(r#"Bearer resource_metadata="unterminated"#),
            None
        );
    }

    #[test]
    fn tokens_near_expiry_are_not_fresh() {
        let mut c = Credentials {
            access_token: Some(Sensitive::new("a".into())),
            expires_at: Some(1_000),
            ..Credentials::default()
        };
        assert!(fresh(&c, 900).is_some());
        assert!(fresh(&c, 1_000 - EXPIRY_MARGIN_SECS).is_none());
        c.expires_at = None;
        assert!(
            fresh(&c, i64::MAX).is_some(),
            "no stated expiry: use until refused"
        );
    }
}
