//! Opening the core at launch: data dir, database, keychain, port. A failure
//! is kept as a sentence for the window instead of ending the app silently.

use spor_companion::config::{Config, ConsentMode};
use spor_companion::desktop::{self, Server};
use spor_companion::secrets::{SecretError, SecretStoreKind};
use spor_companion::state::{AppState, OpenError};

/// Passed by autostart: start in the tray without showing the window.
pub const HIDDEN_ARG: &str = "--hidden";

/// The opened core.
pub struct Core {
    /// Shared state.
    pub state: AppState,
    /// The embedded server.
    pub server: Server,
    /// The port to start on.
    pub port: u16,
}

/// The core, or why it could not be opened.
pub enum Boot {
    /// Ready to serve.
    Ready(Box<Core>),
    /// Could not open; the window explains.
    Failed(String),
}

impl Boot {
    /// Opens the core from the environment (`SPOR_COMPANION_DATA_DIR`,
    /// `SPOR_COMPANION_PORT`, `SPOR_COMPANION_SERVER`) and the OS keychain.
    pub fn open() -> Self {
        match Self::try_open() {
            Ok(core) => Self::Ready(Box::new(core)),
            Err(message) => {
                tracing::error!("{message}");
                Self::Failed(message)
            }
        }
    }

    fn try_open() -> Result<Core, String> {
        let env = |k: &str| std::env::var(k).ok();
        let data_dir = desktop::data_dir(env("SPOR_COMPANION_DATA_DIR").as_deref()).ok_or(
            "Spor Companion cannot find a folder for its data. Set SPOR_COMPANION_DATA_DIR.",
        )?;
        let default_server = match env("SPOR_COMPANION_SERVER").filter(|s| !s.is_empty()) {
            Some(s) => Some(
                spor_companion::upstream::normalize_server_url(&s)
                    .map_err(|e| format!("SPOR_COMPANION_SERVER: {e}"))?,
            ),
            None => None,
        };
        let port = desktop::configured_port(&data_dir, env("SPOR_COMPANION_PORT").as_deref())
            .map_err(|e| e.message)?;
        let config = Config {
            data_dir,
            default_server,
            consent_mode: ConsentMode::Native,
        };
        let state = AppState::open(config, SecretStoreKind::Keychain).map_err(|e| match e {
            // The daemon's advice (a file store) is not for the app: the app
            // keeps tokens in the keychain only.
            OpenError::Secrets(
                SecretError::KeychainUnavailable(why) | SecretError::KeychainLocked(why),
            ) => format!(
                "Spor Companion keeps your tokens in the system keychain, and none is available ({why}). \
                 Unlock or start your keyring (GNOME Keyring, KWallet), then start Spor Companion again. \
                 On a machine without a keychain, use the headless spor-companiond instead."
            ),
            other => format!("Spor Companion could not open its data: {other}."),
        })?;
        let server = Server::new(state.clone(), port);
        Ok(Core {
            state,
            server,
            port,
        })
    }

    /// The core, if it opened.
    pub fn core(&self) -> Option<&Core> {
        match self {
            Self::Ready(c) => Some(c),
            Self::Failed(_) => None,
        }
    }
}
