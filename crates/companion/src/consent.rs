//! Pending authorization requests between `/oauth/authorize` and the user's
//! decision, wherever it is made (browser page, CLI, desktop window).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::clock::Timestamp;
use crate::events::{Event, Events};
use crate::sensitive::Sensitive;
use crate::state::AppState;
use crate::store::{AccountKind, AccountStatus, NewCode, StoreError};
use crate::tokens;

/// Authorization codes live ten minutes.
pub const CODE_TTL: i64 = 600;
/// A pending request waits this long for a decision.
pub const PENDING_TTL: i64 = 600;
/// At most this many requests wait at once; the oldest is dropped beyond it.
const MAX_PENDING: usize = 64;

/// A validated authorization request waiting for the user.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    /// Random id; also in the consent page URL.
    pub id: String,
    /// Client id.
    pub client_id: String,
    /// Self-declared client name.
    pub client_name: String,
    /// Where the browser goes afterwards.
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (else the only registered one).
    pub redirect_sent: bool,
    /// The redirect URI's host (and port), shown to the user.
    pub redirect_host: String,
    /// The client's `state`, returned untouched.
    pub state: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Requested scope.
    pub scope: String,
    /// Requested `resource`, if any.
    pub resource: Option<String>,
    /// Our issuer as the client spelled it; goes back as `iss`.
    pub issuer: String,
    /// When the request arrived.
    pub created_at: Timestamp,
    /// Ties the page's forms to this request.
    pub csrf: Sensitive<String>,
}

/// A pending request as lists show it (no secrets).
#[derive(Debug, Clone, Serialize)]
pub struct PendingSummary {
    /// Request id.
    pub id: String,
    /// Client id.
    pub client_id: String,
    /// Self-declared client name.
    pub client_name: String,
    /// Redirect host.
    pub redirect_host: String,
    /// When it arrived.
    pub created_at: Timestamp,
}

/// Where a decided request sends the browser.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The redirect URL (carries the code on approval).
    pub redirect: Sensitive<String>,
    /// Whether it was approved.
    pub approved: bool,
}

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

enum Slot {
    Waiting(Box<PendingRequest>),
    Decided {
        decision: Decision,
        csrf: Sensitive<String>,
        at: Timestamp,
    },
}

/// The broker of pending requests; cheap to clone.
#[derive(Clone)]
pub struct Consent {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
    events: Events,
}

impl std::fmt::Debug for Consent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Consent")
    }
}

impl Consent {
    /// An empty broker that reports on `events`.
    pub fn new(events: Events) -> Self {
        Self {
            slots: Arc::default(),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sweep(slots: &mut HashMap<String, Slot>, now: Timestamp) {
        slots.retain(|_, s| match s {
            Slot::Waiting(r) => now - r.created_at < PENDING_TTL,
            Slot::Decided { at, .. } => now - *at < PENDING_TTL,
        });
        while slots.len() >= MAX_PENDING {
            let oldest = slots
                .iter()
                .min_by_key(|(_, s)| match s {
                    Slot::Waiting(r) => r.created_at,
                    Slot::Decided { at, .. } => *at,
                })
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => slots.remove(&k),
                None => break,
            };
        }
    }

    /// Queues a validated request and announces it.
    pub fn submit(&self, request: PendingRequest, now: Timestamp) {
        let event = Event::ConsentRequested {
            id: request.id.clone(),
            client_name: request.client_name.clone(),
        };
        {
            let mut slots = self.lock();
            Self::sweep(&mut slots, now);
            slots.insert(request.id.clone(), Slot::Waiting(Box::new(request)));
        }
        self.events.emit(event);
    }

    /// The waiting request with this id.
    pub fn pending(&self, id: &str, now: Timestamp) -> Option<PendingRequest> {
        match self.lock().get(id) {
            Some(Slot::Waiting(r)) if now - r.created_at < PENDING_TTL => Some((**r).clone()),
            _ => None,
        }
    }

    /// Every waiting request, oldest first.
    pub fn list(&self, now: Timestamp) -> Vec<PendingSummary> {
        let mut out: Vec<_> = self
            .lock()
            .values()
            .filter_map(|s| match s {
                Slot::Waiting(r) if now - r.created_at < PENDING_TTL => Some(PendingSummary {
                    id: r.id.clone(),
                    client_id: r.client_id.clone(),
                    client_name: r.client_name.clone(),
                    redirect_host: r.redirect_host.clone(),
                    created_at: r.created_at,
                }),
                _ => None,
            })
            .collect();
        out.sort_by_key(|s| s.created_at);
        out
    }

    /// The decision for `id`, if made, for the page that knows its CSRF token.
    /// Handing it out consumes it: the code travels to one browser only.
    pub fn take_decision(&self, id: &str, csrf: &str) -> Option<Decision> {
        let mut slots = self.lock();
        match slots.get(id) {
            Some(Slot::Decided { csrf: c, .. }) if tokens::constant_time_eq(c.expose(), csrf) => {}
            _ => return None,
        }
        match slots.remove(id) {
            Some(Slot::Decided { decision, .. }) => Some(decision),
            _ => None,
        }
    }

    /// Whether the request is still waiting (the page polls this).
    pub fn is_waiting(&self, id: &str, csrf: &str, now: Timestamp) -> bool {
        matches!(self.lock().get(id), Some(Slot::Waiting(r)) if now - r.created_at < PENDING_TTL && tokens::constant_time_eq(r.csrf.expose(), csrf))
    }

    /// Moves a waiting request to decided; `None` if it was not waiting.
    fn decide(&self, id: &str, decision: Decision, now: Timestamp) -> Option<PendingRequest> {
        let mut slots = self.lock();
        let Some(Slot::Waiting(req)) = slots.remove(id) else {
            return None;
        };
        slots.insert(
            id.to_string(),
            Slot::Decided {
                decision,
                csrf: req.csrf.clone(),
                at: now,
            },
        );
        Some(*req)
    }
}

/// Builds the client redirect: its URI plus our parameters, then `state` and `iss`.
pub fn client_redirect(
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
                if let Some(s) = state {
                    q.append_pair("state", s);
                }
                q.append_pair("iss", issuer);
            }
            url.to_string()
        }
        // Registered URIs were parsed at registration; this cannot happen.
        Err(_) => redirect_uri.to_string(),
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
    state
        .consent
        .decide(id, decision.clone(), now)
        .ok_or(ConsentError::UnknownRequest)?;
    state.events.emit(Event::ConsentDecided {
        id: id.to_string(),
        approved: true,
    });
    tracing::info!(request = %id, client = %request.client_id, account = %account_id, "authorization approved");
    Ok(decision)
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
    state
        .consent
        .decide(id, decision.clone(), now)
        .ok_or(ConsentError::UnknownRequest)?;
    state.events.emit(Event::ConsentDecided {
        id: id.to_string(),
        approved: false,
    });
    tracing::info!(request = %id, client = %request.client_id, "authorization denied");
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
            label: if generic {
                a.name.clone().unwrap_or_else(|| a.server.clone())
            } else {
                a.org.clone()
            },
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
        let Ok(Some(pat)) = state.secrets.get_async(a.id.clone()).await else {
            continue;
        };
        let choices = tokio::time::timeout(
            Duration::from_secs(4),
            state.upstream.org_choices(&a.server, &pat),
        )
        .await;
        match choices {
            Ok(Ok(c)) if c.source == "idp" => {
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

/// The server a new token is for when the form does not name one.
pub async fn known_server(state: &AppState) -> Option<String> {
    if let Some(s) = &state.config.default_server {
        return Some(s.clone());
    }
    state
        .store
        .accounts()
        .await
        .ok()?
        .into_iter()
        .next()
        .map(|a| a.server)
}
