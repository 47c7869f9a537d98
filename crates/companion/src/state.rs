//! The one state every handler, command and test shares.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::consent::Consent;
use crate::events::Events;
use crate::gateway::Gateway;
use crate::secrets::SecretStore;
use crate::store::Store;
use crate::upstream::Upstream;

/// Who shows consent: the browser page (headless) or the app's own window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentMode {
    /// The browser page offers Allow and Deny.
    Browser,
    /// The desktop app decides; the browser page only waits.
    Native,
}

/// Settings fixed at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database (and the file secret store) live.
    pub data_dir: PathBuf,
    /// The server a first account is added for, if configured.
    pub default_server: Option<String>,
    /// Who decides consent.
    pub consent_mode: ConsentMode,
}

/// Bounds on what callers can make the companion store or do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Registered clients kept at most (unused ones make room for new ones).
    pub max_clients: usize,
    /// Rejected PAT pastes allowed per minute before the form is refused.
    pub rejected_pastes_per_minute: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clients: 1000,
            rejected_pastes_per_minute: 5,
        }
    }
}

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
    /// When recent PAT pastes were rejected (for the paste limit).
    pub rejected_pastes: Arc<std::sync::Mutex<std::collections::VecDeque<Timestamp>>>,
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
            rejected_pastes: Arc::default(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Whether another PAT paste may be tried now: pastes the server
    /// rejected are limited per minute, so the consent page cannot be used
    /// to hammer the upstream with guesses.
    pub fn paste_allowed(&self) -> bool {
        let now = self.now();
        let mut recent = self
            .rejected_pastes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while recent.front().is_some_and(|t| now - *t >= 60) {
            recent.pop_front();
        }
        recent.len() < self.limits.rejected_pastes_per_minute
    }

    /// Notes a paste the server rejected.
    pub fn note_rejected_paste(&self) {
        let now = self.now();
        self.rejected_pastes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(now);
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

/// The OS data dir for the companion (e.g. `~/.local/share/spor-companion`).
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "spor-companion").map(|d| d.data_dir().to_path_buf())
}

/// Database file name inside the data dir.
pub const DATABASE_NAME: &str = "companion.db";

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
