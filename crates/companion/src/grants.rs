//! Disconnecting an assistant, changing what it may do, and reading what it
//! did: the grant-level actions the CLI, the control socket and the desktop
//! app share.

use crate::access::Access;
use crate::events::Event;
use crate::state::AppState;
use crate::store::{CallRecord, StoreError};

/// Ends one grant — its tokens at once, its live MCP sessions through the
/// event — and says whether a live grant was found.
pub async fn disconnect(state: &AppState, grant_id: &str) -> Result<bool, StoreError> {
    let revoked = state
        .store
        .revoke_grant(
            grant_id.to_string(),
            crate::store::RevokeReason::RevokedByUser,
            state.now(),
        )
        .await?;
    if revoked {
        state.events.emit(Event::GrantRevoked {
            grant_id: grant_id.to_string(),
        });
        tracing::info!(grant = %grant_id, "assistant disconnected by the user");
    }
    Ok(revoked)
}

/// Changes what a live grant may do, from its next request on; `false` if
/// no live grant has this id.
pub async fn set_access(
    state: &AppState,
    grant_id: &str,
    access: Access,
) -> Result<bool, StoreError> {
    let described = access.describe();
    let changed = state
        .store
        .set_grant_access(grant_id.to_string(), access, state.now())
        .await?;
    if changed {
        // The annotations the new access relies on are read afresh.
        let account = state
            .store
            .grants(false)
            .await?
            .into_iter()
            .find(|g| g.id == grant_id)
            .and_then(|g| g.account_id);
        if let Some(account) = account {
            state.gateway.catalogue.forget(&account);
        }
        state.events.emit(Event::GrantAccessChanged {
            grant_id: grant_id.to_string(),
        });
        tracing::info!(grant = %grant_id, access = %described, "assistant's access changed by the user");
    }
    Ok(changed)
}

/// The newest calls of a grant (live or ended), or `None` if no such grant.
pub async fn activity(
    state: &AppState,
    grant_id: &str,
    limit: u32,
) -> Result<Option<Vec<CallRecord>>, StoreError> {
    let known = state
        .store
        .grants(true)
        .await?
        .iter()
        .any(|g| g.id == grant_id);
    if !known {
        return Ok(None);
    }
    Ok(Some(
        state
            .store
            .calls(grant_id.to_string(), limit.min(1000))
            .await?,
    ))
}
