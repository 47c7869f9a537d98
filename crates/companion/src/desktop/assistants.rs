//! The connected assistants (one per grant) as the window lists them, with
//! their newest calls, and what their buttons do: disconnect, change
//! access, show activity.

use serde::Serialize;

use super::accounts::label_of;
use super::error::DesktopError;
use crate::access::Access;
use crate::clock::rfc3339;
use crate::consent::{self, ToolChoices};
use crate::grants;
use crate::state::AppState;
use crate::store::{Account, CallRecord, GrantSummary};

/// Recent calls shown with each assistant.
const RECENT_CALLS: u32 = 5;

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
    /// The client's name: its own claim, or its metadata document's.
    pub name: String,
    /// The host that vouches for the name (CIMD), if any.
    pub verified_by: Option<String>,
    /// What it may do with the account's tools.
    pub access: Access,
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

/// A row for each of `grants`, labelled from `accounts`, with its newest calls.
pub(super) async fn assistant_views(
    state: &AppState,
    grants: &[GrantSummary],
    accounts: &[Account],
) -> Result<Vec<AssistantView>, DesktopError> {
    let mut assistants = Vec::with_capacity(grants.len());
    for g in grants {
        let account = g
            .account_id
            .as_ref()
            .and_then(|id| accounts.iter().find(|a| &a.id == id));
        let recent = state.store.calls(g.id.clone(), RECENT_CALLS).await?;
        assistants.push(AssistantView {
            id: g.id.clone(),
            name: g.client_name.clone(),
            verified_by: g.verified_by.clone(),
            access: g.access.clone(),
            account_id: g.account_id.clone(),
            account_label: account.map(label_of),
            org: g.org.clone(),
            connected_at: rfc3339(g.created_at),
            last_used_at: g.last_used_at.map(rfc3339),
            recent: recent.into_iter().map(ActivityView::from).collect(),
        });
    }
    Ok(assistants)
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

/// Changes what an assistant may do (`Access::parse`), from its next
/// request on.
pub async fn set_access(
    state: &AppState,
    grant_id: &str,
    access: &str,
) -> Result<(), DesktopError> {
    let access = Access::parse(access).map_err(|e| DesktopError::new(e.code(), e.to_string()))?;
    if grants::set_access(state, grant_id, access).await? {
        Ok(())
    } else {
        Err(DesktopError::new(
            "not_found",
            "That assistant is no longer connected.",
        ))
    }
}

/// The tools an assistant's account offers, for changing its chosen tools.
pub async fn account_tools(state: &AppState, grant_id: &str) -> Result<ToolChoices, DesktopError> {
    let grant = state
        .store
        .grants(false)
        .await?
        .into_iter()
        .find(|g| g.id == grant_id)
        .ok_or_else(|| DesktopError::new("not_found", "That assistant is no longer connected."))?;
    let gone = || DesktopError::new("no_account", "That assistant's account is gone.");
    let account = grant.account_id.ok_or_else(gone)?;
    consent::account_tools(state, &account)
        .await
        .ok_or_else(gone)
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
