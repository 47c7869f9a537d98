//! What the desktop app shows and does: serializable views of the state, the
//! actions behind its buttons, and the server's lifecycle (start, port in
//! use, pick another). Errors reach the window as `{code, message}`. The
//! Tauri shell only forwards to these, so they are tested headless.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::accounts::{self, AccountError, Added};
use crate::clock::rfc3339;
use crate::config::{self, ConfigError};
pub use crate::config::{data_dir, Settings, DEFAULT_PORT, SETTINGS_NAME};
use crate::connect::{
    self, Bridge, Change, ClaudeCli, ConnectError, Host, Places, Plan, State as ConnectState, Via,
};
use crate::consent::{self, ConsentError, OrgOption, PENDING_TTL};
use crate::control::ControlError;
use crate::grants;
use crate::secrets::SecretError;
use crate::sensitive::Sensitive;
use crate::service::{Service, StartError};
use crate::state::AppState;
use crate::store::{
    Account, AccountKind, AccountStatus, CallRecord, GrantSummary, RejectReason, StoreError,
};
use crate::upstream::UpstreamError;

/// Recent calls shown with each assistant.
const RECENT_CALLS: u32 = 5;

/// An error as the window shows it: a stable code and a sentence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DesktopError {
    /// Stable, for the UI's logic.
    pub code: &'static str,
    /// For the person.
    pub message: String,
}

impl DesktopError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for DesktopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DesktopError {}

impl From<StoreError> for DesktopError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "database error");
        Self::new(
            "storage",
            "Spor Companion could not read or write its database; see its log.",
        )
    }
}

impl From<SecretError> for DesktopError {
    fn from(e: SecretError) -> Self {
        Self::new("keychain", format!("The keychain refused: {e}"))
    }
}

impl From<AccountError> for DesktopError {
    fn from(e: AccountError) -> Self {
        let code = match &e {
            AccountError::NotAPat => "not_a_token",
            AccountError::InvalidUrl(_) => "invalid_url",
            AccountError::Rejected(_) => "token_rejected",
            AccountError::Upstream(UpstreamError::Unreachable { .. })
            | AccountError::Upstream(UpstreamError::Timeout { .. }) => "unreachable",
            AccountError::Upstream(_) => "upstream",
            AccountError::Secret(_) => "keychain",
            AccountError::Store(_) => "storage",
            AccountError::NotFound(_) => "not_found",
            AccountError::InvalidToken => "not_a_token",
            AccountError::InvalidLabel => "invalid_label",
            AccountError::Duplicate(_) => "duplicate",
            AccountError::TooManyPastes => "rate_limited",
            AccountError::ServerRequired => "server_required",
            AccountError::WrongOrg { .. } => "wrong_org",
        };
        match e {
            AccountError::Store(e) => e.into(),
            AccountError::Secret(e) => e.into(),
            e => Self::new(code, sentence(&e.to_string())),
        }
    }
}

impl From<ConfigError> for DesktopError {
    fn from(e: ConfigError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<ConsentError> for DesktopError {
    fn from(e: ConsentError) -> Self {
        match e {
            ConsentError::UnknownRequest => Self::new(
                "not_found",
                "This request has expired or was already decided. Connect again from the assistant.",
            ),
            ConsentError::UnknownAccount(_) => {
                Self::new("unknown_account", "That account no longer exists.")
            }
            ConsentError::AccountRejected(_) => Self::new(
                "account_rejected",
                "The server rejected this account's token. Paste a new one first.",
            ),
            ConsentError::AccountRequired => {
                Self::new("account_required", "Choose an organization first.")
            }
            ConsentError::NoAccount => {
                Self::new("no_account", "Add your Spor token first.")
            }
            ConsentError::Store(e) => e.into(),
        }
    }
}

/// Capitalizes the first letter and ends with a full stop.
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    let mut out: String = match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// Not started yet.
    Starting,
    /// Serving.
    Running,
    /// The port is held by another program.
    PortInUse,
    /// Could not start for another reason.
    Failed,
}

/// The server as the status line shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatus {
    /// Lifecycle state.
    pub state: ServerState,
    /// The port in use or wanted.
    pub port: u16,
    /// The MCP endpoint, while running.
    pub mcp_url: Option<String>,
    /// Why it is not running.
    pub message: Option<String>,
}

/// The embedded server, restartable on another port.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    inner: tokio::sync::Mutex<(Option<Service>, ServerStatus)>,
}

impl Server {
    /// A server for `state`, not started yet, meant for `port`.
    pub fn new(state: AppState, port: u16) -> Self {
        Self {
            state,
            inner: tokio::sync::Mutex::new((
                None,
                ServerStatus {
                    state: ServerState::Starting,
                    port,
                    mcp_url: None,
                    message: None,
                },
            )),
        }
    }

    /// The current status.
    pub async fn status(&self) -> ServerStatus {
        self.inner.lock().await.1.clone()
    }

    /// (Re)starts on `port` and reports how that went; the old listener is
    /// released first so the same port can be retried.
    pub async fn start(&self, port: u16) -> ServerStatus {
        let mut inner = self.inner.lock().await;
        if let Some(old) = inner.0.take() {
            if let Err(e) = old.stop().await {
                tracing::warn!(error = %e, "the previous server ended with an error");
            }
        }
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        inner.1 = match Service::start(self.state.clone(), listen).await {
            Ok(service) => {
                let status = ServerStatus {
                    state: ServerState::Running,
                    port: service.addr().port(),
                    mcp_url: Some(service.mcp_url()),
                    message: None,
                };
                inner.0 = Some(service);
                status
            }
            Err(e) => {
                let (state, message) = match &e {
                    StartError::PortInUse(p) => (
                        ServerState::PortInUse,
                        format!("Port {p} is in use by another program. Choose another port, or quit that program and try again."),
                    ),
                    StartError::Control(ControlError::AlreadyRunning(dir)) => (
                        ServerState::Failed,
                        format!(
                            "Another Spor Companion is already running with the data folder {}. Quit it (or stop spor-companiond), then try again.",
                            dir.display()
                        ),
                    ),
                    other => (ServerState::Failed, sentence(&other.to_string())),
                };
                tracing::warn!(error = %e, "the server did not start");
                ServerStatus {
                    state,
                    port,
                    mcp_url: None,
                    message: Some(message),
                }
            }
        };
        inner.1.clone()
    }

    /// Moves to `port` chosen by the person; remembered once it works.
    pub async fn use_port(&self, port: u32) -> Result<ServerStatus, DesktopError> {
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p >= 1024)
            .ok_or_else(|| {
                DesktopError::new("invalid_port", "Choose a port between 1024 and 65535.")
            })?;
        let status = self.start(port).await;
        if status.state == ServerState::Running {
            let settings = Settings { port: Some(port) };
            if let Err(e) = settings.save(&self.state.config.data_dir) {
                tracing::warn!(error = %e, "could not save the chosen port");
            }
        }
        Ok(status)
    }

    /// Stops serving (on quit): live streams end, the port is released.
    pub async fn stop(&self) {
        let mut inner = self.inner.lock().await;
        if let Some(service) = inner.0.take() {
            if let Err(e) = service.stop().await {
                tracing::warn!(error = %e, "the server ended with an error");
            }
        }
        inner.1.state = ServerState::Starting;
        inner.1.mcp_url = None;
    }
}

/// Token state as the accounts list shows it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    /// Works.
    Valid,
    /// Refused by the server.
    Rejected,
    /// Ran out.
    Expired,
}

/// One account row.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// Account id.
    pub id: String,
    /// Spor or generic.
    pub kind: AccountKind,
    /// What to call it (the org, or a generic server's label).
    pub label: String,
    /// Organization slug.
    pub org: String,
    /// Person's name.
    pub name: Option<String>,
    /// Person's email.
    pub email: Option<String>,
    /// "Name <email>".
    pub who: Option<String>,
    /// REST base URL.
    pub server: String,
    /// Its host, for compact display.
    pub server_host: String,
    /// Token state.
    pub state: TokenState,
    /// Whether writes are attributed to a person.
    pub bound: bool,
    /// Connected assistants using it (disconnected if it is removed).
    pub assistants: usize,
    /// When added.
    pub added_at: String,
}

/// One recent call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityView {
    /// When.
    pub at: String,
    /// JSON-RPC method.
    pub method: String,
    /// Tool, for `tools/call`.
    pub tool: Option<String>,
    /// `ok`, `http_502`, `rejected`, …
    pub outcome: String,
    /// How long it took.
    pub duration_ms: u64,
}

impl From<CallRecord> for ActivityView {
    fn from(c: CallRecord) -> Self {
        Self {
            at: rfc3339(c.at),
            method: c.method,
            tool: c.tool,
            outcome: c.outcome.to_string(),
            duration_ms: c.duration_ms,
        }
    }
}

/// One connected assistant (one grant).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantView {
    /// Grant id.
    pub id: String,
    /// Self-declared client name.
    pub name: String,
    /// The account it acts as.
    pub account_id: Option<String>,
    /// That account's label.
    pub account_label: Option<String>,
    /// That account's org.
    pub org: Option<String>,
    /// When connected.
    pub connected_at: String,
    /// When last used.
    pub last_used_at: Option<String>,
    /// The newest few calls.
    pub recent: Vec<ActivityView>,
}

/// A request waiting for consent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingView {
    /// Request id.
    pub id: String,
    /// Self-declared client name.
    pub client_name: String,
    /// Where the browser returns.
    pub redirect_host: String,
    /// When it arrived.
    pub created_at: String,
}

/// Everything the main window shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// The server.
    pub server: ServerStatus,
    /// Where tokens are kept.
    pub secret_store: String,
    /// The data folder.
    pub data_dir: String,
    /// Stored accounts.
    pub accounts: Vec<AccountView>,
    /// Connected assistants, newest first.
    pub assistants: Vec<AssistantView>,
    /// Requests waiting for consent, oldest first.
    pub pending: Vec<PendingView>,
    /// The line that connects Claude Code.
    pub claude_command: String,
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| url.to_string())
}

fn label_of(a: &Account) -> String {
    match a.kind {
        AccountKind::Generic => a.name.clone().unwrap_or_else(|| host_of(&a.server)),
        AccountKind::Spor => a.org.clone(),
    }
}

fn account_view(a: &Account, grants: &[GrantSummary]) -> AccountView {
    AccountView {
        id: a.id.clone(),
        kind: a.kind,
        label: label_of(a),
        org: a.org.clone(),
        name: a.name.clone(),
        email: a.email.clone(),
        who: a.who(),
        server: a.server.clone(),
        server_host: host_of(&a.server),
        state: match (a.status, a.rejected_reason) {
            (AccountStatus::Valid, _) => TokenState::Valid,
            (AccountStatus::Rejected, Some(RejectReason::Expired)) => TokenState::Expired,
            (AccountStatus::Rejected, _) => TokenState::Rejected,
        },
        bound: a.bound,
        assistants: grants
            .iter()
            .filter(|g| g.account_id.as_deref() == Some(a.id.as_str()))
            .count(),
        added_at: rfc3339(a.created_at),
    }
}

/// The `claude mcp add` line for an MCP URL.
pub fn claude_command(mcp_url: &str) -> String {
    crate::connect::claude_code::add_command(mcp_url)
}

/// Everything the main window shows, in one read.
pub async fn overview(state: &AppState, server: ServerStatus) -> Result<Overview, DesktopError> {
    let accounts = state.store.accounts().await?;
    let grants = state.store.grants(false).await?;
    let mut assistants = Vec::with_capacity(grants.len());
    for g in &grants {
        let account = g
            .account_id
            .as_ref()
            .and_then(|id| accounts.iter().find(|a| &a.id == id));
        let recent = state.store.calls(g.id.clone(), RECENT_CALLS).await?;
        assistants.push(AssistantView {
            id: g.id.clone(),
            name: g.client_name.clone(),
            account_id: g.account_id.clone(),
            account_label: account.map(label_of),
            org: g.org.clone(),
            connected_at: rfc3339(g.created_at),
            last_used_at: g.last_used_at.map(rfc3339),
            recent: recent.into_iter().map(ActivityView::from).collect(),
        });
    }
    let pending = state
        .consent
        .list(state.now())
        .into_iter()
        .map(|p| PendingView {
            id: p.id,
            client_name: p.client_name,
            redirect_host: p.redirect_host,
            created_at: rfc3339(p.created_at),
        })
        .collect();
    let url = server_url(&server);
    Ok(Overview {
        claude_command: claude_command(&url),
        server,
        secret_store: state.secrets.describe(),
        data_dir: state.config.data_dir.display().to_string(),
        accounts: accounts.iter().map(|a| account_view(a, &grants)).collect(),
        assistants,
        pending,
    })
}

/// One organization choice in the consent view.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionView {
    /// The stored account, or `None` for an org without a token yet.
    pub account_id: Option<String>,
    /// Org slug.
    pub org: String,
    /// Org display label.
    pub label: String,
    /// Whose token it is.
    pub who: String,
    /// The account's server.
    pub server: String,
    /// Its host.
    pub server_host: String,
    /// Refused by the server.
    pub rejected: bool,
}

impl From<OrgOption> for OptionView {
    fn from(o: OrgOption) -> Self {
        Self {
            server_host: host_of(&o.server),
            account_id: o.account_id,
            org: o.org,
            label: o.label,
            who: o.who,
            server: o.server,
            rejected: o.rejected,
        }
    }
}

/// What the consent view shows for one request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentView {
    /// Request id.
    pub id: String,
    /// Self-declared client name.
    pub client_name: String,
    /// Where the browser returns.
    pub redirect_host: String,
    /// When the request lapses.
    pub expires_at: String,
    /// Organization choices.
    pub options: Vec<OptionView>,
    /// The server new tokens are for, if known.
    pub known_server: Option<String>,
    /// No usable account: ask for a token first.
    pub needs_token: bool,
}

/// The consent view for a pending request.
pub async fn consent_view(state: &AppState, id: &str) -> Result<ConsentView, DesktopError> {
    let request = state
        .consent
        .pending(id, state.now())
        .ok_or(ConsentError::UnknownRequest)?;
    let options: Vec<OptionView> = consent::org_options(state)
        .await
        .into_iter()
        .map(OptionView::from)
        .collect();
    let needs_token = !options
        .iter()
        .any(|o| o.account_id.is_some() && !o.rejected);
    Ok(ConsentView {
        id: request.id,
        client_name: request.client_name,
        redirect_host: request.redirect_host,
        expires_at: rfc3339(request.created_at + PENDING_TTL),
        options,
        known_server: accounts::known_server(state).await,
        needs_token,
    })
}

/// Allows a pending request as an account (or the only one).
pub async fn approve(
    state: &AppState,
    id: &str,
    account_id: Option<&str>,
) -> Result<(), DesktopError> {
    consent::approve(state, id, account_id.filter(|s| !s.is_empty())).await?;
    Ok(())
}

/// Denies a pending request.
pub fn deny(state: &AppState, id: &str) -> Result<(), DesktopError> {
    consent::deny(state, id)?;
    Ok(())
}

/// The result of storing a pasted token.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountAdded {
    /// The account as now stored.
    pub account: AccountView,
    /// Whether it replaced an older token.
    pub replaced: bool,
    /// Assistants disconnected because the old token went.
    pub disconnected: usize,
    /// Things the person should know.
    pub warnings: Vec<String>,
}

async fn added_view(state: &AppState, added: Added) -> Result<AccountAdded, DesktopError> {
    let grants = state.store.grants(false).await?;
    Ok(AccountAdded {
        account: account_view(&added.account, &grants),
        replaced: added.replaced,
        disconnected: added.revoked_grants.len(),
        warnings: added.warnings.iter().map(|w| sentence(w)).collect(),
    })
}

/// Validates and stores a pasted PAT (for `server`, or the known server).
pub async fn add_account(
    state: &AppState,
    server: Option<&str>,
    token: Sensitive<String>,
) -> Result<AccountAdded, DesktopError> {
    let added = accounts::paste_token(state, server, token).await?;
    added_view(state, added).await
}

/// Replaces an account's token with a new one for the same org.
pub async fn replace_token(
    state: &AppState,
    account_id: &str,
    token: Sensitive<String>,
) -> Result<AccountAdded, DesktopError> {
    let added = accounts::replace_token(state, account_id, token).await?;
    added_view(state, added).await
}

/// The result of removing an account.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedView {
    /// Assistants disconnected.
    pub disconnected: usize,
    /// Whether the token was also revoked on the server.
    pub revoked_upstream: bool,
}

/// Removes an account (optionally revoking its token on the server too).
pub async fn remove_account(
    state: &AppState,
    account_id: &str,
    revoke_upstream: bool,
) -> Result<RemovedView, DesktopError> {
    let removed = accounts::remove_account(state, account_id, revoke_upstream).await?;
    Ok(RemovedView {
        disconnected: removed.revoked_grants.len(),
        revoked_upstream: removed.revoked_upstream,
    })
}

/// Disconnects one assistant now.
pub async fn disconnect(state: &AppState, grant_id: &str) -> Result<(), DesktopError> {
    if grants::disconnect(state, grant_id).await? {
        Ok(())
    } else {
        Err(DesktopError::new(
            "not_found",
            "That assistant is no longer connected.",
        ))
    }
}

/// An assistant's newest calls.
pub async fn activity(
    state: &AppState,
    grant_id: &str,
    limit: u32,
) -> Result<Vec<ActivityView>, DesktopError> {
    match grants::activity(state, grant_id, limit.clamp(1, 200)).await? {
        Some(calls) => Ok(calls.into_iter().map(ActivityView::from).collect()),
        None => Err(DesktopError::new("not_found", "No such assistant.")),
    }
}

/// Whether a server answered the last check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Reachability {
    /// The server checked.
    pub server: String,
    /// Its host.
    pub server_host: String,
    /// It answered.
    pub reachable: bool,
    /// Why not.
    pub message: Option<String>,
}

/// Asks each stored account's server whether it is there and still takes
/// the token: a Spor token is checked with `GET /v1/me` (a 401 marks it
/// rejected or expired, ending its grants, as a refused MCP call would); a
/// generic server is only probed, without the token.
pub async fn check_upstreams(state: &AppState) -> Result<Vec<Reachability>, DesktopError> {
    let accounts = state.store.accounts().await?;
    let mut out: Vec<Reachability> = Vec::new();
    for a in accounts {
        let result = match (a.kind, a.status) {
            (AccountKind::Spor, AccountStatus::Valid) => {
                match state.secrets.get_async(a.id.clone()).await? {
                    Some(pat) => state.upstream.me(&a.server, &pat).await.map(|_| ()),
                    None => Err(UpstreamError::Rejected {
                        status: 401,
                        message: "the token is missing from the keychain".into(),
                    }),
                }
            }
            _ => state.upstream.probe(&a.mcp_url).await,
        };
        let (reachable, message) = match result {
            Ok(()) => (true, None),
            Err(UpstreamError::Rejected {
                status: 401,
                message,
            }) => {
                let reason = crate::upstream::reject_reason_of(&message);
                accounts::reject(state, &a.id, reason).await?;
                (true, None)
            }
            Err(e @ (UpstreamError::Unreachable { .. } | UpstreamError::Timeout { .. })) => {
                (false, Some(sentence(&e.to_string())))
            }
            Err(e) => (true, Some(sentence(&e.to_string()))),
        };
        match out.iter_mut().find(|r| r.server == a.server) {
            // One row per server: unreachable wins, a message is kept.
            Some(r) => {
                r.reachable &= reachable;
                if r.message.is_none() {
                    r.message = message;
                }
            }
            None => out.push(Reachability {
                server_host: host_of(&a.server),
                server: a.server,
                reachable,
                message,
            }),
        }
    }
    Ok(out)
}

/// Reads the port to use: the environment's choice, else the saved one,
/// else the default.
pub fn configured_port(data_dir: &Path, env: Option<&str>) -> Result<u16, DesktopError> {
    config::configured_port(data_dir, env).map_err(DesktopError::from)
}

/// The MCP URL assistants should use: the running one, else the wanted port's.
fn server_url(server: &ServerStatus) -> String {
    server.mcp_url.clone().unwrap_or_else(|| {
        crate::service::mcp_url(SocketAddr::from((Ipv4Addr::LOCALHOST, server.port)))
    })
}

// ---------------------------------------------------------------- connect an assistant

/// What the app needs to connect assistants: this user's config folders,
/// Claude Code's `claude` (if installed) and the app's own binary, which
/// Claude Desktop runs as the bridge (`<app> bridge URL`).
#[derive(Debug, Clone)]
pub struct Connector {
    /// Where the hosts' config files are (`None`: no home folder).
    pub places: Option<Places>,
    /// `claude` on PATH.
    pub claude: Option<ClaudeCli>,
    /// The program Claude Desktop starts.
    pub bridge: PathBuf,
}

impl Connector {
    /// From the environment (HOME, the config folder, PATH).
    pub fn from_env(bridge: PathBuf) -> Self {
        Self {
            places: Places::from_env(),
            claude: ClaudeCli::find(std::env::var_os("PATH").as_deref()),
            bridge,
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
    /// `connected`, `not-connected`, `outdated` (a `spor` entry for another
    /// address), `unavailable` (Claude Code not installed) or `error`.
    pub state: &'static str,
    /// The config file (hosts configured by a file).
    pub file: Option<String>,
    /// The command to run by hand (Claude Code).
    pub command: Option<String>,
    /// Why the state is `error` or `unavailable`.
    pub message: Option<String>,
}

fn state_name(state: ConnectState) -> &'static str {
    match state {
        ConnectState::Connected => "connected",
        ConnectState::NotConnected => "not-connected",
        ConnectState::Outdated => "outdated",
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
        state: "not-connected",
        file: None,
        command: (host == Host::ClaudeCode).then(|| plan.claude_command()),
        message: None,
    };
    let Some(places) = connector.places.as_ref() else {
        view.state = "error";
        view.message = Some(sentence(&ConnectError::NoHome.to_string()));
        return view;
    };
    view.file = plan.config_file(places).map(|p| p.display().to_string());
    if host == Host::ClaudeCode && connector.claude.is_none() {
        view.state = "unavailable";
        view.message =
            Some("The claude command was not found. Run this in a terminal instead:".into());
        return view;
    }
    match connect::state(&plan, places, connector.claude.as_ref()).await {
        Ok(state) => view.state = state_name(state),
        Err(e) => {
            view.state = "error";
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

impl From<ConnectError> for DesktopError {
    fn from(e: ConnectError) -> Self {
        Self::new(e.code(), sentence(&e.to_string()))
    }
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
    if outcome.change != Change::AlreadyConnected && outcome.change != Change::NothingToRemove {
        tracing::info!(host = host.id(), change = ?outcome.change, "assistant configuration changed");
    }
    Ok(ConnectedView {
        view: host_view(connector, host, server).await,
        message: sentence(&outcome.to_string()),
        change: outcome.change,
    })
}
