//! Deciding pending authorization requests, wherever the decision is made
//! (browser page, CLI, desktop window): approve mints the code, deny builds
//! the refusal; and the organization picker both consents show.

pub mod pending;
pub mod requester;

use std::time::Duration;

use serde::Serialize;
use spor_wire::oauth::authorize::client_redirect;

use crate::access::Access;
use crate::clock::Timestamp;
use crate::events::Event;
use crate::sensitive::{Abbreviated, Sensitive};
use crate::state::AppState;
use crate::store::{Account, AccountKind, AccountStatus, NewCode, StoreError};
use crate::tokens;
use crate::upstream::OrgSource;
pub use pending::{Consent, Decision, PendingRequest, PendingSummary, PENDING_TTL};

/// Authorization codes live ten minutes.
pub const CODE_TTL: i64 = 600;

/// Why a decision could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// No such pending request (expired, decided, or never existed).
    #[error("no pending authorization request with that id (it may have expired or been decided)")]
    UnknownRequest,
    /// The chosen account does not exist.
    #[error("no account with id {0}")]
    UnknownAccount(String),
    /// The chosen account's token was rejected upstream.
    #[error("the token of account {0} was rejected by the server; paste a new one first")]
    AccountRejected(String),
    /// There is more than one account and none was chosen.
    #[error("choose an account (--account ID); there is more than one")]
    AccountRequired,
    /// No account stored at all.
    #[error("no account is stored yet; add one first (spor-companiond account add)")]
    NoAccount,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ConsentError {
    /// The stable code the control socket and the window report.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownRequest => "not_found",
            Self::UnknownAccount(_) => "unknown_account",
            Self::AccountRejected(_) => "account_rejected",
            Self::AccountRequired => "account_required",
            Self::NoAccount => "no_account",
            Self::Store(_) => "storage",
        }
    }
}

/// Picks the account for an approval: the given one, or the only one.
async fn resolve_account(
    state: &AppState,
    account_id: Option<&str>,
) -> Result<String, ConsentError> {
    let accounts = state.store.accounts().await?;
    let account = match account_id {
        Some(id) => accounts
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| ConsentError::UnknownAccount(id.to_string()))?,
        None => {
            let mut valid = accounts
                .into_iter()
                .filter(|a| a.status == AccountStatus::Valid);
            match (valid.next(), valid.next()) {
                (Some(a), None) => a,
                (None, _) => return Err(ConsentError::NoAccount),
                _ => return Err(ConsentError::AccountRequired),
            }
        }
    };
    if account.status != AccountStatus::Valid {
        return Err(ConsentError::AccountRejected(account.id));
    }
    Ok(account.id)
}

/// Approves a pending request as `account_id` (or the only account): mints
/// the authorization code and returns the redirect carrying it.
pub async fn approve(
    state: &AppState,
    id: &str,
    account_id: Option<&str>,
    access: Access,
) -> Result<Decision, ConsentError> {
    let now = state.now();
    let request = state
        .consent
        .pending(id, now)
        .ok_or(ConsentError::UnknownRequest)?;
    let account_id = resolve_account(state, account_id).await?;
    let code = tokens::mint("");
    state
        .store
        .insert_code(
            NewCode {
                code_hash: tokens::hash(code.expose()),
                client_id: request.client_id.clone(),
                account_id: account_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                redirect_sent: request.redirect_sent,
                code_challenge: request.code_challenge.clone(),
                scope: request.scope.clone(),
                resource: request.resource.clone(),
                expires_at: now + CODE_TTL,
                access,
            },
            now,
        )
        .await?;
    let decision = Decision {
        redirect: Sensitive::new(client_redirect(
            &request.redirect_uri,
            &[("code", code.expose())],
            request.state.as_deref(),
            &request.issuer,
        )),
        approved: true,
    };
    // If someone else decided meanwhile, their decision stands and our
    // code is never delivered (it expires unused).
    settle(state, id, &decision, now)?;
    // The request id gives the consent page and its CSRF token: never at
    // INFO, and only its start at debug.
    tracing::info!(client = %request.client_id, account = %account_id, "authorization approved");
    tracing::debug!(request = %Abbreviated(id), "approved request");
    Ok(decision)
}

/// Records the decision of a waiting request and announces it;
/// `UnknownRequest` if it is no longer waiting.
fn settle(
    state: &AppState,
    id: &str,
    decision: &Decision,
    now: Timestamp,
) -> Result<(), ConsentError> {
    state
        .consent
        .decide(id, decision.clone(), now)
        .ok_or(ConsentError::UnknownRequest)?;
    state.events.emit(Event::ConsentDecided {
        id: id.to_string(),
        approved: decision.approved,
    });
    Ok(())
}

/// Denies a pending request; the browser goes back with `access_denied`.
pub fn deny(state: &AppState, id: &str) -> Result<Decision, ConsentError> {
    let now = state.now();
    let request = state
        .consent
        .pending(id, now)
        .ok_or(ConsentError::UnknownRequest)?;
    let decision = Decision {
        redirect: Sensitive::new(client_redirect(
            &request.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ],
            request.state.as_deref(),
            &request.issuer,
        )),
        approved: false,
    };
    settle(state, id, &decision, now)?;
    tracing::info!(client = %request.client_id, "authorization denied");
    tracing::debug!(request = %Abbreviated(id), "denied request");
    Ok(decision)
}

/// One choice in the organization picker.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgOption {
    /// The stored account, or `None` for an org without a token yet.
    pub account_id: Option<String>,
    /// Org slug.
    pub org: String,
    /// Org display label.
    pub label: String,
    /// Whose token it is ("Name <email>").
    pub who: String,
    /// Server of the account.
    pub server: String,
    /// The upstream rejected this account's token.
    pub rejected: bool,
}

/// How long loading an account's tool list for the checklist may take (a
/// hosted graph may be waking up).
const TOOL_LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The tools one account offers, for the "Chosen tools" checklist.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolChoices {
    /// The stored account.
    pub account_id: String,
    /// Its organization's label.
    pub org: String,
    /// Its tools, sorted by name (empty until loaded, or when they could
    /// not be read).
    pub tools: Vec<crate::gateway::catalogue::ToolInfo>,
    /// Not loaded yet: opening a consent contacts no MCP server, so the
    /// list is read only when the person asks to choose tools.
    pub pending: bool,
    /// Why they could not be read, if so.
    pub error: Option<String>,
}

/// The tools of each usable account among `options`: as already seen, and
/// for the account `load` names, read with its PAT now (bounded).
pub async fn tool_choices(
    state: &AppState,
    options: &[OrgOption],
    load: Option<&str>,
) -> Vec<ToolChoices> {
    let Ok(accounts) = state.store.accounts().await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for o in options.iter().filter(|o| !o.rejected) {
        let Some(account) = o
            .account_id
            .as_ref()
            .and_then(|id| accounts.iter().find(|a| &a.id == id))
        else {
            continue;
        };
        let read_now = load == Some(account.id.as_str());
        out.push(choices_for(state, account, &o.label, read_now).await);
    }
    out
}

/// One stored account's tools, read with its PAT now unless already seen:
/// the checklist once the person picks "Chosen tools". `None` for an
/// unknown or rejected account. Asks the server nothing else.
pub async fn account_tools(state: &AppState, account_id: &str) -> Option<ToolChoices> {
    let account = state.store.account(account_id.to_string()).await.ok()??;
    if account.status == AccountStatus::Rejected {
        return None;
    }
    Some(choices_for(state, &account, &option_label(&account), true).await)
}

/// The checklist of one account: as already seen, read now (bounded) when
/// `read_now`, else pending.
async fn choices_for(
    state: &AppState,
    account: &Account,
    org: &str,
    read_now: bool,
) -> ToolChoices {
    let known = state.gateway.catalogue.tools(&account.id);
    let (tools, pending, error) = match known {
        Some(tools) => (tools, false, None),
        None if read_now => {
            let read = tokio::time::timeout(
                TOOL_LIST_WAIT,
                crate::gateway::listing::tools_of(state, account),
            )
            .await;
            match read {
                Ok(Ok(tools)) => (tools, false, None),
                Ok(Err(e)) => (Vec::new(), false, Some(e.to_string())),
                Err(_) => (
                    Vec::new(),
                    false,
                    Some(format!(
                        "the server did not list its tools within {} seconds",
                        TOOL_LIST_WAIT.as_secs()
                    )),
                ),
            }
        }
        None => (Vec::new(), true, None),
    };
    ToolChoices {
        account_id: account.id.clone(),
        org: org.to_string(),
        tools,
        pending,
        error,
    }
}

/// How the org picker names a stored account: a generic server by its
/// label (or URL), a Spor account by its organization.
fn option_label(a: &Account) -> String {
    if a.kind == AccountKind::Generic {
        a.name.clone().unwrap_or_else(|| a.server.clone())
    } else {
        a.org.clone()
    }
}

/// Builds the org picker: stored accounts, plus organizations the person
/// belongs to (per a live `idp` list) that have no token yet.
pub async fn org_options(state: &AppState) -> Vec<OrgOption> {
    let Ok(accounts) = state.store.accounts().await else {
        return Vec::new();
    };
    let mut options: Vec<OrgOption> = Vec::new();
    let mut asked: Vec<String> = Vec::new();
    for a in &accounts {
        let generic = a.kind == AccountKind::Generic;
        options.push(OrgOption {
            account_id: Some(a.id.clone()),
            org: a.org.clone(),
            label: option_label(a),
            who: if generic {
                "MCP server".into()
            } else {
                a.who().unwrap_or_else(|| "unbound token".into())
            },
            server: a.server.clone(),
            rejected: a.status == AccountStatus::Rejected,
        });
        // Only Spor servers know about organizations.
        if generic {
            continue;
        }
        if a.status != AccountStatus::Valid || asked.contains(&a.server) {
            continue;
        }
        asked.push(a.server.clone());
        let Ok(Some(pat)) = state.secrets.get(a.id.clone()).await else {
            continue;
        };
        let choices = tokio::time::timeout(
            Duration::from_secs(4),
            state.upstream.org_choices(&a.server, &pat),
        )
        .await;
        match choices {
            Ok(Ok(c)) if c.source == OrgSource::Idp => {
                for choice in c.org_choices {
                    let label = choice.label.clone().unwrap_or_else(|| choice.slug.clone());
                    if let Some(o) = options
                        .iter_mut()
                        .find(|o| o.server == a.server && o.org == choice.slug)
                    {
                        o.label = label;
                    } else if !accounts
                        .iter()
                        .any(|x| x.server == a.server && x.org == choice.slug)
                    {
                        options.push(OrgOption {
                            account_id: None,
                            org: choice.slug,
                            label,
                            who: String::new(),
                            server: a.server.clone(),
                            rejected: false,
                        });
                    }
                }
            }
            // `bound`, 404, 5xx, timeouts: the stored accounts are the list.
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "org choices unavailable; using stored accounts")
            }
            Err(_) => tracing::debug!("org choices timed out; using stored accounts"),
        }
    }
    options
}
