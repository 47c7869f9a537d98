//! What happened, for UIs: a broadcast of small, secret-free facts.

use serde::Serialize;
use tokio::sync::broadcast;

/// One thing a UI may want to show.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An assistant started an authorization and waits for consent.
    ConsentRequested {
        /// Pending request id.
        id: String,
        /// Self-declared client name.
        client_name: String,
    },
    /// The user (or CLI) decided a pending request.
    ConsentDecided {
        /// Pending request id.
        id: String,
        /// Allowed or denied.
        approved: bool,
    },
    /// A new assistant connected.
    GrantCreated {
        /// Grant id.
        grant_id: String,
    },
    /// An assistant was disconnected.
    GrantRevoked {
        /// Grant id.
        grant_id: String,
    },
    /// What an assistant may do was changed.
    GrantAccessChanged {
        /// Grant id.
        grant_id: String,
    },
    /// An account was added or its token replaced.
    AccountChanged {
        /// Account id.
        account_id: String,
    },
    /// An account was removed.
    AccountRemoved {
        /// Account id.
        account_id: String,
    },
    /// The upstream rejected an account's token.
    AccountRejected {
        /// Account id.
        account_id: String,
    },
}

/// The event bus; cheap to clone. Sending with no listener is fine.
#[derive(Debug, Clone)]
pub struct Events(broadcast::Sender<Event>);

impl Default for Events {
    fn default() -> Self {
        Self(broadcast::channel(256).0)
    }
}

impl Events {
    /// Publishes an event.
    pub fn emit(&self, event: Event) {
        let _ = self.0.send(event);
    }

    /// A new receiver of future events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}
