//! The gateway's shared state: who a call acts for, the caches, the MCP
//! sessions bound to their principals, and what ends a principal's open
//! streams. Held by `AppState`; knows nothing of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::cache::{AccessCache, PatCache, UrlCache};
use super::calllog::CallLog;
use super::catalogue::Catalogue;
use crate::access::Access;
use crate::events::{Event, Events};
use crate::store::GRANT_PRINCIPAL;

/// How long the upstream may take to send response headers by default.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an upstream response body may send nothing by default before
/// the companion gives up on it (see `relay`); listen streams have no such
/// bound.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Who a `/mcp` call acts for: a grant, or (custom agents) an account's own
/// PAT. Sessions and live streams are keyed by [`Principal::key`].
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// An assistant, with what the person lets it do.
    Grant { grant_id: String, access: Access },
    /// The account's own PAT: everything.
    Pat { account_id: String },
}

impl Principal {
    pub(crate) fn key(&self) -> String {
        match self {
            Self::Grant { grant_id, .. } => grant_key(grant_id),
            Self::Pat { account_id } => format!("pat:{account_id}"),
        }
    }

    pub(crate) fn grant_id(&self) -> Option<&str> {
        match self {
            Self::Grant { grant_id, .. } => Some(grant_id),
            Self::Pat { .. } => None,
        }
    }

    /// What it may do with the account's tools.
    pub(crate) fn access(&self) -> &Access {
        static FULL: Access = Access::Full;
        match self {
            Self::Grant { access, .. } => access,
            Self::Pat { .. } => &FULL,
        }
    }
}

/// The principal key of a grant.
fn grant_key(grant_id: &str) -> String {
    format!("{GRANT_PRINCIPAL}{grant_id}")
}

/// Forwarding state shared by all `/mcp` calls; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) pats: PatCache,
    /// Valid access tokens, while the database has not changed since.
    pub(crate) access: AccessCache,
    /// Where forwarded calls are logged, in batches.
    pub calls: CallLog,
    /// Each account's tools and their annotations, for the access policy.
    pub catalogue: Catalogue,
    pub(crate) http: reqwest::Client,
    /// Accounts' MCP URLs, parsed.
    pub(crate) urls: UrlCache,
    pub(crate) header_timeout: Duration,
    /// How long a response body may send nothing before it is ended.
    pub(crate) stream_idle_timeout: Duration,
    /// Session-id hash → principal key; the database has the same, for restarts.
    pub(crate) sessions: Arc<Mutex<HashMap<String, String>>>,
    /// Principal key → what cancels its open response streams.
    streams: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("header_timeout", &self.header_timeout)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for Gateway {
    fn default() -> Self {
        Self::new(DEFAULT_HEADER_TIMEOUT)
    }
}

impl Gateway {
    /// A gateway whose upstream must answer with headers within `header_timeout`.
    pub fn new(header_timeout: Duration) -> Self {
        // Bounded connect, no overall timeout (streams may stay open for
        // hours), no redirects (they could carry the PAT elsewhere). TCP
        // keep-alive finds an upstream machine that vanished without
        // closing its connections within about two minutes: the one bound
        // on a listen stream, which has no idle bound (see `relay`).
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_keepalive(Duration::from_secs(60))
            .tcp_keepalive_interval(Duration::from_secs(15))
            .tcp_keepalive_retries(4)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("spor-companion/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            pats: PatCache::default(),
            access: AccessCache::default(),
            calls: CallLog::default(),
            catalogue: Catalogue::default(),
            http,
            urls: UrlCache::default(),
            header_timeout,
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            sessions: Arc::default(),
            streams: Arc::default(),
        }
    }

    /// The same gateway, ending response bodies that send nothing for `idle`.
    pub fn with_stream_idle_timeout(mut self, idle: Duration) -> Self {
        self.stream_idle_timeout = idle;
        self
    }

    /// The token that ends this principal's open streams.
    pub(crate) fn stream_token(&self, principal: &Principal) -> CancellationToken {
        let mut map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(principal.key()).or_default().clone()
    }

    /// Ends every open stream of a principal at once and forgets its
    /// sessions here (the database keeps them; a revoked principal's token
    /// is refused before its sessions are looked at), so the map holds live
    /// principals' sessions only.
    fn end(&self, key: &str) {
        let token = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        if let Some(t) = token {
            t.cancel();
        }
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, owner| owner != key);
    }

    /// Ends every open stream; graceful shutdown would otherwise wait for
    /// long-lived SSE streams forever.
    pub fn end_all(&self) {
        let all: Vec<_> = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, t) in all {
            t.cancel();
        }
    }

    /// Ends streams as grants are revoked and accounts removed or rejected;
    /// runs for the life of the server.
    pub async fn follow_events(self, events: Events) {
        let mut events = events.subscribe();
        loop {
            match events.recv().await {
                Ok(Event::GrantRevoked { grant_id }) => self.end(&grant_key(&grant_id)),
                Ok(
                    Event::AccountRemoved { account_id } | Event::AccountRejected { account_id },
                ) => self.end(&Principal::Pat { account_id }.key()),
                Ok(_) => {}
                // Missed events: end nothing blindly; the bearer check still
                // refuses every later request of a revoked grant.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event listener lagged")
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    }
}
