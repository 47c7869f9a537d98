//! Secrets kept in memory, for tests: nothing touches the keychain or disk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::backend::{SecretBackend, SecretError};
use crate::sensitive::Sensitive;

/// Secrets in memory; for tests only. Clones share the same entries, so a
/// test can keep a handle and list what was stored.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore(Arc<Mutex<BTreeMap<String, String>>>);

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every stored (account id, secret).
    pub fn entries(&self) -> BTreeMap<String, String> {
        self.map().clone()
    }
}

impl SecretBackend for MemoryStore {
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>, SecretError> {
        Ok(self.map().get(account).cloned().map(Sensitive::new))
    }

    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<(), SecretError> {
        self.map()
            .insert(account.to_string(), secret.expose().clone());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.map().remove(account);
        Ok(())
    }

    fn describe(&self) -> String {
        "in-memory store (tests only)".into()
    }
}
