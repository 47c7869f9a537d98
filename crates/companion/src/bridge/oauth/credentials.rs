//! What the bridge keeps per (server, host) — its registration and tokens —
//! and where: in the secret store, read and written under a cross-process
//! lock file (`0600` in a `0700` folder), so several bridges share one
//! registration and one token pair.

use std::fs::File;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::token::TokenResponse;
use crate::secrets::owner_only;
use crate::secrets::SecretStore;
use crate::sensitive::Sensitive;

/// Renew this long before the access token's stated expiry.
const EXPIRY_MARGIN_SECS: i64 = 60;

/// What the bridge keeps per (server, host): its registration and tokens.
#[derive(Clone, Default)]
pub(super) struct Credentials {
    pub(super) issuer: String,
    pub(super) client_id: String,
    pub(super) access_token: Option<Sensitive<String>>,
    pub(super) refresh_token: Option<Sensitive<String>>,
    pub(super) expires_at: Option<i64>,
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

/// The access token, unless it is missing or about to expire at `now`.
pub(super) fn fresh(c: &Credentials, now: i64) -> Option<Sensitive<String>> {
    let token = c.access_token.clone()?;
    match c.expires_at {
        Some(at) if at - EXPIRY_MARGIN_SECS <= now => None,
        _ => Some(token),
    }
}

impl Credentials {
    /// Takes the tokens of a successful answer received at `now`.
    pub(super) fn set_tokens(&mut self, t: TokenResponse, now: i64) {
        self.access_token = Some(t.access);
        // A server that does not rotate keeps the old refresh token valid.
        if t.refresh.is_some() {
            self.refresh_token = t.refresh;
        }
        self.expires_at = t.expires_in.map(|s| now.saturating_add(s));
    }

    /// Drops both tokens, keeping the registration.
    pub(super) fn clear_tokens(&mut self) {
        self.access_token = None;
        self.refresh_token = None;
        self.expires_at = None;
    }
}

/// One bridge's entry in the secret store, and the lock file that guards it.
pub(super) struct CredentialStore {
    store: SecretStore,
    key: String,
    lock_path: PathBuf,
}

impl CredentialStore {
    /// The entry `key` in `store`, locked through `lock_path`.
    pub(super) fn new(store: SecretStore, key: String, lock_path: PathBuf) -> Self {
        Self {
            store,
            key,
            lock_path,
        }
    }

    /// Takes the exclusive cross-process lock; it is held until the file is
    /// dropped. The file and its folder are our user's alone, so only our
    /// own bridges can make this wait.
    pub(super) async fn lock(&self) -> Result<File, AuthError> {
        let path = self.lock_path.clone();
        let failed = {
            let path = path.clone();
            move |e: String| AuthError::Lock(path.clone(), e)
        };
        tokio::task::spawn_blocking(move || -> Result<File, AuthError> {
            let f = owner_only::lock_file(&path)?;
            f.lock()
                .map_err(|e| AuthError::Lock(path.clone(), e.to_string()))?;
            Ok(f)
        })
        .await
        .map_err(|e| failed(e.to_string()))?
    }

    /// The stored credentials, or empty ones when there are none.
    pub(super) async fn load(&self) -> Result<Credentials, AuthError> {
        let Some(raw) = self.store.get(self.key.clone()).await? else {
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

    /// Replaces the stored credentials with `c`.
    pub(super) async fn save(&self, c: &Credentials) -> Result<(), AuthError> {
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
            .set(self.key.clone(), Sensitive::new(json))
            .await?;
        Ok(())
    }

    /// Removes the entry.
    pub(super) async fn delete(&self) -> Result<(), AuthError> {
        self.store.delete(self.key.clone()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
