//! The broker of pending authorization requests: each waits here between
//! `/oauth/authorize` and the person's decision, wherever it is made, and
//! the decided redirect waits for the one page that knows its CSRF token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::requester::Requester;
use crate::clock::Timestamp;
use crate::events::{Event, Events};
use crate::sensitive::Sensitive;
use crate::tokens;

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
    /// The programs behind the request, as the OS tells.
    pub requester: Requester,
    /// The host whose metadata document names the client (CIMD); `None`
    /// when the name is the client's own claim.
    pub verified_by: Option<String>,
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
    /// The programs behind it, as the OS tells.
    pub requester: Requester,
    /// The host that vouches for the name, if any.
    pub verified_by: Option<String>,
}

/// Where a decided request sends the browser.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The redirect URL (carries the code on approval).
    pub redirect: Sensitive<String>,
    /// Whether it was approved.
    pub approved: bool,
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
                    requester: r.requester.clone(),
                    verified_by: r.verified_by.clone(),
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
    pub(super) fn decide(
        &self,
        id: &str,
        decision: Decision,
        now: Timestamp,
    ) -> Option<PendingRequest> {
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
