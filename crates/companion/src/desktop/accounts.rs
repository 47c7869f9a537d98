//! The accounts list and what its buttons do: paste or replace a token,
//! remove an account; whether each account's server answers, from what the
//! companion last heard (validations, assistants' calls) and from the check
//! the window asks for when it opens or on "Check now". Nothing here asks a
//! server on a timer: that would keep a hosted graph from ever suspending.

use serde::Serialize;

use super::error::{sentence, DesktopError};
use crate::accounts::{self, Added};
use crate::clock::rfc3339;
use crate::sensitive::Sensitive;
use crate::state::AppState;
use crate::store::{
    Account, AccountKind, AccountStatus, CallOutcome, CallRecord, GrantSummary, RejectReason,
};
use crate::upstream::{Contact, ContactSource, UpstreamError};

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
    /// Where assistants' MCP traffic goes.
    pub mcp_url: String,
    /// Token state.
    pub state: TokenState,
    /// Whether writes are attributed to a person.
    pub bound: bool,
    /// Connected assistants using it (disconnected if it is removed).
    pub assistants: usize,
    /// When added.
    pub added_at: String,
}

/// A URL's `host[:port]`, for compact display; the URL itself if it has none.
pub(super) fn host_of(url: &str) -> String {
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

/// What to call an account: its org, or a generic server's label.
pub(super) fn label_of(a: &Account) -> String {
    match a.kind {
        AccountKind::Generic => a.name.clone().unwrap_or_else(|| host_of(&a.server)),
        AccountKind::Spor => a.org.clone(),
    }
}

/// An account's row; `grants` are the live ones, to count its assistants.
pub(super) fn account_view(a: &Account, grants: &[GrantSummary]) -> AccountView {
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
        mcp_url: a.mcp_url.clone(),
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

/// Validates and stores a pasted PAT (for `server`, else the known server,
/// else hosted Spor), with the MCP URL that server's accounts use.
pub async fn add_account(
    state: &AppState,
    server: Option<&str>,
    token: Sensitive<String>,
) -> Result<AccountAdded, DesktopError> {
    add_account_with_mcp_url(state, server, None, token).await
}

/// Like [`add_account`], with the MCP URL the person set (the window's
/// advanced field), if any.
pub async fn add_account_with_mcp_url(
    state: &AppState,
    server: Option<&str>,
    mcp_url: Option<&str>,
    token: Sensitive<String>,
) -> Result<AccountAdded, DesktopError> {
    let added = accounts::paste_token(state, server, mcp_url, token).await?;
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

/// Whether a server answered, as last heard.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Reachability {
    /// The server.
    pub server: String,
    /// Its host.
    pub server_host: String,
    /// It answered.
    pub reachable: bool,
    /// Why not, or what it said.
    pub message: Option<String>,
    /// When this was heard.
    pub at: String,
    /// What asked: a validation, the window's check, or an assistant.
    pub source: ContactSource,
}

/// Whether each stored account's server answers, from what was last heard,
/// without asking anyone: the newest of the last validation or check of
/// that server and the newest call an assistant made through it. One row
/// per server that anything is known of.
pub async fn reachability(state: &AppState) -> Result<Vec<Reachability>, DesktopError> {
    let accounts = state.store.accounts().await?;
    let grants = state.store.grants(false).await?;
    let mut out: Vec<Reachability> = Vec::new();
    for a in &accounts {
        if out.iter().any(|r| r.server == a.server) {
            continue;
        }
        let mut newest = state.upstream.contacts().last(&a.server);
        for g in grants.iter().filter(|g| {
            g.account_id
                .as_ref()
                .is_some_and(|id| accounts.iter().any(|o| &o.id == id && o.server == a.server))
        }) {
            if let Some(call) = state.store.calls(g.id.clone(), 1).await?.into_iter().next() {
                let heard = from_call(&call);
                // On a tie the explicit ask wins: it is what the person saw.
                if newest.as_ref().is_none_or(|n| heard.at > n.at) {
                    newest = Some(heard);
                }
            }
        }
        if let Some(c) = newest {
            out.push(Reachability {
                server: a.server.clone(),
                server_host: host_of(&a.server),
                reachable: c.reachable,
                message: c.message.as_deref().map(sentence),
                at: rfc3339(c.at),
                source: c.source,
            });
        }
    }
    Ok(out)
}

/// What an assistant's call tells about its server: it answered, unless the
/// call could not connect or got no answer in time.
fn from_call(call: &CallRecord) -> Contact {
    let (reachable, message) = match call.outcome {
        CallOutcome::Unreachable => (
            false,
            Some("an assistant's last call could not reach it".to_string()),
        ),
        CallOutcome::Timeout => (
            false,
            Some("an assistant's last call got no answer in time".to_string()),
        ),
        _ => (true, None),
    };
    Contact {
        at: call.at,
        reachable,
        message,
        source: ContactSource::Traffic,
    }
}

/// Asks each stored account's server whether it is there and still takes
/// the token: a Spor token is checked with `GET /v1/me` (a 401 marks it
/// rejected or expired, ending its grants, as a refused MCP call would); a
/// generic server is only probed, without the token. The window asks this
/// once when it opens and on "Check now", never on a timer. Each request
/// waits as long as a waking graph needs (`upstream::DEFAULT_WAKE_TIMEOUT`).
pub async fn check_upstreams(state: &AppState) -> Result<Vec<Reachability>, DesktopError> {
    let accounts = state.store.accounts().await?;
    let now = state.now();
    // One result per server: one that could not be reached wins.
    let mut per_server: Vec<(String, Result<(), UpstreamError>)> = Vec::new();
    for a in accounts {
        let result = match (a.kind, a.status) {
            (AccountKind::Spor, AccountStatus::Valid) => {
                match state.secrets.get(a.id.clone()).await? {
                    Some(pat) => state.upstream.me(&a.server, &pat).await.map(|_| ()),
                    None => Err(UpstreamError::Rejected {
                        status: 401,
                        message: "the token is missing from the keychain".into(),
                        reason: RejectReason::Refused,
                    }),
                }
            }
            _ => state.upstream.probe(&a.mcp_url).await,
        };
        if let Err(UpstreamError::Rejected {
            status: 401,
            reason,
            ..
        }) = &result
        {
            accounts::reject(state, &a.id, *reason).await?;
        }
        match per_server.iter_mut().find(|(s, _)| *s == a.server) {
            Some((_, kept)) => {
                if not_reached(&result) && !not_reached(kept) {
                    *kept = result;
                }
            }
            None => per_server.push((a.server, result)),
        }
    }
    for (server, result) in &per_server {
        state
            .upstream
            .note(server, now, ContactSource::Check, result);
    }
    reachability(state).await
}

fn not_reached<T>(r: &Result<T, UpstreamError>) -> bool {
    matches!(
        r,
        Err(UpstreamError::Unreachable { .. } | UpstreamError::Timeout { .. })
    )
}
