//! The main window's whole picture in one read: the server, accounts,
//! assistants, pending requests and the line that connects Claude Code.

use serde::Serialize;

use super::accounts::{account_view, reachability, AccountView, Reachability};
use super::assistants::{assistant_views, AssistantView};
use super::connect::claude_command;
use super::consent::{pending_views, PendingView};
use super::error::DesktopError;
use super::server::{server_url, ServerStatus};
use crate::state::AppState;
use crate::upstream::HostedSpor;

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
    /// Whether each account's server answers, as last heard (nothing is
    /// asked to build this).
    pub upstreams: Vec<Reachability>,
    /// Hosted Spor, offered first when a token is added.
    pub hosted: HostedSpor,
    /// The Spor server already in use, if any.
    pub known_server: Option<String>,
}

/// Everything the main window shows, in one read.
pub async fn overview(state: &AppState, server: ServerStatus) -> Result<Overview, DesktopError> {
    let accounts = state.store.accounts().await?;
    let grants = state.store.grants(false).await?;
    let assistants = assistant_views(state, &grants, &accounts).await?;
    let pending = pending_views(state);
    let url = server_url(&server);
    Ok(Overview {
        claude_command: claude_command(&url),
        server,
        secret_store: state.secrets.describe(),
        data_dir: state.config.data_dir.display().to_string(),
        accounts: accounts.iter().map(|a| account_view(a, &grants)).collect(),
        assistants,
        pending,
        upstreams: reachability(state).await?,
        hosted: state.upstream.hosted().default_spor().clone(),
        known_server: crate::accounts::known_server(state).await,
    })
}
