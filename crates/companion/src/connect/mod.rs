//! Adding Spor Companion to an assistant ("host") and taking it out again:
//! Claude Desktop, VS Code and Cursor by editing their JSON config file in
//! place (format-preserving, atomic, one-time backup, idempotent, exactly
//! undoable), Claude Code through its own `claude mcp` command. The entry is
//! always named `spor`. The CLI's `connect` and the app's buttons both call
//! [`write`], [`remove`] and [`state`]. Claude Desktop also takes an
//! extension file ([`mcpb`], written by [`write_extension`]).

pub mod claude_code;
mod error;
mod file;
pub mod mcpb;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use claude_code::ClaudeCli;
pub use error::{ConnectError, ENTRY_NAME};
pub use file::{backup_path, BACKUP_SUFFIX};
// The JSON/JSONC editor is pure, so it lives in spor_wire, where the fuzz
// build can drive it.
use spor_wire::jsonc::{self, Lookup, Syntax, Tree, Upsert};

/// An assistant we know how to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Host {
    /// Anthropic's Claude Code CLI.
    ClaudeCode,
    /// Anthropic's Claude Desktop app.
    ClaudeDesktop,
    /// Visual Studio Code.
    #[serde(rename = "vscode")]
    #[value(name = "vscode")]
    VsCode,
    /// The Cursor editor.
    Cursor,
}

impl Host {
    /// Every host, in the order the app lists them.
    pub const ALL: [Host; 4] = [
        Host::ClaudeDesktop,
        Host::ClaudeCode,
        Host::VsCode,
        Host::Cursor,
    ];

    /// The command-line name (`claude-desktop`).
    pub fn id(self) -> &'static str {
        match self {
            Host::ClaudeCode => "claude-code",
            Host::ClaudeDesktop => "claude-desktop",
            Host::VsCode => "vscode",
            Host::Cursor => "cursor",
        }
    }

    /// The product name (`Claude Desktop`).
    pub fn name(self) -> &'static str {
        match self {
            Host::ClaudeCode => "Claude Code",
            Host::ClaudeDesktop => "Claude Desktop",
            Host::VsCode => "VS Code",
            Host::Cursor => "Cursor",
        }
    }

    /// How its config file is written and which member holds the servers;
    /// `None` for Claude Code, which is configured through its CLI.
    fn file_format(self) -> Option<(Syntax, &'static str)> {
        match self {
            Host::ClaudeCode => None,
            Host::ClaudeDesktop | Host::Cursor => Some((Syntax::Json, "mcpServers")),
            // VS Code reads mcp.json as JSONC (comments, trailing commas).
            Host::VsCode => Some((Syntax::Jsonc, "servers")),
        }
    }
}

/// How Claude Desktop reaches the companion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Our own stdio bridge (`<program> bridge URL`): no Node.js needed.
    #[default]
    Bridge,
    /// `npx -y mcp-remote URL` (needs Node.js).
    McpRemote,
}

/// Where a person's configuration lives: passed in, so tests never touch
/// the real home folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    /// The home folder (`~`).
    pub home: PathBuf,
    /// The per-user application config folder: `~/Library/Application
    /// Support` on macOS, `%APPDATA%` on Windows, `$XDG_CONFIG_HOME` (else
    /// `~/.config`) elsewhere.
    pub config_dir: PathBuf,
}

impl Places {
    /// This user's folders, from the OS and the environment.
    pub fn from_env() -> Option<Self> {
        let dirs = directories::BaseDirs::new()?;
        Some(Self {
            home: dirs.home_dir().to_path_buf(),
            config_dir: dirs.config_dir().to_path_buf(),
        })
    }

    /// The host's user-level config file (`None` for Claude Code).
    pub fn config_path(&self, host: Host) -> Option<PathBuf> {
        match host {
            Host::ClaudeCode => None,
            Host::ClaudeDesktop => Some(
                self.config_dir
                    .join("Claude")
                    .join("claude_desktop_config.json"),
            ),
            Host::VsCode => Some(self.config_dir.join("Code").join("User").join("mcp.json")),
            Host::Cursor => Some(self.home.join(".cursor").join("mcp.json")),
        }
    }
}

/// The program Claude Desktop starts as our bridge, and what follows the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// Absolute path of a binary that understands `bridge URL`.
    pub program: PathBuf,
    /// Extra arguments after the URL (e.g. `--secret-store file`), only
    /// when they differ from the defaults.
    pub args: Vec<String>,
}

/// What to connect, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The assistant.
    pub host: Host,
    /// The companion's MCP URL.
    pub url: String,
    /// Claude Desktop only: bridge or mcp-remote.
    pub via: Via,
    /// Claude Desktop only: our bridge program.
    pub bridge: Bridge,
    /// A config file to edit instead of the host's usual one.
    pub config: Option<PathBuf>,
}

impl Plan {
    /// The value we put under `spor` (`None` for Claude Code).
    pub fn entry(&self) -> Result<Option<Tree>, ConnectError> {
        let s = |v: &str| Tree::Str(v.to_string());
        let list = |v: &[&str]| Tree::List(v.iter().map(|a| a.to_string()).collect());
        let fields = match self.host {
            Host::ClaudeCode => return Ok(None),
            Host::ClaudeDesktop => match self.via {
                Via::Bridge => {
                    let program =
                        self.bridge.program.to_str().ok_or_else(|| {
                            ConnectError::ProgramPath(self.bridge.program.clone())
                        })?;
                    let mut args = vec!["bridge".to_string(), self.url.clone()];
                    args.extend(self.bridge.args.iter().cloned());
                    vec![("command", s(program)), ("args", Tree::List(args))]
                }
                Via::McpRemote => vec![
                    ("command", s("npx")),
                    ("args", list(&["-y", "mcp-remote", &self.url])),
                ],
            },
            Host::VsCode => vec![("type", s("http")), ("url", s(&self.url))],
            Host::Cursor => vec![("url", s(&self.url))],
        };
        Ok(Some(Tree::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )))
    }

    /// The config file this plan edits (`None` for Claude Code).
    pub fn config_file(&self, places: &Places) -> Option<PathBuf> {
        match self.host {
            Host::ClaudeCode => None,
            _ => self
                .config
                .clone()
                .or_else(|| places.config_path(self.host)),
        }
    }

    /// The Claude Code command that adds this plan's URL.
    pub fn claude_command(&self) -> String {
        claude_code::add_command(&self.url)
    }

    /// `"spor": {…}` as it would be added, for showing (2-space indent).
    pub fn snippet(&self) -> Result<Option<String>, ConnectError> {
        Ok(self
            .entry()?
            .map(|entry| jsonc::member_text(ENTRY_NAME, &entry)))
    }

    /// The Claude Desktop extension that runs this plan's bridge.
    pub fn extension(&self) -> Result<mcpb::Extension, ConnectError> {
        if self.host != Host::ClaudeDesktop || self.via != Via::Bridge {
            return Err(ConnectError::NoExtension);
        }
        Ok(mcpb::Extension {
            program: self.bridge.program.clone(),
            url: self.url.clone(),
            args: self.bridge.args.clone(),
            platform: mcpb::Platform::current(),
        })
    }

    /// The member holding the servers in this host's file (`mcpServers`).
    pub fn container(&self) -> Option<&'static str> {
        self.host.file_format().map(|(_, c)| c)
    }
}

/// Whether a host is connected to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Our entry is there, exactly as we would write it.
    Connected,
    /// No `spor` entry.
    NotConnected,
    /// A `spor` entry with something else (another port, another program).
    Outdated,
}

/// What a write or remove did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// The entry was added.
    Added,
    /// An existing `spor` entry was replaced with ours.
    Updated,
    /// Our entry was already there: nothing written.
    AlreadyConnected,
    /// The entry was removed.
    Removed,
    /// There was no entry: nothing written.
    NothingToRemove,
}

/// The result of [`write`] or [`remove`], worded by `Display`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The host.
    pub host: Host,
    /// What happened.
    pub change: Change,
    /// The config file (hosts configured by a file).
    pub file: Option<PathBuf>,
    /// The backup made by this change (only the first change ever makes one).
    pub backup: Option<PathBuf>,
    /// The command that was run (Claude Code).
    pub command: Option<String>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = match (&self.file, &self.command) {
            (Some(file), _) => file.display().to_string(),
            (None, _) => self.host.name().to_string(),
        };
        match self.change {
            Change::Added => write!(f, "added {ENTRY_NAME} to {place}")?,
            Change::Updated => write!(f, "updated {ENTRY_NAME} in {place}")?,
            Change::AlreadyConnected => {
                return write!(
                    f,
                    "already connected: {place} has {ENTRY_NAME} as it should"
                )
            }
            Change::Removed => write!(f, "removed {ENTRY_NAME} from {place}")?,
            Change::NothingToRemove => {
                return write!(f, "nothing to remove: {place} has no {ENTRY_NAME} entry")
            }
        }
        match (&self.backup, &self.command) {
            (Some(b), _) => write!(f, " (backup at {})", b.display()),
            (None, Some(c)) => write!(f, " (ran: {c})"),
            (None, None) => Ok(()),
        }
    }
}

fn file_of(plan: &Plan, places: &Places) -> Result<(PathBuf, Syntax, &'static str), ConnectError> {
    let (syntax, container) = plan.host.file_format().ok_or(ConnectError::NoConfigFile)?;
    let path = plan.config_file(places).ok_or(ConnectError::NoHome)?;
    Ok((path, syntax, container))
}

/// Adds (or updates) our entry in the host's config file. Blocking.
pub fn write_file(plan: &Plan, places: &Places) -> Result<Outcome, ConnectError> {
    let (path, syntax, container) = file_of(plan, places)?;
    let entry = plan.entry()?.ok_or(ConnectError::NoConfigFile)?;
    let real = file::resolve(&path)?;
    let original = file::read(&real)?;
    let src = original.as_deref().unwrap_or("");
    let upsert = jsonc::upsert(src, syntax, container, ENTRY_NAME, &entry)
        .map_err(|e| ConnectError::invalid(&path, e))?;
    let (change, text) = match upsert {
        Upsert::Unchanged => (Change::AlreadyConnected, None),
        Upsert::Inserted(t) => (Change::Added, Some(t)),
        Upsert::Replaced(t) => (Change::Updated, Some(t)),
    };
    let backup = match text {
        Some(text) => file::replace(&real, original.as_deref(), &text)?,
        None => None,
    };
    Ok(Outcome {
        host: plan.host,
        change,
        file: Some(path),
        backup,
        command: None,
    })
}

/// Removes our entry from the host's config file. Blocking.
pub fn remove_file(plan: &Plan, places: &Places) -> Result<Outcome, ConnectError> {
    let (path, syntax, container) = file_of(plan, places)?;
    let real = file::resolve(&path)?;
    let original = file::read(&real)?;
    let removed = match &original {
        Some(src) => jsonc::remove(src, syntax, container, ENTRY_NAME)
            .map_err(|e| ConnectError::invalid(&path, e))?,
        None => None,
    };
    let (change, backup) = match removed {
        Some(text) => (
            Change::Removed,
            file::replace(&real, original.as_deref(), &text)?,
        ),
        None => (Change::NothingToRemove, None),
    };
    Ok(Outcome {
        host: plan.host,
        change,
        file: Some(path),
        backup,
        command: None,
    })
}

/// Whether the host's config file holds our entry. Blocking.
pub fn file_state(plan: &Plan, places: &Places) -> Result<State, ConnectError> {
    let (path, syntax, container) = file_of(plan, places)?;
    let entry = plan.entry()?.ok_or(ConnectError::NoConfigFile)?;
    let Some(src) = file::read(&file::resolve(&path)?)? else {
        return Ok(State::NotConnected);
    };
    let found = jsonc::lookup(&src, syntax, container, ENTRY_NAME, &entry)
        .map_err(|e| ConnectError::invalid(&path, e))?;
    Ok(match found {
        Lookup::Absent => State::NotConnected,
        Lookup::Same => State::Connected,
        Lookup::Different => State::Outdated,
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ConnectError> + Send + 'static,
) -> Result<T, ConnectError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ConnectError::Internal(e.to_string()))?
}

/// Runs a file operation off the async workers (file I/O blocks).
async fn on_file<T: Send + 'static>(
    plan: &Plan,
    places: &Places,
    op: fn(&Plan, &Places) -> Result<T, ConnectError>,
) -> Result<T, ConnectError> {
    let (plan, places) = (plan.clone(), places.clone());
    blocking(move || op(&plan, &places)).await
}

/// What a `claude` command did.
fn claude_outcome(plan: &Plan, change: Change, ran: Option<String>) -> Outcome {
    Outcome {
        host: plan.host,
        change,
        file: None,
        backup: None,
        command: ran,
    }
}

fn claude_or_explain(
    claude: Option<&ClaudeCli>,
    command: String,
) -> Result<&ClaudeCli, ConnectError> {
    claude.ok_or(ConnectError::ClaudeNotFound { command })
}

/// Writes the Claude Desktop extension of `plan` to `path` (replacing a
/// file there). Changes no host configuration.
pub async fn write_extension(plan: &Plan, path: &std::path::Path) -> Result<(), ConnectError> {
    let extension = plan.extension()?;
    let path = path.to_path_buf();
    blocking(move || mcpb::write(&extension, &path)).await
}

/// Connects the host: edits its file, or runs `claude mcp add` (after
/// removing a `spor` entry with another URL). Idempotent.
pub async fn write(
    plan: &Plan,
    places: &Places,
    claude: Option<&ClaudeCli>,
) -> Result<Outcome, ConnectError> {
    if plan.host != Host::ClaudeCode {
        return on_file(plan, places, write_file).await;
    }
    let command = plan.claude_command();
    let claude = claude_or_explain(claude, command.clone())?;
    let change = match claude.registered().await? {
        claude_code::Registered::At(Some(url)) if url == plan.url => Change::AlreadyConnected,
        claude_code::Registered::Absent => {
            claude.add(&plan.url).await?;
            Change::Added
        }
        claude_code::Registered::At(_) => {
            claude.remove().await?;
            claude.add(&plan.url).await?;
            Change::Updated
        }
    };
    let ran = (change != Change::AlreadyConnected).then_some(command);
    Ok(claude_outcome(plan, change, ran))
}

/// Disconnects the host's configuration: removes exactly our entry.
pub async fn remove(
    plan: &Plan,
    places: &Places,
    claude: Option<&ClaudeCli>,
) -> Result<Outcome, ConnectError> {
    if plan.host != Host::ClaudeCode {
        return on_file(plan, places, remove_file).await;
    }
    let command = claude_code::remove_command();
    let claude = claude_or_explain(claude, command.clone())?;
    let change = match claude.registered().await? {
        claude_code::Registered::Absent => Change::NothingToRemove,
        claude_code::Registered::At(_) => {
            claude.remove().await?;
            Change::Removed
        }
    };
    let ran = (change == Change::Removed).then_some(command);
    Ok(claude_outcome(plan, change, ran))
}

/// Whether the host is connected (runs `claude mcp get` for Claude Code).
pub async fn state(
    plan: &Plan,
    places: &Places,
    claude: Option<&ClaudeCli>,
) -> Result<State, ConnectError> {
    if plan.host != Host::ClaudeCode {
        return on_file(plan, places, file_state).await;
    }
    let claude = claude_or_explain(claude, plan.claude_command())?;
    Ok(match claude.registered().await? {
        claude_code::Registered::Absent => State::NotConnected,
        claude_code::Registered::At(Some(url)) if url == plan.url => State::Connected,
        claude_code::Registered::At(_) => State::Outdated,
    })
}
