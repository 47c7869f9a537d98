//! What the gateway remembers between calls so the hot path skips the
//! database and the keychain: what a valid access token resolved to, and
//! the accounts' PATs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::clock::Timestamp;
use crate::secrets::SecretStore;
use crate::sensitive::Sensitive;
use crate::store::{Account, Mark};
use crate::tokens;

/// Access tokens cached at most; a full cache is emptied and refilled.
const MAX_CACHED_ACCESS: usize = 4096;

/// What a valid access token resolved to, and when that was read.
#[derive(Clone)]
pub(crate) struct CachedAccess {
    pub(crate) grant_id: String,
    pub(crate) access: crate::access::Access,
    pub(crate) account: Account,
    /// Its expiry, or the end of its grace once a refresh replaced it.
    pub(crate) usable_until: Timestamp,
    pub(crate) mark: Mark,
}

/// Access-token hash → what it resolved to. An entry is used only while
/// the database is unchanged since it was read ([`Mark`]), so a revocation
/// takes effect on the very next request; it saves the token and account
/// queries (and their joins) on every call.
#[derive(Clone, Default)]
pub struct AccessCache(Arc<Mutex<HashMap<String, CachedAccess>>>);

impl std::fmt::Debug for AccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessCache")
    }
}

impl AccessCache {
    pub(crate) fn get(&self, hash: &str) -> Option<CachedAccess> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()
    }

    pub(crate) fn insert(&self, hash: String, entry: CachedAccess) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Marks only move forward: an entry read at an older mark can never
        // be used again. Keeping only the entries read at this one's mark
        // drops those now instead of when the cache fills (every connect and
        // revoke moves the mark, so a busy companion would carry thousands);
        // a racing insert with an older mark costs the newer a re-read.
        map.retain(|_, e| e.mark == entry.mark);
        if map.len() >= MAX_CACHED_ACCESS {
            map.clear();
        }
        map.insert(hash, entry);
    }

    pub(crate) fn remove(&self, hash: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }
}

/// Upstream MCP URLs kept parsed at most; a full cache is emptied.
const MAX_CACHED_URLS: usize = 64;

/// Accounts' MCP URLs, parsed once: parsing one on every forwarded call
/// was a measurable share of the gateway's CPU.
#[derive(Clone, Default, Debug)]
pub struct UrlCache(Arc<Mutex<HashMap<String, reqwest::Url>>>);

impl UrlCache {
    /// `url` parsed, or why it cannot be.
    pub(crate) fn parsed(&self, url: &str) -> Result<reqwest::Url, url::ParseError> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = map.get(url) {
            return Ok(u.clone());
        }
        let parsed = reqwest::Url::parse(url)?;
        if map.len() >= MAX_CACHED_URLS {
            map.clear();
        }
        map.insert(url.to_string(), parsed.clone());
        Ok(parsed)
    }
}

/// The PAT hash it was read for, and the PAT.
type CachedPat = (String, Sensitive<String>);

/// PATs read from the secret store, keyed by account and checked against the
/// account's current PAT hash so a replaced token is never used.
#[derive(Clone, Default)]
pub struct PatCache(Arc<Mutex<HashMap<String, CachedPat>>>);

impl std::fmt::Debug for PatCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PatCache")
    }
}

impl PatCache {
    fn cached(&self, account: &Account) -> Option<Sensitive<String>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&account.id)
            .filter(|(h, _)| *h == account.pat_hash)
            .map(|(_, p)| p.clone())
    }

    /// The account's PAT, from memory or the secret store.
    pub async fn get(&self, secrets: &SecretStore, account: &Account) -> Option<Sensitive<String>> {
        if let Some(p) = self.cached(account) {
            return Some(p);
        }
        let pat = match secrets.get(account.id.clone()).await {
            Ok(Some(p)) if tokens::hash(p.expose()) == account.pat_hash => p,
            Ok(_) => return None,
            Err(e) => {
                tracing::error!(account = %account.id, error = %e, "cannot read the account's token");
                return None;
            }
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account.id.clone(), (account.pat_hash.clone(), pat.clone()));
        Some(pat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccountKind, AccountStatus, Store, StoreError};

    fn entry(mark: Mark) -> CachedAccess {
        CachedAccess {
            grant_id: "g_1".into(),
            access: crate::access::Access::Full,
            account: Account {
                id: "a_1".into(),
                kind: AccountKind::Spor,
                server: "https://api.spor.example".into(),
                mcp_url: "https://api.spor.example/mcp".into(),
                org: "acme".into(),
                person: None,
                name: None,
                email: None,
                bound: false,
                is_admin: false,
                status: AccountStatus::Valid,
                rejected_reason: None,
                created_at: 0,
                updated_at: 0,
                pat_hash: "h".into(),
            },
            usable_until: 1,
            mark,
        }
    }

    #[tokio::test]
    async fn storing_an_entry_drops_those_read_at_an_older_mark() {
        let store = Store::open_in_memory().expect("store");
        let old = store.mark().await.expect("mark");
        store
            .call(|c| {
                c.execute("INSERT INTO audit (at, event) VALUES (0, 'x')", [])
                    .map_err(StoreError::from)
            })
            .await
            .expect("write");
        let new = store.mark().await.expect("mark");
        assert_ne!(old, new);

        let cache = AccessCache::default();
        cache.insert("t1".into(), entry(old));
        cache.insert("t2".into(), entry(old));
        assert!(cache.get("t1").is_some() && cache.get("t2").is_some());
        cache.insert("t3".into(), entry(new));
        assert!(cache.get("t1").is_none() && cache.get("t2").is_none());
        assert!(cache.get("t3").is_some());
    }
}
