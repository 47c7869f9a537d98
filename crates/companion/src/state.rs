//! The one state every handler, command and test shares: a bundle of leaf
//! parts (each in its own module, none of which knows `AppState`). The
//! service functions that act on it live with their concern and take it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::client_documents::ClientDocuments;
use crate::clock::{Clock, Timestamp};
use crate::config::{Config, Limits, DATABASE_NAME};
use crate::consent::pending::Consent;
use crate::events::Events;
use crate::gateway::state::Gateway;
use crate::paste_limit::PasteLimiter;
use crate::secrets::SecretStore;
use crate::store::Store;
use crate::upstream::Upstream;

/// Shared application state; clone freely.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Where PATs are kept.
    pub secrets: SecretStore,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// The upstream REST client.
    pub upstream: Upstream,
    /// Start-up settings.
    pub config: Arc<Config>,
    /// Pending authorization requests.
    pub consent: Consent,
    /// Events for UIs.
    pub events: Events,
    /// `/mcp` forwarding: PAT cache, pooled client, sessions, live streams.
    pub gateway: Gateway,
    /// Bounds on registrations and token pastes.
    pub limits: Limits,
    /// Recent rejected PAT pastes (for the paste limit).
    pub pastes: PasteLimiter,
    /// Client ID Metadata Documents, fetched and kept.
    pub client_documents: ClientDocuments,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Assembles the state.
    pub fn new(store: Store, secrets: SecretStore, clock: Arc<dyn Clock>, config: Config) -> Self {
        let events = Events::default();
        Self {
            store,
            secrets,
            clock,
            upstream: Upstream::new(),
            config: Arc::new(config),
            consent: Consent::new(events.clone()),
            events,
            gateway: Gateway::default(),
            limits: Limits::default(),
            pastes: PasteLimiter::default(),
            client_documents: ClientDocuments::new(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// Why the state could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No data dir given and the OS has none.
    #[error("cannot determine a data directory; pass --data-dir")]
    NoDataDir,
    /// The data dir could not be created or secured.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed to open or migrate.
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The secret store is unusable.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretError),
}

impl AppState {
    /// Creates the data dir (owner-only), opens the database and the chosen
    /// secret store, and assembles the state with the system clock.
    pub fn open(
        config: Config,
        secrets: crate::secrets::SecretStoreKind,
    ) -> Result<Self, OpenError> {
        let dir = &config.data_dir;
        let io = |source| OpenError::DataDir {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let store = Store::open(&dir.join(DATABASE_NAME))?;
        let secrets = SecretStore::open(secrets, dir)?;
        Ok(Self::new(
            store,
            secrets,
            Arc::new(crate::clock::SystemClock),
            config,
        ))
    }
}
