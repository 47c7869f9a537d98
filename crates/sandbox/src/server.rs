//! Router assembly, shared state and the serve loop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use axum::extract::{Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::faults::Faults;
use crate::requests::Requests;
use crate::sleep::Sleep;
use crate::store::{hash_token, Caller, Store};
use crate::{mcp, rest};

/// Where tests observe and steer the sandbox (no token; never counted and
/// never held by the sleeping graph). Not part of Spor's API.
pub const CONTROL_PREFIX: &str = "/_sandbox/";

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
    /// The sleeping graph (`serve --wake-delay-ms`).
    sleep: Arc<Sleep>,
    /// What was asked, for tests.
    requests: Arc<Requests>,
}

impl AppState {
    /// Wraps an open store and the active faults.
    pub fn new(store: Store, faults: Faults) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            faults,
            shutdown: CancellationToken::new(),
            remembered: None,
            sleep: Arc::default(),
            requests: Arc::default(),
        }
    }

    /// Starts asleep: the first request after an idle spell of `idle`
    /// (and any arriving while it wakes) is answered after `wake_delay`.
    pub fn sleeping(mut self, wake_delay: Duration, idle: Duration) -> Self {
        self.sleep = Arc::new(Sleep::new(Some(wake_delay), idle));
        self
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

/// The whole HTTP surface: `/v1` REST and the `/mcp` endpoint, and the
/// test controls under [`CONTROL_PREFIX`].
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(rest::routes())
        .merge(mcp::routes(&state))
        .route("/_sandbox/requests", get(requests))
        .route("/_sandbox/sleep", post(sleep_now))
        .fallback(rest::not_found)
        .method_not_allowed_fallback(rest::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), traffic))
        .with_state(state)
}

/// Counts each request to the API and holds it while the graph wakes.
async fn traffic(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !path.starts_with(CONTROL_PREFIX) {
        state.requests.count(req.method().as_str(), &path);
        if let Some(ready) = state.sleep.admit(tokio::time::Instant::now()) {
            tokio::time::sleep_until(ready).await;
        }
    }
    next.run(req).await
}

/// `GET /_sandbox/requests`: `{"count": N, "requests": {"GET /v1/me": n, …}}`.
async fn requests(State(state): State<AppState>) -> Json<Value> {
    let (by_route, total) = state.requests.snapshot();
    Json(json!({ "count": total, "requests": by_route }))
}

/// Query of `POST /_sandbox/sleep`.
#[derive(Deserialize)]
struct SleepQuery {
    wake_ms: Option<u64>,
}

/// `POST /_sandbox/sleep[?wake_ms=N]`: the graph sleeps now (with another
/// wake delay, if given).
async fn sleep_now(
    State(state): State<AppState>,
    query: Result<Query<SleepQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query
        .map_err(|_| ApiError::bad_request("wake_ms must be a whole number of milliseconds"))?;
    let delay = state.sleep.sleep_now(q.wake_ms.map(Duration::from_millis));
    Ok(Json(json!({
        "asleep": delay.is_some(),
        "wake_ms": delay.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    })))
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
