//! What the desktop app shows and does: serializable views of the state, the
//! actions behind its buttons, and the server's lifecycle (start, port in
//! use, pick another). Errors reach the window as `{code, message}`. The
//! Tauri shell only forwards to these, so they are tested headless.
//!
//! One file per concern: `error` (the one `DesktopError` and every mapping
//! into it), `server`, `overview`, `accounts`, `assistants`, `consent` and
//! `connect`. They share through each other, never through this file.

mod accounts;
mod assistants;
mod connect;
mod consent;
mod error;
mod overview;
mod server;

pub use accounts::{
    add_account, add_account_with_mcp_url, check_upstreams, reachability, remove_account,
    replace_token, AccountAdded, AccountView, Reachability, RemovedView, TokenState,
};
pub use assistants::{
    account_tools, activity, disconnect, set_access, ActivityView, AssistantView,
};
pub use connect::{
    claude_command, connect_host, connect_hosts, save_extension, ConnectAction, ConnectedView,
    Connector, ExtensionSaved, HostState, HostView,
};
pub use consent::{
    approve, consent_tools, consent_view, deny, ConsentView, OptionView, PendingView,
};
pub use error::DesktopError;
pub use overview::{overview, Overview};
pub use server::{configured_port, Server, ServerState, ServerStatus};

pub use crate::config::{data_dir, Settings, DEFAULT_PORT, SETTINGS_NAME};
