//! The window's "Connect an assistant" list: whether each host is connected
//! to this server, and adding or removing our entry in its configuration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{sentence, DesktopError};
use super::server::{server_url, ServerStatus};
use crate::connect::{
    self, Bridge, Change, ClaudeCli, ConnectError, Host, Places, Plan, State as ConnectState, Via,
};

/// The `claude mcp add` line for an MCP URL.
pub fn claude_command(mcp_url: &str) -> String {
    crate::connect::claude_code::add_command(mcp_url)
}

/// What the app needs to connect assistants: this user's config folders,
/// Claude Code's `claude` (if installed), the app's own binary, which
/// Claude Desktop runs as the bridge (`<app> bridge URL`), and the folder
/// the Claude Desktop extension is saved in.
#[derive(Debug, Clone)]
pub struct Connector {
    /// Where the hosts' config files are (`None`: no home folder).
    pub places: Option<Places>,
    /// `claude` on PATH.
    pub claude: Option<ClaudeCli>,
    /// The program Claude Desktop starts.
    pub bridge: PathBuf,
    /// Where "Download extension" saves (`None`: no home folder).
    pub downloads: Option<PathBuf>,
}

impl Connector {
    /// From the environment (HOME, the config folder, PATH, the user's
    /// Downloads folder, else `~/Downloads`).
    pub fn from_env(bridge: PathBuf) -> Self {
        let downloads = directories::UserDirs::new().map(|u| {
            u.download_dir()
                .map(PathBuf::from)
                .unwrap_or_else(|| u.home_dir().join("Downloads"))
        });
        Self {
            places: Places::from_env(),
            claude: ClaudeCli::find(std::env::var_os("PATH").as_deref()),
            bridge,
            downloads,
        }
    }

    fn plan(&self, host: Host, server: &ServerStatus) -> Plan {
        Plan {
            host,
            url: server_url(server),
            via: Via::Bridge,
            bridge: Bridge {
                program: self.bridge.clone(),
                args: Vec::new(),
            },
            config: None,
        }
    }

    fn places(&self) -> Result<&Places, DesktopError> {
        self.places
            .as_ref()
            .ok_or_else(|| ConnectError::NoHome.into())
    }
}

/// One assistant in the window's "Connect an assistant" list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HostView {
    /// `claude-desktop`, `claude-code`, `vscode`, `cursor`.
    pub host: Host,
    /// Product name.
    pub name: &'static str,
    /// Whether it is connected, as far as can be told.
    pub state: HostState,
    /// The config file (hosts configured by a file).
    pub file: Option<String>,
    /// The command to run by hand (Claude Code).
    pub command: Option<String>,
    /// Why the state is `error` or `unavailable`.
    pub message: Option<String>,
}

/// A host's row state as the window shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Our entry is there, exactly as we would write it.
    Connected,
    /// No `spor` entry.
    NotConnected,
    /// A `spor` entry for another address or program.
    Outdated,
    /// Claude Code is not installed.
    Unavailable,
    /// The configuration could not be read.
    Error,
}

impl HostState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NotConnected => "not-connected",
            Self::Outdated => "outdated",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }
}

impl From<ConnectState> for HostState {
    fn from(s: ConnectState) -> Self {
        match s {
            ConnectState::Connected => Self::Connected,
            ConnectState::NotConnected => Self::NotConnected,
            ConnectState::Outdated => Self::Outdated,
        }
    }
}

/// Serialized as its wire name ([`HostState::as_str`], the one spelling).
impl Serialize for HostState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Compares with a wire name, so `state == "connected"` reads as it says.
impl PartialEq<&str> for HostState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Every host we can connect, with whether it is connected to this server.
pub async fn connect_hosts(connector: &Connector, server: &ServerStatus) -> Vec<HostView> {
    let views = Host::ALL.map(|host| host_view(connector, host, server));
    futures_util::future::join_all(views).await
}

async fn host_view(connector: &Connector, host: Host, server: &ServerStatus) -> HostView {
    let plan = connector.plan(host, server);
    let mut view = HostView {
        host,
        name: host.name(),
        state: HostState::NotConnected,
        file: None,
        command: (host == Host::ClaudeCode).then(|| plan.claude_command()),
        message: None,
    };
    let Some(places) = connector.places.as_ref() else {
        view.state = HostState::Error;
        view.message = Some(sentence(&ConnectError::NoHome.to_string()));
        return view;
    };
    view.file = plan.config_file(places).map(|p| p.display().to_string());
    if host == Host::ClaudeCode && connector.claude.is_none() {
        view.state = HostState::Unavailable;
        view.message =
            Some("The claude command was not found. Run this in a terminal instead:".into());
        return view;
    }
    match connect::state(&plan, places, connector.claude.as_ref()).await {
        Ok(state) => view.state = state.into(),
        Err(e) => {
            view.state = HostState::Error;
            view.message = Some(sentence(&e.to_string()));
        }
    }
    view
}

/// What the window asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectAction {
    /// Add (or update) our entry.
    Write,
    /// Remove it.
    Remove,
}

/// The result of a connect button.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedView {
    /// The host, as it is now.
    pub view: HostView,
    /// What happened, for the person ("Added spor to … (backup at …).").
    pub message: String,
    /// What changed (`added`, `updated`, `already-connected`, `removed`, `nothing-to-remove`).
    pub change: Change,
}

/// Connects or disconnects one host's configuration.
pub async fn connect_host(
    connector: &Connector,
    server: &ServerStatus,
    host: Host,
    action: ConnectAction,
) -> Result<ConnectedView, DesktopError> {
    let plan = connector.plan(host, server);
    let places = connector.places()?;
    let claude = connector.claude.as_ref();
    let outcome = match action {
        ConnectAction::Write => connect::write(&plan, places, claude).await?,
        ConnectAction::Remove => connect::remove(&plan, places, claude).await?,
    };
    // Only real changes are logged; pressing a button twice is not news.
    if outcome.change != Change::AlreadyConnected && outcome.change != Change::NothingToRemove {
        tracing::info!(host = host.id(), change = ?outcome.change, "assistant configuration changed");
    }
    Ok(ConnectedView {
        view: host_view(connector, host, server).await,
        message: sentence(&outcome.to_string()),
        change: outcome.change,
    })
}

/// Where "Download extension" saved the Claude Desktop extension.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionSaved {
    /// The `.mcpb` file.
    pub file: String,
    /// What to do with it, for the person.
    pub message: String,
}

/// Saves the Claude Desktop extension (`spor-companion.mcpb`, running this
/// app as the bridge to this server) in the Downloads folder, replacing an
/// earlier one. The app has no save dialog, so the message says where it is.
pub async fn save_extension(
    connector: &Connector,
    server: &ServerStatus,
) -> Result<ExtensionSaved, DesktopError> {
    let folder = connector.downloads.clone().ok_or(ConnectError::NoHome)?;
    let plan = connector.plan(Host::ClaudeDesktop, server);
    let file = folder.join(crate::connect::mcpb::FILE_NAME);
    let dir = folder.clone();
    let made = tokio::task::spawn_blocking(move || std::fs::create_dir_all(&dir))
        .await
        .map_err(|e| ConnectError::Internal(e.to_string()))?;
    made.map_err(|error| ConnectError::Write {
        path: folder,
        error,
    })?;
    connect::write_extension(&plan, &file).await?;
    tracing::info!(file = %file.display(), "Claude Desktop extension saved");
    let shown = file.display().to_string();
    Ok(ExtensionSaved {
        message: format!("Saved {shown}. Open it with Claude Desktop to install Spor Companion."),
        file: shown,
    })
}
