//! Account metadata. The PAT itself lives in the secret store under the
//! account id; here we keep who it is and a hash for direct-bearer lookup.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use super::audit::{record, Subject};
use super::db::Store;
use super::error::StoreError;
use super::revoke_reason::RevokeReason;
use crate::clock::Timestamp;

/// Which kind of upstream an account talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A Spor server: identity and organizations come from `/v1/me`.
    Spor,
    /// Any MCP server that takes a bearer token.
    Generic,
}

impl AccountKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Spor => "spor",
            Self::Generic => "generic",
        }
    }
}

/// Whether the upstream still accepts the account's PAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    /// Last seen working.
    Valid,
    /// The upstream answered 401 to it; the user must paste a new one.
    Rejected,
}

/// Why the upstream refused a token, as far as its answer tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectReason {
    /// The token's lifetime ran out.
    Expired,
    /// Revoked, deleted or otherwise refused.
    Refused,
}

impl RejectReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Refused => "refused",
        }
    }
}

/// A stored account (one PAT for one server and organization).
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// Local id, also the secret-store entry name.
    pub id: String,
    /// Upstream kind.
    pub kind: AccountKind,
    /// REST base URL of the server (e.g. `https://api.spor.example`).
    pub server: String,
    /// MCP endpoint the gateway forwards to.
    pub mcp_url: String,
    /// Organization slug the PAT is scoped to.
    pub org: String,
    /// Spor person id, when the PAT is bound to one.
    pub person: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Whether the PAT maps to a person (writes are attributed).
    pub bound: bool,
    /// Whether the person is an org admin.
    pub is_admin: bool,
    /// Token state.
    pub status: AccountStatus,
    /// Why the token was rejected, when it was.
    pub rejected_reason: Option<RejectReason>,
    /// When first added.
    pub created_at: Timestamp,
    /// When last replaced or changed.
    pub updated_at: Timestamp,
    /// SHA-256 of the PAT; tells a cached PAT from a replaced one.
    #[serde(skip)]
    pub pat_hash: String,
}

impl Account {
    /// "Name <email>", the name, or the email; `None` for an unbound token.
    pub fn who(&self) -> Option<String> {
        match (&self.name, &self.email) {
            (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
            (Some(n), None) => Some(n.clone()),
            (None, Some(e)) => Some(e.clone()),
            (None, None) => None,
        }
    }
}

/// What to store for a validated PAT.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Upstream kind.
    pub kind: AccountKind,
    /// REST base URL.
    pub server: String,
    /// MCP endpoint.
    pub mcp_url: String,
    /// Organization slug.
    pub org: String,
    /// Person id.
    pub person: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Bound to a person.
    pub bound: bool,
    /// Org admin.
    pub is_admin: bool,
    /// SHA-256 of the PAT.
    pub pat_hash: String,
}

const COLUMNS: &str =
    "id, kind, rest_base, mcp_url, org, person, name, email, bound, is_admin, status, created_at, updated_at, pat_hash, rejected_reason";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    let kind: String = r.get(1)?;
    let status: String = r.get(10)?;
    Ok(Account {
        id: r.get(0)?,
        kind: if kind == "generic" {
            AccountKind::Generic
        } else {
            AccountKind::Spor
        },
        server: r.get(2)?,
        mcp_url: r.get(3)?,
        org: r.get(4)?,
        person: r.get(5)?,
        name: r.get(6)?,
        email: r.get(7)?,
        bound: r.get(8)?,
        is_admin: r.get(9)?,
        status: if status == "rejected" {
            AccountStatus::Rejected
        } else {
            AccountStatus::Valid
        },
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        pat_hash: r.get(13)?,
        rejected_reason: match r.get::<_, Option<String>>(14)?.as_deref() {
            None => None,
            Some("expired") => Some(RejectReason::Expired),
            Some(_) => Some(RejectReason::Refused),
        },
    })
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<Account>, StoreError> {
    // Cached: the gateway reads an account on every token it checks.
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM accounts WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// Revokes every live grant of an account inside the caller's transaction;
/// returns the revoked grant ids.
pub(crate) fn revoke_account_grants(
    conn: &Connection,
    account_id: &str,
    reason: RevokeReason,
    now: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(
        "UPDATE grants SET revoked_at = ?1, revoke_reason = ?2
         WHERE account_id = ?3 AND revoked_at IS NULL RETURNING id",
    )?;
    let ids = stmt
        .query_map(params![now, reason, account_id], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for id in &ids {
        super::calls::forget_sessions_of_grants(conn, "id = ?1", id)?;
        record(
            conn,
            now,
            "grant.revoked",
            Subject {
                grant: Some(id),
                account: Some(account_id),
                client: None,
            },
            Some(serde_json::json!({ "reason": reason })),
        )?;
    }
    Ok(ids)
}

/// The result of storing a validated PAT.
#[derive(Debug, Clone)]
pub struct Upserted {
    /// The account as now stored.
    pub account: Account,
    /// Grants revoked because an older PAT for the same (server, org) was replaced.
    pub revoked_grants: Vec<String>,
}

impl Store {
    /// All accounts, oldest first.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM accounts ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map([], from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// One account by id.
    pub async fn account(&self, id: String) -> Result<Option<Account>, StoreError> {
        self.call(move |c| get(c, &id)).await
    }

    /// The account for (server, org), if stored.
    pub async fn account_for(
        &self,
        server: String,
        org: String,
    ) -> Result<Option<Account>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM accounts WHERE rest_base = ?1 AND org = ?2"),
                [&server, &org],
                from_row,
            )
            .optional()?)
        })
        .await
    }

    /// The account whose PAT hashes to `pat_hash`.
    pub async fn account_by_pat_hash(
        &self,
        pat_hash: String,
    ) -> Result<Option<Account>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM accounts WHERE pat_hash = ?1"),
                [&pat_hash],
                from_row,
            )
            .optional()?)
        })
        .await
    }

    /// Inserts the account under `id`, or replaces the one stored for the same
    /// (server, org) — revoking every grant minted from the old PAT — in one
    /// transaction.
    pub async fn upsert_account(
        &self,
        id: String,
        new: NewAccount,
        now: Timestamp,
    ) -> Result<Upserted, StoreError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing: Option<(String, String)> = tx
                .query_row(
                    "SELECT id, pat_hash FROM accounts WHERE rest_base = ?1 AND org = ?2",
                    [&new.server, &new.org],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (id, revoked) = match existing {
                Some((existing, old_hash)) => {
                    // Pasting the same token again refreshes the metadata but
                    // keeps its assistants connected.
                    let revoked = if old_hash == new.pat_hash {
                        Vec::new()
                    } else {
                        revoke_account_grants(&tx, &existing, RevokeReason::TokenReplaced, now)?
                    };
                    tx.execute(
                        "UPDATE accounts SET kind = ?2, mcp_url = ?3, person = ?4, name = ?5, email = ?6,
                         bound = ?7, is_admin = ?8, pat_hash = ?9, status = 'valid', rejected_reason = NULL,
                         updated_at = ?10
                         WHERE id = ?1",
                        params![
                            existing,
                            new.kind.as_str(),
                            new.mcp_url,
                            new.person,
                            new.name,
                            new.email,
                            new.bound,
                            new.is_admin,
                            new.pat_hash,
                            now
                        ],
                    )?;
                    record(&tx, now, "account.replaced", Subject { account: Some(&existing), ..Subject::default() }, None)?;
                    (existing, revoked)
                }
                None => {
                    tx.execute(
                        "INSERT INTO accounts (id, kind, rest_base, mcp_url, org, person, name, email, bound,
                         is_admin, pat_hash, status, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'valid', ?12, ?12)",
                        params![
                            id,
                            new.kind.as_str(),
                            new.server,
                            new.mcp_url,
                            new.org,
                            new.person,
                            new.name,
                            new.email,
                            new.bound,
                            new.is_admin,
                            new.pat_hash,
                            now
                        ],
                    )?;
                    record(&tx, now, "account.added", Subject { account: Some(&id), ..Subject::default() }, None)?;
                    (id, Vec::new())
                }
            };
            let account = get(&tx, &id)?.ok_or_else(|| StoreError::Corrupt("account vanished".into()))?;
            tx.commit()?;
            Ok(Upserted { account, revoked_grants: revoked })
        })
        .await
    }

    /// Deletes an account and revokes every grant minted from its PAT, in one
    /// transaction. Returns the revoked grant ids, or `None` if no such account.
    pub async fn remove_account(
        &self,
        id: String,
        now: Timestamp,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if get(&tx, &id)?.is_none() {
                return Ok(None);
            }
            let revoked = revoke_account_grants(&tx, &id, RevokeReason::AccountRemoved, now)?;
            tx.execute("DELETE FROM accounts WHERE id = ?1", [&id])?;
            record(
                &tx,
                now,
                "account.removed",
                Subject {
                    account: Some(&id),
                    ..Subject::default()
                },
                None,
            )?;
            tx.commit()?;
            Ok(Some(revoked))
        })
        .await
    }

    /// Marks an account's PAT as rejected upstream and revokes its grants, in
    /// one transaction. Returns the revoked grant ids.
    pub async fn reject_account(
        &self,
        id: String,
        reason: RejectReason,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE accounts SET status = 'rejected', rejected_reason = ?3, updated_at = ?2 WHERE id = ?1",
                params![id, now, reason.as_str()],
            )?;
            let revoked = revoke_account_grants(&tx, &id, RevokeReason::TokenRejected, now)?;
            record(
                &tx,
                now,
                "account.rejected",
                Subject {
                    account: Some(&id),
                    ..Subject::default()
                },
                None,
            )?;
            tx.commit()?;
            Ok(revoked)
        })
        .await
    }
}
