//! [`SecretStore`], the shareable handle the rest of the core holds: it
//! opens the configured backend and runs its blocking calls off the async
//! runtime.

use std::path::Path;
use std::sync::Arc;

use super::backend::{SecretBackend, SecretError, SecretStoreKind, Vault};
use super::file::FileStore;
use super::keychain::KeychainStore;
use crate::sensitive::Sensitive;

/// A shareable handle on the configured backend.
#[derive(Clone)]
pub struct SecretStore(Arc<dyn SecretBackend>);

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretStore({})", self.0.describe())
    }
}

impl SecretStore {
    /// Wraps a backend.
    pub fn new(backend: impl SecretBackend) -> Self {
        Self(Arc::new(backend))
    }

    /// Opens the store of the given kind; the keychain is probed so an
    /// unavailable one is reported now rather than at first use.
    pub fn open(kind: SecretStoreKind, data_dir: &Path) -> Result<Self, SecretError> {
        Self::open_vault(Vault::Pats, kind, data_dir)
    }

    /// Like [`SecretStore::open`], for the given vault.
    pub fn open_vault(
        vault: Vault,
        kind: SecretStoreKind,
        data_dir: &Path,
    ) -> Result<Self, SecretError> {
        match kind {
            SecretStoreKind::Keychain => Ok(Self::new(KeychainStore::probe(vault)?)),
            SecretStoreKind::File => {
                Ok(Self::new(FileStore::new(data_dir.join(vault.file_name()))))
            }
        }
    }

    /// Which store this is, for the user.
    pub fn describe(&self) -> String {
        self.0.describe()
    }

    /// Blocking read (off the async runtime only: CLI set-up, tests).
    pub fn get_blocking(&self, account: &str) -> Result<Option<Sensitive<String>>, SecretError> {
        self.0.get(account)
    }

    /// Blocking write (off the async runtime only).
    pub fn set_blocking(
        &self,
        account: &str,
        secret: &Sensitive<String>,
    ) -> Result<(), SecretError> {
        self.0.set(account, secret)
    }

    /// Blocking delete (off the async runtime only).
    pub fn delete_blocking(&self, account: &str) -> Result<(), SecretError> {
        self.0.delete(account)
    }

    /// Reads, on the blocking pool (as `Store::call` does).
    pub async fn get(&self, account: String) -> Result<Option<Sensitive<String>>, SecretError> {
        let b = self.0.clone();
        tokio::task::spawn_blocking(move || b.get(&account))
            .await
            .map_err(|_| SecretError::Join)?
    }

    /// Writes, on the blocking pool.
    pub async fn set(&self, account: String, secret: Sensitive<String>) -> Result<(), SecretError> {
        let b = self.0.clone();
        tokio::task::spawn_blocking(move || b.set(&account, &secret))
            .await
            .map_err(|_| SecretError::Join)?
    }

    /// Deletes, on the blocking pool.
    pub async fn delete(&self, account: String) -> Result<(), SecretError> {
        let b = self.0.clone();
        tokio::task::spawn_blocking(move || b.delete(&account))
            .await
            .map_err(|_| SecretError::Join)?
    }
}
