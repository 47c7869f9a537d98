//! The window's commands: each one unpacks its arguments and delegates to
//! `spor_companion::desktop`. Errors arrive in the page as `{code, message}`.

use spor_companion::connect::Host;
use spor_companion::consent::ToolChoices;
use spor_companion::desktop::{
    self, AccountAdded, ActivityView, ConnectAction, ConnectedView, Connector, ConsentView,
    DesktopError, ExtensionSaved, HostView, Overview, Reachability, RemovedView, ServerStatus,
};
use spor_companion::sensitive::Sensitive;
use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_clipboard_manager::ClipboardExt as _;

use crate::boot::{Boot, Core};
use crate::ui::{self, Gate};

type Result<T> = std::result::Result<T, DesktopError>;

fn core<'a>(boot: &'a State<'_, Boot>) -> Result<&'a Core> {
    match boot.inner() {
        Boot::Ready(core) => Ok(core),
        Boot::Failed(message) => Err(DesktopError {
            code: "not_started",
            message: message.clone(),
        }),
    }
}

fn os_error(what: &str, e: impl std::fmt::Display) -> DesktopError {
    DesktopError {
        code: "os",
        message: format!("{what}: {e}"),
    }
}

/// Everything the main window shows.
#[tauri::command]
pub async fn overview(boot: State<'_, Boot>) -> Result<Overview> {
    let core = core(&boot)?;
    desktop::overview(&core.state, core.server.status().await).await
}

/// The page has registered its listeners: deliver what waited for it.
#[tauri::command]
pub fn ui_ready(app: AppHandle, gate: State<'_, Gate>) {
    gate.open(&app);
}

/// The consent view of a pending request.
#[tauri::command]
pub async fn consent_view(boot: State<'_, Boot>, id: String) -> Result<ConsentView> {
    desktop::consent_view(&core(&boot)?.state, &id).await
}

/// Allow, as an account (or the only one).
#[tauri::command]
pub async fn approve(
    boot: State<'_, Boot>,
    id: String,
    account_id: Option<String>,
    access: Option<String>,
) -> Result<()> {
    desktop::approve(
        &core(&boot)?.state,
        &id,
        account_id.as_deref(),
        access.as_deref(),
    )
    .await
}

/// Deny.
#[tauri::command]
pub async fn deny(boot: State<'_, Boot>, id: String) -> Result<()> {
    desktop::deny(&core(&boot)?.state, &id)
}

/// Store a pasted token (for hosted Spor unless a server is named; the MCP
/// URL only when the person set one).
#[tauri::command]
pub async fn add_account(
    boot: State<'_, Boot>,
    server: Option<String>,
    mcp_url: Option<String>,
    token: String,
) -> Result<AccountAdded> {
    let token = Sensitive::new(token);
    desktop::add_account_with_mcp_url(
        &core(&boot)?.state,
        server.as_deref(),
        mcp_url.as_deref(),
        token,
    )
    .await
}

/// Replace an account's token.
#[tauri::command]
pub async fn replace_token(
    boot: State<'_, Boot>,
    account_id: String,
    token: String,
) -> Result<AccountAdded> {
    let token = Sensitive::new(token);
    desktop::replace_token(&core(&boot)?.state, &account_id, token).await
}

/// Remove an account.
#[tauri::command]
pub async fn remove_account(
    boot: State<'_, Boot>,
    account_id: String,
    revoke_upstream: bool,
) -> Result<RemovedView> {
    desktop::remove_account(&core(&boot)?.state, &account_id, revoke_upstream).await
}

/// Disconnect an assistant.
#[tauri::command]
pub async fn disconnect(boot: State<'_, Boot>, grant_id: String) -> Result<()> {
    desktop::disconnect(&core(&boot)?.state, &grant_id).await
}

/// One account's tools for the consent's "Chosen tools" checklist.
#[tauri::command]
pub async fn consent_tools(boot: State<'_, Boot>, account_id: String) -> Result<ToolChoices> {
    desktop::consent_tools(&core(&boot)?.state, &account_id).await
}

/// Change what an assistant may do (full, read-only, tools:NAME,…).
#[tauri::command]
pub async fn set_access(boot: State<'_, Boot>, grant_id: String, access: String) -> Result<()> {
    desktop::set_access(&core(&boot)?.state, &grant_id, &access).await
}

/// The tools an assistant's account offers (for choosing some).
#[tauri::command]
pub async fn account_tools(boot: State<'_, Boot>, grant_id: String) -> Result<ToolChoices> {
    desktop::account_tools(&core(&boot)?.state, &grant_id).await
}

/// An assistant's recent calls.
#[tauri::command]
pub async fn activity(
    boot: State<'_, Boot>,
    grant_id: String,
    limit: u32,
) -> Result<Vec<ActivityView>> {
    desktop::activity(&core(&boot)?.state, &grant_id, limit).await
}

/// Ask the servers whether they are there (when the window opens and on
/// "Check now"; never on a timer).
#[tauri::command]
pub async fn check_upstreams(boot: State<'_, Boot>) -> Result<Vec<Reachability>> {
    desktop::check_upstreams(&core(&boot)?.state).await
}

/// Move the server to another port.
#[tauri::command]
pub async fn use_port(app: AppHandle, boot: State<'_, Boot>, port: u32) -> Result<ServerStatus> {
    let status = core(&boot)?.server.use_port(port).await?;
    ui::server_changed(&app, &status);
    Ok(status)
}

/// What the app connects assistants with; Claude Desktop runs this very
/// binary as its bridge (`spor-companion bridge URL`).
fn connector() -> Result<Connector> {
    let exe =
        std::env::current_exe().map_err(|e| os_error("Cannot tell where Spor Companion is", e))?;
    Ok(Connector::from_env(exe))
}

/// The assistants that can be connected, and whether each one is.
#[tauri::command]
pub async fn connect_hosts(boot: State<'_, Boot>) -> Result<Vec<HostView>> {
    let status = core(&boot)?.server.status().await;
    Ok(desktop::connect_hosts(&connector()?, &status).await)
}

/// Add Spor Companion to an assistant, or take it out.
#[tauri::command]
pub async fn connect_host(
    boot: State<'_, Boot>,
    host: Host,
    action: ConnectAction,
) -> Result<ConnectedView> {
    let status = core(&boot)?.server.status().await;
    desktop::connect_host(&connector()?, &status, host, action).await
}

/// Save the Claude Desktop extension (.mcpb) in the Downloads folder.
#[tauri::command]
pub async fn save_extension(boot: State<'_, Boot>) -> Result<ExtensionSaved> {
    let status = core(&boot)?.server.status().await;
    desktop::save_extension(&connector()?, &status).await
}

/// Put text on the clipboard.
#[tauri::command]
pub fn copy_text(app: AppHandle, text: String) -> Result<()> {
    app.clipboard()
        .write_text(text)
        .map_err(|e| os_error("The clipboard is not available", e))
}

/// Whether the app starts at login.
#[tauri::command]
pub fn get_autostart(app: AppHandle) -> Result<bool> {
    app.autolaunch()
        .is_enabled()
        .map_err(|e| os_error("Could not read the start-at-login setting", e))
}

/// Start (or not) at login.
#[tauri::command]
pub fn set_autostart(app: AppHandle, enabled: bool) -> Result<()> {
    let launcher = app.autolaunch();
    let result = if enabled {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| os_error("Could not change the start-at-login setting", e))
}
