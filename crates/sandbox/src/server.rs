//! Router assembly, shared state and the serve loop.

use std::future::Future;
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::faults::Faults;
use crate::store::Store;
use crate::{mcp, rest};

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    store: Arc<Mutex<Store>>,
    /// Faults switched on for this run.
    pub faults: Faults,
    /// Cancelled when the server shuts down, ending long-lived MCP streams.
    shutdown: CancellationToken,
}

impl AppState {
    /// Wraps an open store and the active faults.
    pub fn new(store: Store, faults: Faults) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            faults,
            shutdown: CancellationToken::new(),
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
