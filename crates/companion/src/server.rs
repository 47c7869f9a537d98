//! Router assembly, the guards and `serve`: the single entry point the
//! daemon, the desktop app and the tests all call. The peer guard admits
//! only connections from the companion's own OS user; the loopback guard
//! stops DNS rebinding and cross-origin pages.

use std::future::Future;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tokio::time::Instant;

use crate::gateway;
use crate::host::{is_loopback_name, LocalHost};
use crate::listener::{Loopback, Peer};
use crate::oauth;
use crate::peer::Owner;
use crate::state::AppState;

fn refuse(status: StatusCode, why: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": "forbidden", "error_description": why })),
    )
        .into_response()
}

/// The host a request names, from `Host` (HTTP/1.1) or the URI authority (HTTP/2).
fn request_host(req: &Request) -> Option<String> {
    if let Some(h) = req.headers().get(header::HOST) {
        return h.to_str().ok().map(str::to_string);
    }
    req.uri().authority().map(|a| a.as_str().to_string())
}

/// `127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT`, normalized; `None` otherwise.
fn loopback_authority(host: &str, port: u16) -> Option<String> {
    let (name, p) = host.rsplit_once(':')?;
    if p.parse::<u16>().ok()? != port {
        return None;
    }
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "127.0.0.1" | "localhost" | "[::1]").then(|| format!("{name}:{port}"))
}

/// Whether a present `Origin` is a loopback web origin (any port).
fn loopback_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && url.host().is_some_and(|h| is_loopback_name(&h))
        && url.path() == "/"
}

/// DNS-rebinding defence: every request must name us by a loopback host and
/// our port, and a browser `Origin`, when present, must be a loopback origin.
async fn loopback_guard(State(port): State<u16>, mut req: Request, next: Next) -> Response {
    let Some(host) = request_host(&req).and_then(|h| loopback_authority(&h, port)) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "requests must address 127.0.0.1, localhost or [::1] with this server's port",
        );
    };
    if !loopback_origin(req.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "cross-origin requests from non-local web pages are not allowed",
        );
    }
    req.extensions_mut().insert(LocalHost(host));
    next.run(req).await
}

/// Loopback is shared by every OS user of the machine: only the companion's
/// own user gets past this, before any route runs. Other users learn
/// nothing but the refusal; the connection closes after it.
async fn peer_guard(mut req: Request, next: Next) -> Response {
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<Peer>>().cloned() else {
        // Served without our listener: nobody to vouch for the caller.
        return refuse_peer("the companion cannot tell who is connecting");
    };
    match peer.owner().await {
        Owner::Same | Owner::Unchecked => {
            req.extensions_mut().insert(peer);
            next.run(req).await
        }
        Owner::Other(uid) => {
            tracing::warn!(uid, remote = %peer.remote, "refused a connection from another OS user");
            refuse_peer("this Spor Companion belongs to another user of this computer")
        }
        Owner::Unknown => {
            tracing::warn!(remote = %peer.remote, "refused a connection whose OS user could not be determined");
            refuse_peer("the companion could not tell which user of this computer is connecting")
        }
    }
}

fn refuse_peer(why: &str) -> Response {
    let mut resp = refuse(StatusCode::FORBIDDEN, why);
    resp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    resp
}

/// Logs method, path (never the query: it can hold codes and state; a
/// consent request id shortened), status and time.
async fn access_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = crate::host::loggable_path(req.uri().path()).into_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "not_found", "error_description": "no such endpoint" })),
    )
        .into_response()
}

/// Every route, behind the guard, for a server listening on `port`.
pub fn router(state: AppState, port: u16) -> Router {
    Router::new()
        .merge(oauth::router())
        .merge(gateway::router())
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn_with_state(port, loopback_guard))
        .layer(middleware::from_fn(peer_guard))
        .layer(middleware::from_fn(access_log))
}

/// Serves on an already bound listener until `shutdown` resolves.
pub async fn serve(
    listener: Loopback,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let app = router(state.clone(), addr.port());
    let follower = tokio::spawn(state.gateway.clone().follow_events(state.events.clone()));
    let call_log = state.gateway.calls.clone();
    let call_writer = tokio::spawn(call_log.clone().run(state.store.clone()));
    let state_for_shutdown = state.clone();
    let pruner = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = state.store.prune(state.now()).await {
                tracing::warn!(error = %e, "pruning expired rows failed");
            }
        }
    });
    let gateway = state_for_shutdown.gateway.clone();
    let shutdown = async move {
        shutdown.await;
        gateway.end_all();
    };
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await;
    // Every response is finished now; write what they logged before going.
    call_log.flush().await;
    call_writer.abort();
    pruner.abort();
    follower.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_with_our_port_pass() {
        assert_eq!(
            loopback_authority("127.0.0.1:7767", 7767).as_deref(),
            Some("127.0.0.1:7767")
        );
        assert_eq!(
            loopback_authority("LOCALHOST:7767", 7767).as_deref(),
            Some("localhost:7767")
        );
        assert_eq!(
            loopback_authority("[::1]:7767", 7767).as_deref(),
            Some("[::1]:7767")
        );
        assert_eq!(loopback_authority("127.0.0.1:7768", 7767), None);
        assert_eq!(loopback_authority("evil.example:7767", 7767), None);
        assert_eq!(loopback_authority("127.0.0.1", 7767), None);
        assert_eq!(
            loopback_authority("localhost.evil.example:7767", 7767),
            None
        );
    }
}
