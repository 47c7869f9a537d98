//! Where PATs live: the OS keychain (default) or, chosen explicitly for
//! headless machines, a `0600` JSON file in the data dir. Never a silent
//! fallback from one to the other.
//!
//! `backend` holds what the stores share, `handle` the [`SecretStore`] the
//! rest of the core holds, and `keychain`, `file` and `memory` one backend
//! each. [`owner_only`] makes the folders and files that hold secrets (and
//! the locks beside them) the owner's alone; the bridge uses it too.

mod backend;
mod file;
mod handle;
mod keychain;
mod memory;
pub mod owner_only;

pub use backend::{
    SecretBackend, SecretError, SecretStoreKind, Vault, BRIDGE_FILE_STORE_NAME,
    BRIDGE_KEYCHAIN_SERVICE, FILE_STORE_NAME, KEYCHAIN_SERVICE,
};
pub use file::FileStore;
pub use handle::SecretStore;
pub use keychain::{KeychainStore, DEFAULT_KEYCHAIN_TIMEOUT, KEYCHAIN_TIMEOUT_ENV};
pub use memory::MemoryStore;
