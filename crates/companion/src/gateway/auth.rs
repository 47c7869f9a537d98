//! Who a `/mcp` call acts for: the bearer token resolved to a grant (an
//! access token, through the cache while the database is unchanged) or to
//! an account whose own PAT was presented (custom agents).

use axum::response::Response;
use spor_wire::bearer::Bearer;

use super::bearer::challenge;
use super::cache::CachedAccess;
use super::error;
use super::state::Principal;
use crate::host::LocalHost;
use crate::state::AppState;
use crate::store::{AccessCheck, Account, AccountStatus};
use crate::tokens;

/// Resolves the bearer to who is calling and the account it acts as.
pub(super) async fn authorize(
    state: &AppState,
    host: &LocalHost,
    bearer: Bearer,
) -> Result<(Principal, Account), Response> {
    let token = match bearer {
        Bearer::Missing => return Err(challenge(host, None)),
        Bearer::Malformed => return Err(challenge(host, Some("malformed Authorization header"))),
        Bearer::Token(t) => t,
    };
    let hash = tokens::hash(token.expose());
    if token.expose().starts_with(tokens::ACCESS_PREFIX) {
        let now = state.now();
        if let Some(hit) = state.gateway.access.get(&hash) {
            // Only as good as the database it was read from: any change
            // since (a revocation, here or by another process) means read again.
            // Read in place when the connection is free: then a hit costs
            // no trip to the blocking pool.
            if hit.usable_until > now && matches!(state.store.mark().await, Ok(m) if m == hit.mark)
            {
                return Ok((
                    Principal::Grant {
                        grant_id: hit.grant_id,
                        access: hit.access,
                    },
                    hit.account,
                ));
            }
            state.gateway.access.remove(&hash);
        }
        let grace =
            i64::try_from(state.limits.superseded_access_grace.as_secs()).unwrap_or(i64::MAX);
        let snap = match state.store.access_snapshot(hash.clone(), now, grace).await {
            Ok(s) => s,
            Err(e) => return Err(error::storage(e).answer(false, &serde_json::Value::Null)),
        };
        let ctx = match snap.check {
            AccessCheck::Valid(ctx) => ctx,
            AccessCheck::Expired => return Err(challenge(host, Some("the access token expired"))),
            AccessCheck::Superseded => {
                return Err(challenge(
                    host,
                    Some("the access token was replaced by a refresh; use the newer one"),
                ))
            }
            AccessCheck::Revoked => {
                return Err(challenge(host, Some("the access token was revoked")))
            }
            AccessCheck::Unknown => return Err(challenge(host, Some("unknown access token"))),
        };
        let Some(account) = snap.account else {
            return Err(challenge(
                host,
                Some("the account behind this token is gone"),
            ));
        };
        state.gateway.access.insert(
            hash,
            CachedAccess {
                grant_id: ctx.grant_id.clone(),
                access: ctx.access.clone(),
                account: account.clone(),
                usable_until: ctx.usable_until,
                mark: snap.mark,
            },
        );
        return Ok((
            Principal::Grant {
                grant_id: ctx.grant_id,
                access: ctx.access,
            },
            account,
        ));
    }
    if token.expose().starts_with(tokens::PAT_PREFIX) {
        // A custom agent holding one of the user's own PATs: accepted only
        // if it is exactly the stored one.
        if let Ok(Some(a)) = state.store.account_by_pat_hash(hash).await {
            if a.status == AccountStatus::Valid {
                if let Some(stored) = state.gateway.pats.get(&state.secrets, &a).await {
                    if tokens::constant_time_eq(stored.expose(), token.expose()) {
                        return Ok((
                            Principal::Pat {
                                account_id: a.id.clone(),
                            },
                            a,
                        ));
                    }
                }
            }
        }
    }
    Err(challenge(host, Some("unknown token")))
}
