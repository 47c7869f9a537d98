//! What the companion last heard from each upstream server when it asked
//! on the person's behalf (validating a token, the window's check), kept in
//! memory so the window can say whether a server answers without asking it
//! again: asking on a timer would keep a hosted graph from ever suspending.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::clock::Timestamp;

/// Where a fact about a server's reachability comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactSource {
    /// A token was checked while being added or replaced.
    Validation,
    /// The window asked (when it opened, or "Check now").
    Check,
    /// An assistant's call through the gateway (the call log).
    Traffic,
}

/// The outcome of one request to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// When.
    pub at: Timestamp,
    /// Whether the server answered at all (a refusal is an answer).
    pub reachable: bool,
    /// Why not, or what it said, as a sentence without secrets.
    pub message: Option<String>,
    /// What asked.
    pub source: ContactSource,
}

/// The newest [`Contact`] per server (REST base or MCP URL); clone freely.
#[derive(Debug, Clone, Default)]
pub struct Contacts {
    last: Arc<Mutex<HashMap<String, Contact>>>,
}

impl Contacts {
    /// Records a contact unless a newer one is already known.
    pub fn note(&self, server: &str, contact: Contact) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last.get(server) {
            Some(known) if known.at > contact.at => {}
            _ => {
                last.insert(server.to_string(), contact);
            }
        }
    }

    /// The newest contact with `server`, if any.
    pub fn last(&self, server: &str) -> Option<Contact> {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(server)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(at: Timestamp, reachable: bool) -> Contact {
        Contact {
            at,
            reachable,
            message: None,
            source: ContactSource::Check,
        }
    }

    #[test]
    fn the_newest_contact_wins_whatever_the_order_of_notes() {
        let c = Contacts::default();
        assert_eq!(c.last("https://a"), None);
        c.note("https://a", contact(20, false));
        c.note("https://a", contact(10, true));
        assert_eq!(c.last("https://a"), Some(contact(20, false)));
        c.note("https://a", contact(20, true));
        assert_eq!(c.last("https://a"), Some(contact(20, true)));
        assert_eq!(c.last("https://b"), None);
    }
}
