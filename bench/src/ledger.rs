//! What each crash-test client received and believes, kept across kill
//! cycles: its registrations, the codes it holds, and per grant every token
//! it was handed and whether a request was left without an answer.

use rand::rngs::StdRng;

use crate::dbcheck::{Believed, Seen, SeenGrant};
use crate::oauth::{OAuth, Pair};

/// Where a grant's revocation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Not asked for.
    None,
    /// Sent; no answer came (the daemon died).
    Unanswered,
    /// Answered `200`.
    Done,
}

/// One grant, as its client knows it.
pub struct Grant {
    /// Index of its client in [`Host::clients`].
    pub client: usize,
    /// Every access token received, oldest first.
    pub access: Vec<String>,
    /// Every refresh token received, oldest first.
    pub refresh: Vec<String>,
    /// Access tokens before this index were checked after a restart.
    pub checked: usize,
    /// A refresh of the latest refresh token got no answer.
    pub refresh_unanswered: bool,
    /// Revoked or not.
    pub revocation: Revocation,
    /// Its revocation was confirmed after a restart.
    pub revocation_checked: bool,
}

impl Grant {
    /// A grant from its first pair.
    pub fn new(client: usize, pair: Pair) -> Self {
        Grant {
            client,
            access: vec![pair.access],
            refresh: vec![pair.refresh],
            checked: 0,
            refresh_unanswered: false,
            revocation: Revocation::None,
            revocation_checked: false,
        }
    }

    /// Not revoked, nor being revoked.
    pub fn live(&self) -> bool {
        self.revocation == Revocation::None
    }

    /// The latest refresh token.
    pub fn latest_refresh(&self) -> &str {
        self.refresh.last().map(String::as_str).unwrap_or_default()
    }

    /// The latest access token.
    pub fn latest_access(&self) -> &str {
        self.access.last().map(String::as_str).unwrap_or_default()
    }

    /// Adds a pair from a refresh.
    pub fn push(&mut self, pair: Pair) {
        self.access.push(pair.access);
        self.refresh.push(pair.refresh);
    }
}

/// An authorization code a client holds.
pub struct HeldCode {
    /// Index of its client in [`Host::clients`].
    pub client: usize,
    /// The code.
    pub code: String,
    /// Its PKCE verifier.
    pub verifier: String,
    /// Presented at the token endpoint, no answer received.
    pub sent: bool,
}

/// One simulated host: its own clients, grants and codes, never shared with
/// another host, so what it believes follows from its own requests alone.
pub struct Host {
    /// Its number.
    pub no: usize,
    /// Its choices, seeded.
    pub rng: StdRng,
    /// Registered clients (each with its own connection pool).
    pub clients: Vec<OAuth>,
    /// Every grant it ever got.
    pub grants: Vec<Grant>,
    /// Codes received and not (knowingly) exchanged.
    pub codes: Vec<HeldCode>,
    /// Whether it registered in this cycle already.
    pub registered_this_cycle: bool,
}

impl Host {
    /// A host with nothing yet.
    pub fn new(no: usize, rng: StdRng) -> Self {
        Host {
            no,
            rng,
            clients: Vec::new(),
            grants: Vec::new(),
            codes: Vec::new(),
            registered_this_cycle: false,
        }
    }

    /// Indices of its live grants.
    pub fn live(&self) -> Vec<usize> {
        (0..self.grants.len())
            .filter(|&i| self.grants[i].live())
            .collect()
    }
}

/// What the database must hold for these hosts.
pub fn seen(hosts: &[Host], complete: bool) -> Seen<'_> {
    let mut s = Seen {
        complete,
        ..Seen::default()
    };
    for h in hosts {
        s.clients
            .extend(h.clients.iter().map(|c| c.client_id.as_str()));
        for k in &h.codes {
            if k.sent {
                s.sent_codes.push(&k.code);
            } else {
                s.unsent_codes.push(&k.code);
            }
        }
        for g in &h.grants {
            s.grants.push(SeenGrant {
                access: &g.access,
                refresh: &g.refresh,
                state: match g.revocation {
                    Revocation::None => Believed::Live,
                    Revocation::Done => Believed::Revoked,
                    Revocation::Unanswered => Believed::Either,
                },
            });
        }
    }
    s
}
