//! MCP sessions bound to the principal that created them: a session id the
//! upstream hands out belongs to that grant (or PAT) alone, in memory and in
//! the database (so it survives restarts). Only hashes are kept.

use super::error::{self, GatewayError};
use super::state::Principal;
use crate::state::AppState;

/// Whether `session_hash` belongs to `principal` (memory first, then the
/// database, which survives restarts).
pub(super) async fn owns(
    state: &AppState,
    principal: &Principal,
    session_hash: &str,
) -> Result<bool, GatewayError> {
    let key = principal.key();
    let known = state
        .gateway
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(session_hash)
        .cloned();
    let owner = match known {
        Some(o) => Some(o),
        None => state
            .store
            .session_principal(session_hash.to_string())
            .await
            .map_err(error::storage)?,
    };
    match owner {
        Some(o) if o == key => {
            state
                .gateway
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(session_hash.to_string(), o);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Binds a session the upstream just created to `principal`; the first
/// binding wins, as in the database.
pub(super) async fn bind(
    state: &AppState,
    principal: &Principal,
    session_hash: String,
) -> Result<(), GatewayError> {
    state
        .gateway
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(session_hash.clone())
        .or_insert_with(|| principal.key());
    state
        .store
        .bind_session(session_hash, principal.key(), state.now())
        .await
        .map_err(error::storage)
}

/// Forgets a session that ended (deleted, or unknown upstream).
pub(super) async fn forget(state: &AppState, session_hash: &str) {
    state
        .gateway
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(session_hash);
    if let Err(e) = state.store.unbind_session(session_hash.to_string()).await {
        tracing::warn!(error = %e, "could not forget an ended session");
    }
}
