//! The audit log: what happened to which grant, account or client. Details
//! are small JSON objects built by the caller from non-secret facts.

use rusqlite::{params, Connection};

use super::error::StoreError;
use crate::clock::Timestamp;

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
