//! The audit log: what happened to which grant, account or client. Details
//! are small JSON objects built by the caller from non-secret facts.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{Store, StoreError};
use crate::clock::Timestamp;

/// One row of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// When it happened.
    pub at: Timestamp,
    /// What happened, e.g. `grant.created`.
    pub event: String,
    /// The grant concerned, if any.
    pub grant_id: Option<String>,
    /// The account concerned, if any.
    pub account_id: Option<String>,
    /// The client concerned, if any.
    pub client_id: Option<String>,
    /// Extra non-secret facts as JSON.
    pub detail: Option<serde_json::Value>,
}

/// The ids an audit row may point at.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub grant: Option<&'a str>,
    pub account: Option<&'a str>,
    pub client: Option<&'a str>,
}

/// Appends one audit row inside the caller's transaction.
pub(crate) fn record(
    conn: &Connection,
    at: Timestamp,
    event: &str,
    subject: Subject<'_>,
    detail: Option<serde_json::Value>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at, event, grant_id, account_id, client_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            at,
            event,
            subject.grant,
            subject.account,
            subject.client,
            detail.map(|d| d.to_string())
        ],
    )?;
    Ok(())
}

impl Store {
    /// The most recent audit rows, newest first, optionally for one grant.
    pub async fn audit_entries(
        &self,
        grant_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT at, event, grant_id, account_id, client_id, detail FROM audit
                 WHERE (?1 IS NULL OR grant_id = ?1) ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![grant_id, limit], |r| {
                let detail: Option<String> = r.get(5)?;
                Ok(AuditEntry {
                    at: r.get(0)?,
                    event: r.get(1)?,
                    grant_id: r.get(2)?,
                    account_id: r.get(3)?,
                    client_id: r.get(4)?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The time of the newest audit row with this event name, if any.
    pub async fn last_audit_at(
        &self,
        event: &'static str,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT at FROM audit WHERE event = ?1 ORDER BY id DESC LIMIT 1",
                [event],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }
}
