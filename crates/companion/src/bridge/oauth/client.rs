//! The OAuth client the relay asks for tokens: it hands out the token in
//! hand while it is fresh, and otherwise renews it single-flight — one
//! caller at a time in this process, one bridge at a time across processes —
//! by taking what another bridge stored, refreshing, or authorizing anew.

use std::sync::Arc;

use super::authorize::authorize;
use super::credentials::{fresh, CredentialStore, Credentials};
use super::discovery::{discover, Endpoints};
use super::error::AuthError;
use super::http;
use super::settings::ClientSettings;
use super::token::{self, TokenFailure};
use crate::clock::Clock;
use crate::secrets::SecretStore;
use crate::sensitive::Sensitive;

/// The OAuth client. Cheap to share behind an `Arc`.
pub struct OAuthClient {
    settings: ClientSettings,
    http: reqwest::Client,
    vault: CredentialStore,
    clock: Arc<dyn Clock>,
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

impl OAuthClient {
    /// A client for `settings`, keeping credentials in `store`.
    pub fn new(
        settings: ClientSettings,
        store: SecretStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let http = http::client(&settings.resource)?;
        let key = format!("{}#{}", settings.resource, settings.client_name);
        let vault = CredentialStore::new(store, key, settings.lock_path.clone());
        Ok(Self {
            settings,
            http,
            vault,
            clock,
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
        let _guard = self.vault.lock().await?;
        let stored = self.vault.load().await?;
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
            let resource = &self.settings.resource;
            match token::refresh(&self.http, &ep, resource, &creds.client_id, &refresh).await {
                Ok(next) => {
                    creds.set_tokens(next, now);
                    self.vault.save(&creds).await?;
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
                    self.vault.save(&creds).await?;
                }
                Err(TokenFailure::Other(e)) => return Err(e),
            }
        }
        let creds = authorize(
            &self.http,
            &self.settings,
            &self.vault,
            self.clock.as_ref(),
            &ep,
            creds,
        )
        .await?;
        self.vault.save(&creds).await?;
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
        let _guard = self.vault.lock().await?;
        self.vault.delete().await?;
        *self.current.lock().await = Credentials::default();
        Ok(())
    }

    /// The discovered endpoints, found once and kept; the lock makes
    /// concurrent first callers wait for one discovery.
    async fn endpoints(&self, hint: Option<&str>) -> Result<Endpoints, AuthError> {
        let mut cached = self.endpoints.lock().await;
        if let Some(ep) = cached.as_ref() {
            return Ok(ep.clone());
        }
        let ep = discover(&self.http, &self.settings.resource, hint).await?;
        *cached = Some(ep.clone());
        Ok(ep)
    }
}
