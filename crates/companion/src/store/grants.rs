//! Grants and everything minted for them: authorization codes, access tokens
//! and rotating refresh tokens. Only hashes are stored. What these
//! operations take and return is in `grant_types`.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use spor_wire::oauth::client_metadata::verifying_host;

use crate::access::Access;

use super::audit::{record, Subject};
use super::db::{mark_of, Store};
use super::error::StoreError;
use super::grant_types::{
    AccessCheck, AccessContext, AccessSnapshot, CodeExchange, GrantSummary, IssuedPair, NewCode,
    Redeemed, RefreshOutcome, ACCESS_TOKEN_TTL, REFRESH_GRACE_SECS, REFRESH_TOKEN_TTL,
    REVOKED_GRANT_RETENTION_SECS,
};
use super::revoke_reason::RevokeReason;
use crate::clock::Timestamp;
use crate::sensitive::Sensitive;
use crate::tokens;

/// Grant-use timestamps are written at most this often, to keep writes off
/// the request path.
const LAST_USED_GRANULARITY: i64 = 60;

/// A freshly minted, not yet stored token pair.
#[derive(Debug)]
struct MintedPair {
    access: Sensitive<String>,
    refresh: Sensitive<String>,
    access_expires_at: Timestamp,
    refresh_expires_at: Timestamp,
}

impl MintedPair {
    fn new(now: Timestamp) -> Self {
        Self {
            access: tokens::mint(tokens::ACCESS_PREFIX),
            refresh: tokens::mint(tokens::REFRESH_PREFIX),
            access_expires_at: now + ACCESS_TOKEN_TTL,
            refresh_expires_at: now + REFRESH_TOKEN_TTL,
        }
    }

    /// Stores the pair's hashes for `grant_id`, the refresh token descending
    /// from `parent`.
    fn insert(
        &self,
        conn: &Connection,
        grant_id: &str,
        parent: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        conn.prepare_cached(
            "INSERT INTO access_tokens (token_hash, grant_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![tokens::hash(self.access.expose()), grant_id, now, self.access_expires_at])?;
        conn.prepare_cached(
            "INSERT INTO refresh_tokens (token_hash, grant_id, parent_hash, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            tokens::hash(self.refresh.expose()),
            grant_id,
            parent,
            now,
            self.refresh_expires_at
        ])?;
        Ok(())
    }

    fn issued(self, grant_id: String, scope: String) -> IssuedPair {
        IssuedPair {
            grant_id,
            access_token: self.access,
            refresh_token: self.refresh,
            access_expires_at: self.access_expires_at,
            scope,
        }
    }
}

/// Whether a client is registered.
fn client_known(c: &Connection, client_id: &str) -> Result<bool, StoreError> {
    Ok(c.prepare_cached("SELECT 1 FROM clients WHERE id = ?1")?
        .exists([client_id])?)
}

/// A stored code: what its presenter is checked against, and what a grant
/// made from it needs, read in one visit.
struct StoredCode {
    exchange: CodeExchange,
    account_id: String,
    scope: String,
    resource: Option<String>,
    /// The grant it minted, once used.
    grant_id: Option<String>,
    access: Access,
    /// Its account's status, if the account is still there.
    account_status: Option<String>,
}

/// A code by its hash.
fn code(c: &Connection, code_hash: &str) -> Result<Option<StoredCode>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT k.client_id, k.redirect_uri, k.code_challenge, k.expires_at, k.used_at,
                k.redirect_sent, k.account_id, k.scope, k.resource, k.grant_id, k.access, a.status
         FROM auth_codes k LEFT JOIN accounts a ON a.id = k.account_id
         WHERE k.code_hash = ?1",
    )?
    .query_row([code_hash], |r| {
        Ok(StoredCode {
            exchange: CodeExchange {
                client_id: r.get(0)?,
                redirect_uri: r.get(1)?,
                code_challenge: r.get(2)?,
                expires_at: r.get(3)?,
                used_at: r.get(4)?,
                redirect_sent: r.get(5)?,
            },
            account_id: r.get(6)?,
            scope: r.get(7)?,
            resource: r.get(8)?,
            grant_id: r.get(9)?,
            access: r.get(10)?,
            account_status: r.get(11)?,
        })
    })
    .optional()?)
}

/// Redeems an unused code, already checked: marks it used and creates the
/// grant and its first token pair, inside the caller's transaction.
fn redeem(
    c: &Connection,
    code_hash: &str,
    code: StoredCode,
    now: Timestamp,
) -> Result<IssuedPair, StoreError> {
    let StoredCode {
        exchange: CodeExchange { client_id, .. },
        account_id,
        scope,
        resource,
        access,
        ..
    } = code;
    let grant_id = format!("g_{}", tokens::random_hex(8));
    c.prepare_cached(
        "INSERT INTO grants (id, client_id, account_id, scope, resource, created_at, last_used_at, access)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)",
    )?
    .execute(params![grant_id, client_id, account_id, scope, resource, now, access])?;
    c.prepare_cached("UPDATE auth_codes SET used_at = ?1, grant_id = ?2 WHERE code_hash = ?3")?
        .execute(params![now, grant_id, code_hash])?;
    c.prepare_cached("UPDATE clients SET last_used_at = ?1 WHERE id = ?2")?
        .execute(params![now, client_id])?;
    let pair = MintedPair::new(now);
    pair.insert(c, &grant_id, None, now)?;
    record(
        c,
        now,
        "grant.created",
        Subject {
            grant: Some(&grant_id),
            account: Some(&account_id),
            client: Some(&client_id),
        },
        Some(serde_json::json!({ "access": access })),
    )?;
    Ok(pair.issued(grant_id, scope))
}

fn revoke_grant_tx(
    conn: &Connection,
    grant_id: &str,
    reason: RevokeReason,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE grants SET revoked_at = ?1, revoke_reason = ?2 WHERE id = ?3 AND revoked_at IS NULL",
        params![now, reason, grant_id],
    )?;
    if n > 0 {
        super::calls::forget_sessions_of_grants(conn, "id = ?1", grant_id)?;
        record(
            conn,
            now,
            "grant.revoked",
            Subject {
                grant: Some(grant_id),
                ..Subject::default()
            },
            Some(serde_json::json!({ "reason": reason })),
        )?;
    }
    Ok(n > 0)
}

impl Store {
    /// Stores a new authorization code.
    pub async fn insert_code(&self, code: NewCode, now: Timestamp) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO auth_codes (code_hash, client_id, account_id, redirect_uri, redirect_sent,
                 code_challenge, scope, resource, created_at, expires_at, access)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    code.code_hash,
                    code.client_id,
                    code.account_id,
                    code.redirect_uri,
                    code.redirect_sent,
                    code.code_challenge,
                    code.scope,
                    code.resource,
                    now,
                    code.expires_at,
                    code.access
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Exchanges a code presented by `client_id`, in one grouped write:
    /// the client must be registered, `present` must accept the presenter
    /// (before anything else is said about the code, so a replay by whoever
    /// saw it ends nothing), a used code revokes the grant it minted
    /// (RFC 9700 §4.2.4), and an unused one is marked used and becomes a
    /// grant with its first token pair.
    pub async fn exchange_code<P, E>(
        &self,
        client_id: String,
        code_hash: String,
        now: Timestamp,
        present: P,
    ) -> Result<Redeemed<E>, StoreError>
    where
        P: FnOnce(&CodeExchange) -> Result<(), E> + Send + 'static,
        E: Send + 'static,
    {
        self.write(move |c| {
            if !client_known(c, &client_id)? {
                return Ok(Redeemed::UnknownClient);
            }
            let Some(stored) = code(c, &code_hash)? else {
                return Ok(Redeemed::UnknownCode);
            };
            if let Err(e) = present(&stored.exchange) {
                return Ok(Redeemed::Refused(e));
            }
            if stored.exchange.used_at.is_some() {
                if let Some(g) = &stored.grant_id {
                    revoke_grant_tx(c, g, RevokeReason::AuthorizationCodeReuse, now)?;
                }
                return Ok(Redeemed::AlreadyUsed(stored.grant_id));
            }
            if stored.exchange.expires_at <= now {
                return Ok(Redeemed::Expired);
            }
            if stored.account_status.as_deref() != Some("valid") {
                return Ok(Redeemed::AccountGone);
            }
            Ok(Redeemed::Issued(redeem(c, &code_hash, stored, now)?))
        })
        .await
    }

    /// Rotates a refresh token (see [`RefreshOutcome`]).
    pub async fn refresh(
        &self,
        presented: Sensitive<String>,
        client_id: String,
        now: Timestamp,
    ) -> Result<RefreshOutcome, StoreError> {
        self.write(move |c| {
            if !client_known(c, &client_id)? {
                return Ok(RefreshOutcome::UnknownClient);
            }
            let hash = tokens::hash(presented.expose());
            type Row = (String, Timestamp, Option<Timestamp>, Option<Vec<u8>>, String, Option<Timestamp>, String, Option<String>);
            let row: Option<Row> = c
                .prepare_cached(
                    "SELECT r.grant_id, r.expires_at, r.used_at, r.successor_sealed, g.client_id, g.revoked_at,
                            g.scope, a.status
                     FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
                     LEFT JOIN accounts a ON a.id = g.account_id
                     WHERE r.token_hash = ?1",
                )?
                .query_row([&hash], |r| Row::try_from(r))
                .optional()?;
            let Some((grant_id, expires_at, used_at, sealed, owner, revoked_at, scope, status)) = row else {
                return Ok(RefreshOutcome::Invalid("unknown refresh token"));
            };
            if revoked_at.is_some() {
                return Ok(RefreshOutcome::Invalid("the grant was revoked"));
            }
            if !tokens::constant_time_eq(&owner, &client_id) {
                return Ok(RefreshOutcome::Invalid("refresh token was issued to another client"));
            }
            if status.as_deref() != Some("valid") {
                return Ok(RefreshOutcome::Invalid("the account behind this grant is no longer available"));
            }
            if expires_at <= now {
                return Ok(RefreshOutcome::Invalid("refresh token expired"));
            }
            if let Some(used_at) = used_at {
                if now - used_at <= REFRESH_GRACE_SECS {
                    if let Some(pair) = sealed.and_then(|s| tokens::open(presented.expose(), &s)) {
                        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&pair) {
                            if let (Some(a), Some(r), Some(ae)) = (v["a"].as_str(), v["r"].as_str(), v["ae"].as_i64()) {
                                return Ok(RefreshOutcome::Replayed(IssuedPair {
                                    grant_id,
                                    access_token: Sensitive::new(a.to_string()),
                                    refresh_token: Sensitive::new(r.to_string()),
                                    access_expires_at: ae,
                                    scope,
                                }));
                            }
                        }
                    }
                }
                revoke_grant_tx(c, &grant_id, RevokeReason::RefreshTokenReuse, now)?;
                    return Ok(RefreshOutcome::ReuseDetected);
            }
            // The new access token replaces every older one of the grant;
            // those keep working only for the grace the gateway allows.
            c.prepare_cached(
                "UPDATE access_tokens SET superseded_at = ?1 WHERE grant_id = ?2 AND superseded_at IS NULL",
            )?
            .execute(params![now, grant_id])?;
            let pair = MintedPair::new(now);
            pair.insert(c, &grant_id, Some(&hash), now)?;
            let sealed = tokens::seal(
                presented.expose(),
                serde_json::json!({
                    "a": pair.access.expose(),
                    "r": pair.refresh.expose(),
                    "ae": pair.access_expires_at,
                })
                .to_string()
                .as_bytes(),
            );
            c.prepare_cached(
                "UPDATE refresh_tokens SET used_at = ?1, successor_hash = ?2, successor_sealed = ?3 WHERE token_hash = ?4",
            )?
            .execute(params![now, tokens::hash(pair.refresh.expose()), sealed, hash])?;
            Ok(RefreshOutcome::Rotated(pair.issued(grant_id, scope)))
        })
        .await
    }

    /// Checks an access token by its hash (noting the grant's use) and reads
    /// the account it acts as and a [`super::Mark`], in one visit to the
    /// database: what the gateway caches. A token a refresh replaced works
    /// for `superseded_grace` seconds after that refresh.
    pub async fn access_snapshot(
        &self,
        token_hash: String,
        now: Timestamp,
        superseded_grace: i64,
    ) -> Result<AccessSnapshot, StoreError> {
        let epoch = self.epoch.clone();
        self.call(move |c| {
            // Read before the rows, so a change racing with them makes it stale.
            let mark = mark_of(c, &epoch)?;
            let check = check_access(c, &token_hash, now, superseded_grace)?;
            let account = match &check {
                AccessCheck::Valid(ctx) => super::accounts::get(c, &ctx.account_id)?,
                _ => None,
            };
            Ok(AccessSnapshot {
                check,
                account,
                mark,
            })
        })
        .await
    }

    /// Changes what a live grant may do; `false` if it is unknown or
    /// revoked. The change moves the database mark, so the gateway's cached
    /// tokens are read again on the next request.
    pub async fn set_grant_access(
        &self,
        grant_id: String,
        access: Access,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = tx.execute(
                "UPDATE grants SET access = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                params![access, grant_id],
            )?;
            if changed == 1 {
                record(
                    &tx,
                    now,
                    "grant.access_changed",
                    Subject {
                        grant: Some(&grant_id),
                        ..Subject::default()
                    },
                    Some(serde_json::json!({ "access": access })),
                )?;
            }
            tx.commit()?;
            Ok(changed == 1)
        })
        .await
    }

    /// Revokes one grant; `false` if it was unknown or already revoked.
    pub async fn revoke_grant(
        &self,
        grant_id: String,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let done = revoke_grant_tx(&tx, &grant_id, reason, now)?;
            tx.commit()?;
            Ok(done)
        })
        .await
    }

    /// Revokes the grant an access or refresh token belongs to (RFC 7009),
    /// unless `client_id` names a different client. Returns the grant id.
    pub async fn revoke_by_token(
        &self,
        token_hash: String,
        client_id: Option<String>,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: Option<(String, String)> = tx
                .query_row(
                    "SELECT g.id, g.client_id FROM grants g WHERE g.id IN (
                        SELECT grant_id FROM access_tokens WHERE token_hash = ?1
                        UNION SELECT grant_id FROM refresh_tokens WHERE token_hash = ?1)",
                    [&token_hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((grant_id, owner)) = found else {
                return Ok(None);
            };
            if client_id.is_some_and(|c| !tokens::constant_time_eq(&c, &owner)) {
                return Ok(None);
            }
            let revoked = revoke_grant_tx(&tx, &grant_id, RevokeReason::RevokedByClient, now)?;
            tx.commit()?;
            Ok(revoked.then_some(grant_id))
        })
        .await
    }

    /// Grants, newest first; only live ones unless `include_revoked`.
    pub async fn grants(&self, include_revoked: bool) -> Result<Vec<GrantSummary>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT g.id, g.client_id, k.name, g.account_id, a.org, a.rest_base, g.created_at,
                        g.last_used_at, g.revoked_at, g.revoke_reason, g.access
                 FROM grants g JOIN clients k ON k.id = g.client_id
                 LEFT JOIN accounts a ON a.id = g.account_id
                 WHERE ?1 OR g.revoked_at IS NULL
                 ORDER BY g.created_at DESC, g.id",
            )?;
            let rows = stmt.query_map([include_revoked], |r| {
                let client_id: String = r.get(1)?;
                Ok(GrantSummary {
                    id: r.get(0)?,
                    verified_by: verifying_host(&client_id),
                    client_id,
                    client_name: r.get(2)?,
                    account_id: r.get(3)?,
                    org: r.get(4)?,
                    server: r.get(5)?,
                    created_at: r.get(6)?,
                    last_used_at: r.get(7)?,
                    revoked_at: r.get(8)?,
                    revoke_reason: r.get(9)?,
                    access: r.get(10)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Deletes what can never be used again and forgets sealed successor
    /// pairs once their grace window is over.
    pub async fn prune(&self, now: Timestamp) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE refresh_tokens SET successor_sealed = NULL
                 WHERE successor_sealed IS NOT NULL AND used_at < ?1",
                [now - REFRESH_GRACE_SECS],
            )?;
            // Codes are kept a day past expiry so a late replay still finds
            // (and revokes) the grant it minted.
            tx.execute(
                "DELETE FROM auth_codes WHERE expires_at < ?1",
                [now - 86_400],
            )?;
            tx.execute("DELETE FROM access_tokens WHERE expires_at < ?1", [now])?;
            // A revoked grant stays listed (`grants list --all`) for a while,
            // then goes with its tokens and sessions; the audit trail keeps
            // what happened. Its client, if left with nothing, goes below.
            let forgotten = now - REVOKED_GRANT_RETENTION_SECS;
            super::calls::forget_sessions_of_grants(&tx, "revoked_at < ?1", forgotten)?;
            tx.execute("DELETE FROM grants WHERE revoked_at < ?1", [forgotten])?;
            super::calls::prune_calls(&tx, now)?;
            tx.execute(
                &format!(
                    "DELETE FROM clients WHERE created_at < ?1 AND {}",
                    super::clients::UNUSED
                ),
                [now - super::clients::UNUSED_CLIENT_TTL],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

/// Checks an access token by its hash, noting the grant's use (at most once
/// per [`LAST_USED_GRANULARITY`]).
fn check_access(
    c: &Connection,
    token_hash: &str,
    now: Timestamp,
    superseded_grace: i64,
) -> Result<AccessCheck, StoreError> {
    type Row = (
        String,
        String,
        Option<String>,
        Timestamp,
        Option<Timestamp>,
        Option<Timestamp>,
        Option<Timestamp>,
        Option<String>,
        Access,
    );
    let row: Option<Row> = c
        .prepare_cached(
            "SELECT g.id, g.client_id, g.account_id, t.expires_at, t.superseded_at, g.revoked_at,
                    g.last_used_at, a.status, g.access
             FROM access_tokens t JOIN grants g ON g.id = t.grant_id
             LEFT JOIN accounts a ON a.id = g.account_id
             WHERE t.token_hash = ?1",
        )?
        .query_row([token_hash], |r| Row::try_from(r))
        .optional()?;
    let Some((
        grant_id,
        client_id,
        account_id,
        expires_at,
        superseded_at,
        revoked_at,
        last_used,
        status,
        access,
    )) = row
    else {
        return Ok(AccessCheck::Unknown);
    };
    let (Some(account_id), Some("valid"), None) = (account_id, status.as_deref(), revoked_at)
    else {
        return Ok(AccessCheck::Revoked);
    };
    if expires_at <= now {
        return Ok(AccessCheck::Expired);
    }
    let grace_ends = superseded_at.map(|at| at.saturating_add(superseded_grace));
    if grace_ends.is_some_and(|end| end <= now) {
        return Ok(AccessCheck::Superseded);
    }
    if last_used.is_none_or(|t| now - t >= LAST_USED_GRANULARITY) {
        c.execute(
            "UPDATE grants SET last_used_at = ?1 WHERE id = ?2",
            params![now, grant_id],
        )?;
    }
    Ok(AccessCheck::Valid(AccessContext {
        grant_id,
        client_id,
        account_id,
        usable_until: grace_ends.map_or(expires_at, |end| end.min(expires_at)),
        access,
    }))
}
