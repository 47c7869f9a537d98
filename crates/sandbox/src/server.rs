//! Router assembly, shared state and the serve loop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use axum::serve::ListenerExt as _;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::faults::Faults;
use crate::store::{hash_token, Caller, Store};
use crate::{mcp, rest};

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    store: Arc<Mutex<Store>>,
    /// Faults switched on for this run.
    pub faults: Faults,
    /// Cancelled when the server shuts down, ending long-lived MCP streams.
    shutdown: CancellationToken,
    /// Token hash → holder, for `serve --remember-tokens`.
    remembered: Option<Arc<Mutex<HashMap<String, Caller>>>>,
}

impl AppState {
    /// Wraps an open store and the active faults.
    pub fn new(store: Store, faults: Faults) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            faults,
            shutdown: CancellationToken::new(),
            remembered: None,
        }
    }

    /// Accepts a token found live once without asking the database again
    /// (and without recording its use). Benchmarks use it so the stand-in
    /// upstream is not the bottleneck; a token revoked later stays accepted
    /// until restart, so nothing else should.
    pub fn remembering_tokens(mut self) -> Self {
        self.remembered = Some(Arc::default());
        self
    }

    /// The holder of a remembered token, in `--remember-tokens` mode (the
    /// token is hashed only in that mode).
    pub(crate) fn remembered(&self, token: &str) -> Option<Caller> {
        let map = self.remembered.as_ref()?;
        map.lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash_token(token))
            .cloned()
    }

    /// Remembers a live token's holder, in `--remember-tokens` mode.
    pub(crate) fn remember(&self, caller: &Caller) {
        if let Some(map) = &self.remembered {
            map.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(caller.token_hash.clone(), caller.clone());
        }
    }

    /// Cancelled once `serve` begins its graceful shutdown.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Runs `f` on the store off the async runtime (SQLite calls block).
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> anyhow::Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let joined = tokio::task::spawn_blocking(move || {
            // A panic elsewhere must not wedge the sandbox; the connection
            // itself stays consistent because every write is one statement
            // or one transaction.
            let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await;
        match joined {
            Ok(res) => res.map_err(ApiError::from),
            Err(e) => Err(ApiError::internal(&anyhow!("store task failed: {e}"))),
        }
    }
}

/// The whole HTTP surface: `/v1` REST and the `/mcp` endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(rest::routes())
        .merge(mcp::routes(&state))
        .fallback(rest::not_found)
        .method_not_allowed_fallback(rest::method_not_allowed)
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown_token().clone();
    let shutdown = async move {
        shutdown.await;
        // Open SSE streams (an MCP client's GET stream never ends by itself)
        // would otherwise keep graceful shutdown waiting forever.
        token.cancel();
    };
    // SSE events and chunk ends are small writes; without TCP_NODELAY each
    // waits for the client's delayed ACK (~40 ms).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
