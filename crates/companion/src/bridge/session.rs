//! The MCP session the bridge holds for the host: what it knows about it,
//! starting it again after the server lost it, and ending it on the way out.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Mutex;

use super::mcp::{describe_failure, session_id, Mcp};
use super::oauth::OAuthClient;
use super::stdio::DRAIN;
use crate::sensitive::Sensitive;

/// What the bridge knows about the MCP session.
#[derive(Default)]
pub(super) struct Session {
    pub(super) id: Option<String>,
    pub(super) protocol: Option<String>,
    /// The host's `initialize` message, replayed if the session is lost.
    pub(super) init: Option<Vec<u8>>,
    /// Bumped on every (re)initialization; ends the old GET stream.
    pub(super) generation: u64,
}

/// Starts a new session after the old one was lost (e.g. the grant was
/// disconnected and authorized again): replays the host's `initialize`,
/// keeps its answer to ourselves, and confirms with `initialized`. Returns
/// the new generation, for its GET stream, or `None` when another message
/// already did it.
pub(super) async fn reinitialize(
    mcp: &Mcp,
    session: &Mutex<Session>,
    stale: Option<String>,
    token: &Sensitive<String>,
) -> Result<Option<u64>, String> {
    let mut s = session.lock().await;
    if s.id != stale {
        return Ok(None); // another message already did it
    }
    let init = s
        .init
        .clone()
        .ok_or("the host never initialized a session")?;
    let resp = mcp.send(mcp.post(token, None, None, init)).await?;
    if !resp.status().is_success() {
        return Err(describe_failure(resp.status(), resp).await);
    }
    s.id = session_id(&resp);
    s.generation += 1;
    let generation = s.generation;
    let id = s.id.clone();
    let protocol = s.protocol.clone();
    drop(s);
    // Read the answer to the end; it is the server's, not the host's.
    let mut resp = resp;
    while let Ok(Some(_)) = resp.chunk().await {}
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    let _ = mcp
        .send(mcp.post(token, id.as_deref(), protocol.as_deref(), initialized))
        .await;
    tracing::info!("session re-established");
    Ok(Some(generation))
}

/// Tells the server the session is over (best effort, bounded).
pub(super) async fn end(mcp: &Mcp, session: &Mutex<Session>, auth: Option<&Arc<OAuthClient>>) {
    let (id, protocol) = {
        let s = session.lock().await;
        (s.id.clone(), s.protocol.clone())
    };
    let (Some(id), Some(auth)) = (id, auth) else {
        return;
    };
    let Ok(Ok(token)) = tokio::time::timeout(DRAIN, auth.current_token()).await else {
        return;
    };
    let request = mcp.send(mcp.delete(&token, &id, protocol.as_deref()));
    let _ = tokio::time::timeout(Duration::from_secs(2), request).await;
}
