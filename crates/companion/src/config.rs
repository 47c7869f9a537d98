//! What the companion is configured with, and where it comes from: the
//! start-up settings, the bounds on what callers can make it store, the data
//! folder, the app's saved settings and the port to listen on. The daemon,
//! the app and the bridge all resolve their configuration here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The loopback port the companion listens on unless told otherwise: fixed
/// so assistant configurations stay valid across restarts.
pub const DEFAULT_PORT: u16 = 7767;

/// Database file name inside the data dir.
pub const DATABASE_NAME: &str = "companion.db";

/// File name of the app's settings inside the data dir.
pub const SETTINGS_NAME: &str = "settings.json";

/// Who decides consent: the browser page (headless), the terminal (headless
/// on a shared server) or the app's own window. `serve --consent` picks
/// between the first two; the desktop app is always `Native`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsentMode {
    /// The browser page offers Allow and Deny.
    Browser,
    /// Only `spor-companiond consent approve` allows; the page shows the
    /// request and that command, and can only deny.
    Cli,
    /// The desktop app decides; the browser page only waits.
    #[value(skip)]
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
    /// How long an access token keeps working after a refresh replaced it:
    /// long enough for calls already under way, short enough that a leaked
    /// old token is soon worthless (a live token still lives 30 days).
    pub superseded_access_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clients: 1000,
            rejected_pastes_per_minute: 5,
            superseded_access_grace: Duration::from_secs(60),
        }
    }
}

/// Why a configuration value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `SPOR_COMPANION_PORT` is not a port number.
    #[error("SPOR_COMPANION_PORT must be a port number, not {0:?}.")]
    InvalidPort(String),
}

impl ConfigError {
    /// The stable code the window and the bridge report.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPort(_) => "invalid_port",
        }
    }
}

/// The OS data dir for the companion (e.g. `~/.local/share/spor-companion`).
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "spor-companion").map(|d| d.data_dir().to_path_buf())
}

/// Where the app keeps its data: the environment's choice, else the OS's.
pub fn data_dir(env: Option<&str>) -> Option<PathBuf> {
    match env.map(str::trim).filter(|s| !s.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => default_data_dir(),
    }
}

/// Reads the port to use: the environment's choice, else the saved one,
/// else the default.
pub fn configured_port(data_dir: &Path, env: Option<&str>) -> Result<u16, ConfigError> {
    match env.map(str::trim).filter(|s| !s.is_empty()) {
        Some(v) => v
            .parse()
            .map_err(|_| ConfigError::InvalidPort(v.to_string())),
        None => Ok(Settings::load(data_dir).port.unwrap_or(DEFAULT_PORT)),
    }
}

/// The app's saved preferences (`settings.json` in the data dir).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settings {
    /// The port chosen in the app, if the user picked one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl Settings {
    /// Reads the settings; a missing or unreadable file means defaults.
    pub fn load(data_dir: &Path) -> Self {
        match std::fs::read(data_dir.join(SETTINGS_NAME)) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "settings.json is malformed; using defaults");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Writes the settings atomically (temp file, then rename).
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let path = data_dir.join(SETTINGS_NAME);
        let tmp = data_dir.join(format!("{SETTINGS_NAME}.tmp"));
        let body = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, &path)
    }
}
