//! Adding, replacing and removing accounts: validation upstream, the PAT into
//! the secret store, metadata into SQLite — and nothing stored on failure.

use serde::Serialize;

use crate::events::Event;
use crate::secrets::SecretError;
use crate::sensitive::Sensitive;
use crate::state::AppState;
use crate::store::{Account, AccountKind, NewAccount, RejectReason, StoreError};
use crate::tokens;
use crate::upstream::{normalize_server_url, ContactSource, UpstreamError};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The text pasted is not a Spor PAT.
    #[error("that is not a Spor personal access token (they start with spor_pat_)")]
    NotAPat,
    /// The server URL or MCP URL is unusable.
    #[error("{0}")]
    InvalidUrl(String),
    /// The server refused the token; its own reason is included.
    #[error("the server rejected this token: {0}")]
    Rejected(String),
    /// The server could not be asked.
    #[error("{0}")]
    Upstream(UpstreamError),
    /// The server took longer than the bound to answer; a slow wake is not
    /// a refusal, so nothing is counted against the token.
    #[error("no answer from {url} within {secs} s. A Spor graph that was asleep can take up to about a minute to wake up; nothing was stored, so try again")]
    TimedOut {
        /// What was asked.
        url: String,
        /// How long it was given.
        secs: u64,
    },
    /// The secret store failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such account.
    #[error("no account with id {0}")]
    NotFound(String),
    /// A generic token that cannot be a bearer token.
    #[error("that token is empty, too long or contains spaces")]
    InvalidToken,
    /// A generic upstream needs a label.
    #[error("the label must be 1 to 100 printable characters")]
    InvalidLabel,
    /// Too many rejected pastes in the last minute.
    #[error(
        "too many rejected tokens in the last minute; wait a minute, then paste the token again"
    )]
    TooManyPastes,
    /// The consent page named a server other than the ones already in use.
    #[error("this page adds tokens only for the Spor server already in use ({}); add a token for another server in the Spor Companion app or with spor-companiond account add", .0.join(", "))]
    ServerNotAllowed(Vec<String>),
    /// The consent page named an MCP URL once a server was in use.
    #[error("this page takes an MCP URL only while no Spor server is in use; set another MCP URL in the Spor Companion app or with spor-companiond account add --mcp-url")]
    McpUrlNotAllowed,
    /// A replacement token belongs to another organization.
    #[error("this token is for the organization {found}, not {expected}; add it as a new account instead")]
    WrongOrg {
        /// The account's org.
        expected: String,
        /// The token's org.
        found: String,
    },
    /// The same PAT is already stored for another account.
    #[error("this token is already stored as account {0}")]
    Duplicate(String),
}

impl AccountError {
    /// The stable code the window reports.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAPat | Self::InvalidToken => "not_a_token",
            Self::InvalidUrl(_) => "invalid_url",
            Self::Rejected(_) => "token_rejected",
            Self::Upstream(UpstreamError::Unreachable { .. }) => "unreachable",
            Self::TimedOut { .. } | Self::Upstream(UpstreamError::Timeout { .. }) => "timeout",
            Self::Upstream(_) => "upstream",
            Self::Secret(_) => "keychain",
            Self::Store(_) => "storage",
            Self::NotFound(_) => "not_found",
            Self::InvalidLabel => "invalid_label",
            Self::Duplicate(_) => "duplicate",
            Self::TooManyPastes => "rate_limited",
            Self::ServerNotAllowed(_) => "server_not_allowed",
            Self::McpUrlNotAllowed => "mcp_url_not_allowed",
            Self::WrongOrg { .. } => "wrong_org",
        }
    }
}

impl From<UpstreamError> for AccountError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::InvalidUrl(m) => Self::InvalidUrl(m),
            UpstreamError::Rejected { message, .. } => Self::Rejected(message),
            UpstreamError::Timeout { url, secs } => Self::TimedOut { url, secs },
            other => Self::Upstream(other),
        }
    }
}

/// The result of adding a PAT.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    /// The account as stored.
    pub account: Account,
    /// Whether an older PAT for the same server and org was replaced.
    pub replaced: bool,
    /// Assistants disconnected because their grants came from the old PAT.
    pub revoked_grants: Vec<String>,
    /// Things the user should know (e.g. an unbound token).
    pub warnings: Vec<String>,
}

/// The result of removing an account.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    /// Assistants disconnected.
    pub revoked_grants: Vec<String>,
    /// Whether the PAT was also revoked on the server.
    pub revoked_upstream: bool,
}

/// A PAT pasted by the person at a consent screen or in the app: for
/// `server`, or the server already known when none is given, or hosted Spor
/// when none is known; `mcp_url` when the person set one. Rejected pastes
/// are counted, and refused once too many came in a minute (brute force).
pub async fn paste_token(
    state: &AppState,
    server: Option<&str>,
    mcp_url: Option<&str>,
    pat: Sensitive<String>,
) -> Result<Added, AccountError> {
    counted_paste(state, async {
        let server = match filled(server) {
            Some(s) => s.to_string(),
            None => new_token_server(state).await,
        };
        add_spor_account(state, &server, filled(mcp_url), pat).await
    })
    .await
}

/// A PAT pasted on the consent page. Whoever holds a request id can post
/// that form, so once a server is known (configured, or any stored Spor
/// account's) the token goes to a known one only: naming another is
/// `ServerNotAllowed` and naming an MCP URL `McpUrlNotAllowed`, both before
/// anything is sent or stored, and naming none means the first known one.
/// With no server known, as [`paste_token`].
pub async fn paste_token_on_page(
    state: &AppState,
    server: Option<&str>,
    mcp_url: Option<&str>,
    pat: Sensitive<String>,
) -> Result<Added, AccountError> {
    let known = known_servers(state).await?;
    let named = filled(server);
    let server = match (known.first(), named) {
        (None, named) => named.map(str::to_string),
        (Some(first), None) => Some(first.clone()),
        (Some(_), Some(named)) => match normalize_server_url(named) {
            Ok(n) if known.contains(&n) => Some(n),
            _ => return Err(AccountError::ServerNotAllowed(known)),
        },
    };
    if !known.is_empty() && filled(mcp_url).is_some() {
        return Err(AccountError::McpUrlNotAllowed);
    }
    paste_token(state, server.as_deref(), mcp_url, pat).await
}

/// A form field with something in it.
fn filled(field: Option<&str>) -> Option<&str> {
    field.map(str::trim).filter(|s| !s.is_empty())
}

/// The server a new token is for when the person names none: the one
/// already in use, else hosted Spor.
pub async fn new_token_server(state: &AppState) -> String {
    match known_server(state).await {
        Some(s) => s,
        None => state.upstream.hosted().default_spor().rest.clone(),
    }
}

/// Runs a paste unless too many were rejected in the last minute, and
/// counts it when the token was refused or malformed (brute force).
async fn counted_paste(
    state: &AppState,
    paste: impl std::future::Future<Output = Result<Added, AccountError>>,
) -> Result<Added, AccountError> {
    if !state
        .pastes
        .allowed(state.now(), state.limits.rejected_pastes_per_minute)
    {
        return Err(AccountError::TooManyPastes);
    }
    let result = paste.await;
    if matches!(
        result,
        Err(AccountError::Rejected(_) | AccountError::NotAPat | AccountError::InvalidToken)
    ) {
        state.pastes.note_rejected(state.now());
    }
    result
}

/// Replaces the token of a stored account with a new one for the same
/// server and organization; the old token's assistants are disconnected.
pub async fn replace_token(
    state: &AppState,
    account_id: &str,
    pat: Sensitive<String>,
) -> Result<Added, AccountError> {
    counted_paste(state, async {
        let account = state
            .store
            .account(account_id.to_string())
            .await?
            .ok_or_else(|| AccountError::NotFound(account_id.to_string()))?;
        let pat = trimmed(pat);
        match account.kind {
            AccountKind::Spor => {
                match validate_spor(state, &account.server, Some(&account.mcp_url), &pat).await {
                    Ok((new, _)) if new.org != account.org => Err(AccountError::WrongOrg {
                        expected: account.org.clone(),
                        found: new.org,
                    }),
                    Ok((new, warnings)) => store_validated(state, new, pat, warnings).await,
                    Err(e) => Err(e),
                }
            }
            AccountKind::Generic => {
                let label = account
                    .name
                    .clone()
                    .unwrap_or_else(|| account.server.clone());
                add_generic_account(state, &account.mcp_url, &label, pat).await
            }
        }
    })
    .await
}

/// Validates a PAT with `GET /v1/me` and stores it (new account, or replacing
/// the PAT of the same server and org). Nothing is stored if any step fails.
pub async fn add_spor_account(
    state: &AppState,
    server: &str,
    mcp_url: Option<&str>,
    pat: Sensitive<String>,
) -> Result<Added, AccountError> {
    validate_spor_account(state, server, mcp_url, pat)
        .await?
        .store(state)
        .await
}

/// A Spor token the server has vouched for, not yet stored: the network
/// wait and the keychain write are separate steps so a caller can say which
/// one it is waiting for.
pub struct ValidatedAccount {
    new: NewAccount,
    pat: Sensitive<String>,
    warnings: Vec<String>,
}

/// Checks a pasted Spor token against its server (which may be waking up);
/// stores nothing.
pub async fn validate_spor_account(
    state: &AppState,
    server: &str,
    mcp_url: Option<&str>,
    pat: Sensitive<String>,
) -> Result<ValidatedAccount, AccountError> {
    let pat = trimmed(pat);
    let (new, warnings) = validate_spor(state, server, mcp_url, &pat).await?;
    Ok(ValidatedAccount { new, pat, warnings })
}

impl ValidatedAccount {
    /// Stores the token in the secret store and the account row.
    pub async fn store(self, state: &AppState) -> Result<Added, AccountError> {
        store_validated(state, self.new, self.pat, self.warnings).await
    }
}

/// Pasted text often carries a stray newline or space.
fn trimmed(pat: Sensitive<String>) -> Sensitive<String> {
    Sensitive::new(pat.expose().trim().to_string())
}

/// Checks a PAT's shape (already trimmed) and asks the server who it belongs to; stores nothing.
async fn validate_spor(
    state: &AppState,
    server: &str,
    mcp_url: Option<&str>,
    pat: &Sensitive<String>,
) -> Result<(NewAccount, Vec<String>), AccountError> {
    if !pat.expose().starts_with(tokens::PAT_PREFIX)
        || pat.expose().len() < tokens::PAT_PREFIX.len() + 16
    {
        return Err(AccountError::NotAPat);
    }
    let server = normalize_server_url(server)?;
    let mcp_url = match mcp_url {
        Some(u) => normalize_server_url(u)?,
        None => default_mcp_url(state, &server).await?,
    };
    let me = state.upstream.me(&server, pat).await;
    state
        .upstream
        .note(&server, state.now(), ContactSource::Validation, &me);
    let me = me?;
    let mut warnings = Vec::new();
    if !me.bound {
        warnings.push(
            "this token is not bound to a person: what assistants write will not be attributed to you".into(),
        );
    }
    let new = NewAccount {
        kind: AccountKind::Spor,
        server,
        mcp_url,
        org: me.org,
        person: me.person,
        name: me.name,
        email: me.email,
        bound: me.bound,
        is_admin: me.is_admin,
        pat_hash: tokens::hash(pat.expose()),
    };
    Ok((new, warnings))
}

/// The MCP endpoint of a Spor server when the person gives none: the one
/// its stored accounts already use (set once, e.g. with `--mcp-url`), else
/// hosted Spor's own, else `server/mcp`.
async fn default_mcp_url(state: &AppState, server: &str) -> Result<String, StoreError> {
    let stored = state
        .store
        .accounts()
        .await?
        .into_iter()
        .find(|a| a.kind == AccountKind::Spor && a.server == server);
    Ok(match stored {
        Some(a) => a.mcp_url,
        None => state.upstream.default_mcp_url(server),
    })
}

/// Stores a validated token: the secret first, then the row (replacing the
/// same server and org), putting the secret store back if the row fails.
async fn store_validated(
    state: &AppState,
    new: NewAccount,
    pat: Sensitive<String>,
    warnings: Vec<String>,
) -> Result<Added, AccountError> {
    if let Some(other) = state
        .store
        .account_by_pat_hash(new.pat_hash.clone())
        .await?
    {
        if other.server != new.server || other.org != new.org {
            return Err(AccountError::Duplicate(other.id));
        }
    }
    let existing = state
        .store
        .account_for(new.server.clone(), new.org.clone())
        .await?;
    let id = existing
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_else(|| format!("acct_{}", tokens::random_hex(6)));
    let previous = match &existing {
        Some(a) => state.secrets.get(a.id.clone()).await?,
        None => None,
    };
    state.secrets.set(id.clone(), pat).await?;
    let upserted = match state
        .store
        .upsert_account(id.clone(), new, state.now())
        .await
    {
        Ok(u) => u,
        Err(e) => {
            // Put the secret store back as it was.
            let undo = match previous {
                Some(old) => state.secrets.set(id, old).await,
                None => state.secrets.delete(id).await,
            };
            if let Err(undo) = undo {
                tracing::error!(error = %undo, "could not restore the secret store after a failed account write");
            }
            return Err(e.into());
        }
    };
    for g in &upserted.revoked_grants {
        state.events.emit(Event::GrantRevoked {
            grant_id: g.clone(),
        });
    }
    state.events.emit(Event::AccountChanged {
        account_id: upserted.account.id.clone(),
    });
    tracing::info!(account = %upserted.account.id, org = %upserted.account.org, replaced = existing.is_some(), "account stored");
    Ok(Added {
        replaced: existing.is_some(),
        account: upserted.account,
        revoked_grants: upserted.revoked_grants,
        warnings,
    })
}

/// Longest label of a generic upstream.
const MAX_LABEL: usize = 100;

/// Validates a token for any bearer-token MCP server with an MCP
/// `initialize` and stores it as a generic account (one implicit org).
pub async fn add_generic_account(
    state: &AppState,
    mcp_url: &str,
    label: &str,
    token: Sensitive<String>,
) -> Result<Added, AccountError> {
    let token = Sensitive::new(token.expose().trim().to_string());
    let t = token.expose();
    if t.is_empty() || t.len() > 4096 || !t.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AccountError::InvalidToken);
    }
    let label = label.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL || label.chars().any(char::is_control)
    {
        return Err(AccountError::InvalidLabel);
    }
    let mcp_url = normalize_server_url(mcp_url)?;
    let checked = state.upstream.mcp_initialize(&mcp_url, &token).await;
    state
        .upstream
        .note(&mcp_url, state.now(), ContactSource::Validation, &checked);
    checked?;
    let new = NewAccount {
        kind: AccountKind::Generic,
        server: mcp_url.clone(),
        mcp_url,
        org: GENERIC_ORG.into(),
        person: None,
        name: Some(label.to_string()),
        email: None,
        bound: false,
        is_admin: false,
        pat_hash: tokens::hash(token.expose()),
    };
    store_validated(state, new, token, Vec::new()).await
}

/// The one organization of a generic upstream.
pub const GENERIC_ORG: &str = "default";

/// Removes an account: optionally revokes the PAT on the server first (and
/// stops if that fails), then revokes every grant minted from it and deletes
/// the metadata in one transaction, then forgets the PAT.
pub async fn remove_account(
    state: &AppState,
    id: &str,
    revoke_upstream: bool,
) -> Result<Removed, AccountError> {
    let account = state
        .store
        .account(id.to_string())
        .await?
        .ok_or_else(|| AccountError::NotFound(id.to_string()))?;
    if revoke_upstream {
        let pat = state
            .secrets
            .get(account.id.clone())
            .await?
            .ok_or_else(|| {
                AccountError::Upstream(UpstreamError::NotFound(
                    "the token is missing from the secret store".into(),
                ))
            })?;
        match state.upstream.revoke_own_token(&account.server, &pat).await {
            Ok(()) => {}
            // Already dead on the server: nothing left to revoke there.
            Err(UpstreamError::Rejected { status: 401, .. }) => {}
            Err(e) => return Err(AccountError::Upstream(e)),
        }
    }
    // Forget the PAT first and put it back if the database refuses, so a
    // failure never leaves a PAT without its account.
    let saved = state.secrets.get(account.id.clone()).await?;
    state.secrets.delete(account.id.clone()).await?;
    let revoked = match state
        .store
        .remove_account(account.id.clone(), state.now())
        .await
    {
        Ok(Some(revoked)) => revoked,
        other => {
            if let Some(pat) = saved {
                if let Err(undo) = state.secrets.set(account.id.clone(), pat).await {
                    tracing::error!(error = %undo, "could not restore the secret store after a failed removal");
                }
            }
            return Err(match other {
                Err(e) => e.into(),
                _ => AccountError::NotFound(id.to_string()),
            });
        }
    };
    for g in &revoked {
        state.events.emit(Event::GrantRevoked {
            grant_id: g.clone(),
        });
    }
    state.events.emit(Event::AccountRemoved {
        account_id: account.id.clone(),
    });
    tracing::info!(account = %account.id, grants_revoked = revoked.len(), "account removed");
    Ok(Removed {
        revoked_grants: revoked,
        revoked_upstream: revoke_upstream,
    })
}

/// The upstream refused an account's token: marks it rejected (or expired)
/// and ends every grant minted from it in one transaction, then tells the
/// listeners (open streams end, windows update). Returns the ended grants.
pub async fn reject(
    state: &AppState,
    account_id: &str,
    reason: RejectReason,
) -> Result<Vec<String>, StoreError> {
    let revoked = state
        .store
        .reject_account(account_id.to_string(), reason, state.now())
        .await?;
    for g in &revoked {
        state.events.emit(Event::GrantRevoked {
            grant_id: g.clone(),
        });
    }
    state.events.emit(Event::AccountRejected {
        account_id: account_id.to_string(),
    });
    tracing::warn!(account = %account_id, grants_revoked = revoked.len(), "the upstream rejected the stored token; its grants were revoked");
    Ok(revoked)
}

/// The server a new token is for when the form does not name one: the
/// first of [`known_servers`], if the database can be read.
pub async fn known_server(state: &AppState) -> Option<String> {
    known_servers(state).await.ok()?.into_iter().next()
}

/// The Spor servers already in use: the configured default first, then
/// those of the stored Spor accounts (generic upstreams are MCP URLs, not
/// Spor servers), each once.
pub async fn known_servers(state: &AppState) -> Result<Vec<String>, StoreError> {
    let mut known: Vec<String> = state.config.default_server.iter().cloned().collect();
    for a in state.store.accounts().await? {
        if a.kind == AccountKind::Spor && !known.contains(&a.server) {
            known.push(a.server);
        }
    }
    Ok(known)
}
