//! Requests waiting for consent as the window shows them, and deciding
//! them: the same `consent::approve`/`deny` the browser page and the CLI use.

use serde::Serialize;

use super::accounts::host_of;
use super::error::DesktopError;
use crate::access::Access;
use crate::accounts;
use crate::clock::rfc3339;
use crate::consent::requester::{Requester, Warning};
use crate::consent::{self, ConsentError, OrgOption, ToolChoices, PENDING_TTL};
use crate::state::AppState;

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
    /// The programs behind it, as the OS tells.
    pub requester: Requester,
}

/// The requests waiting now, oldest first.
pub(super) fn pending_views(state: &AppState) -> Vec<PendingView> {
    state
        .consent
        .list(state.now())
        .into_iter()
        .map(|p| PendingView {
            id: p.id,
            client_name: p.client_name,
            redirect_host: p.redirect_host,
            created_at: rfc3339(p.created_at),
            requester: p.requester,
        })
        .collect()
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
    /// The programs behind the request, as the OS tells.
    pub requester: RequesterView,
    /// The host that vouches for the client's name (CIMD), if any.
    pub verified_by: Option<String>,
    /// Each usable account's tools, for the "Chosen tools" checklist.
    pub tools: Vec<ToolChoices>,
}

/// The programs behind a request, in the words the window shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequesterView {
    /// The registering program ("unknown program" when the OS gave no answer).
    pub program: String,
    /// Who listens on the redirect port, for a loopback redirect.
    pub listener: Option<String>,
    /// What does not add up.
    pub warnings: Vec<Warning>,
}

impl From<&Requester> for RequesterView {
    fn from(r: &Requester) -> Self {
        Self {
            program: r.registered_by_text(),
            listener: r.listener_text(),
            warnings: r.warnings.clone(),
        }
    }
}

/// The consent view for a pending request.
pub async fn consent_view(state: &AppState, id: &str) -> Result<ConsentView, DesktopError> {
    let request = state
        .consent
        .pending(id, state.now())
        .ok_or(ConsentError::UnknownRequest)?;
    let orgs = consent::org_options(state).await;
    // Known lists only: opening a consent contacts no MCP server.
    let tools = consent::tool_choices(state, &orgs, None).await;
    let options: Vec<OptionView> = orgs.into_iter().map(OptionView::from).collect();
    let needs_token = !options
        .iter()
        .any(|o| o.account_id.is_some() && !o.rejected);
    Ok(ConsentView {
        requester: RequesterView::from(&request.requester),
        id: request.id,
        client_name: request.client_name,
        verified_by: request.verified_by,
        tools,
        redirect_host: request.redirect_host,
        expires_at: rfc3339(request.created_at + PENDING_TTL),
        options,
        known_server: accounts::known_server(state).await,
        needs_token,
    })
}

/// Reads one account's tools for the consent's "Chosen tools" checklist
/// (when the person picks it), with its PAT, bounded.
pub async fn consent_tools(
    state: &AppState,
    account_id: &str,
) -> Result<ToolChoices, DesktopError> {
    consent::account_tools(state, account_id)
        .await
        .ok_or_else(|| DesktopError::new("no_account", "There is no usable account with that id."))
}

/// Allows a pending request as an account (or the only one), with the
/// access the person chose (`Access::parse`; full when none).
pub async fn approve(
    state: &AppState,
    id: &str,
    account_id: Option<&str>,
    access: Option<&str>,
) -> Result<(), DesktopError> {
    let access = match access.filter(|s| !s.is_empty()) {
        Some(text) => {
            Access::parse(text).map_err(|e| DesktopError::new(e.code(), e.to_string()))?
        }
        None => Access::Full,
    };
    // The window sends "" when no organization was picked.
    consent::approve(state, id, account_id.filter(|s| !s.is_empty()), access).await?;
    Ok(())
}

/// Denies a pending request.
pub fn deny(state: &AppState, id: &str) -> Result<(), DesktopError> {
    consent::deny(state, id)?;
    Ok(())
}
