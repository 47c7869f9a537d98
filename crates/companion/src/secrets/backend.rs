//! What every secret store shares: the [`SecretBackend`] trait, its
//! [`SecretError`], which vault a store holds and where each vault lives.
//! The backends beside this file implement it; none of them knows another.

use std::path::PathBuf;

use crate::sensitive::Sensitive;

/// Keychain service name under which every account's PAT is stored.
pub const KEYCHAIN_SERVICE: &str = "spor-companion";
/// File name of the file store inside the data dir.
pub const FILE_STORE_NAME: &str = "secrets.json";
/// Keychain service of the stdio bridge's own OAuth credentials.
pub const BRIDGE_KEYCHAIN_SERVICE: &str = "spor-companion-bridge";
/// File name of the bridge's file store inside the data dir.
pub const BRIDGE_FILE_STORE_NAME: &str = "bridge-secrets.json";

/// Whose secrets a store holds: the companion's PATs, or the bridge's tokens
/// as a client of the companion. Kept apart so neither can read or clobber
/// the other's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vault {
    /// Personal access tokens, one per account.
    Pats,
    /// The bridge's client registration and tokens, one per server and host.
    Bridge,
}

impl Vault {
    /// The keychain service this vault's entries live under.
    pub(super) fn keychain_service(self) -> &'static str {
        match self {
            Self::Pats => KEYCHAIN_SERVICE,
            Self::Bridge => BRIDGE_KEYCHAIN_SERVICE,
        }
    }

    /// The file store's name inside the data dir.
    pub(super) fn file_name(self) -> &'static str {
        match self {
            Self::Pats => FILE_STORE_NAME,
            Self::Bridge => BRIDGE_FILE_STORE_NAME,
        }
    }
}

/// Which secret store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretStoreKind {
    /// The OS keychain (Secret Service, macOS Keychain, Windows Credential Manager).
    Keychain,
    /// A `0600` JSON file in the data dir.
    File,
}

impl SecretStoreKind {
    /// The name users type and see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keychain => "keychain",
            Self::File => "file",
        }
    }
}

/// Errors from a secret store. Never carries the secret itself.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The keychain cannot be reached at all.
    #[error("the OS keychain is not available ({0}). On a machine without a desktop keychain, choose the file store explicitly: --secret-store file (or SPOR_COMPANION_SECRET_STORE=file)")]
    KeychainUnavailable(String),
    /// The keychain is there but refused access (locked?).
    #[error("the OS keychain refused access ({0}); unlock it and try again")]
    KeychainLocked(String),
    /// Any other keychain failure.
    #[error("keychain error: {0}")]
    Keychain(String),
    /// The file store could not be read or written.
    #[error("secret file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A blocking task failed.
    #[error("secret store task failed")]
    Join,
}

/// A place to keep one secret per account id. Calls block: run them off the
/// async runtime (see
/// [`SecretStore::get`](crate::secrets::SecretStore::get)).
pub trait SecretBackend: Send + Sync + 'static {
    /// Reads the secret for `account`, `None` if there is none.
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>, SecretError>;
    /// Creates or replaces the secret for `account`.
    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<(), SecretError>;
    /// Deletes the secret for `account`; absent is not an error.
    fn delete(&self, account: &str) -> Result<(), SecretError>;
    /// Human description, e.g. "OS keychain (Secret Service)".
    fn describe(&self) -> String;
}
