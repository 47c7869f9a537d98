//! The gateway's records: which MCP session belongs to whom, and what each
//! assistant called (method and tool name only).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::db::Store;
use super::error::StoreError;
use super::text_enum::stored_as_text;
use crate::clock::Timestamp;

/// How a session's principal names a grant: this, then the grant id
/// (`gateway::Principal::key`).
pub const GRANT_PRINCIPAL: &str = "grant:";

/// Forgets the sessions of the grants that `grants_where` (a condition on
/// `grants`, with `?1` bound to `arg`) selects, inside the caller's
/// transaction. A session id nobody owns is refused, never rebound, so this
/// only saves the rows.
pub(crate) fn forget_sessions_of_grants(
    conn: &rusqlite::Connection,
    grants_where: &str,
    arg: impl rusqlite::ToSql,
) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "DELETE FROM mcp_sessions WHERE principal IN
             (SELECT '{GRANT_PRINCIPAL}' || id FROM grants WHERE {grants_where})"
        ),
        [arg],
    )?;
    Ok(())
}

/// Call records are kept this long.
pub const CALL_RETENTION_SECS: i64 = 30 * 86_400;
/// And at most this many in all.
pub const MAX_CALLS_KEPT: i64 = 100_000;

/// How a forwarded call ended, as the call log records it. Stored as its
/// wire name (`ok`, `http_502`, …), so no migration was needed when this
/// replaced a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// A 2xx answer, finished.
    Ok,
    /// Another status that passes through to the host (`http_<status>`).
    Http(u16),
    /// The upstream could not be connected to.
    Unreachable,
    /// The upstream cut the connection or did not answer in HTTP.
    BadResponse,
    /// No response headers within the header timeout.
    Timeout,
    /// The upstream refused the account's PAT (`401`).
    Rejected,
    /// The upstream cut its answer or event stream.
    StreamBroken,
    /// The upstream's answer or stream sent nothing for the idle bound.
    StreamIdle,
    /// The upstream's answer was over the size bound.
    TooLarge,
    /// Refused by the grant's access; never sent upstream.
    Denied,
}

impl CallOutcome {
    /// Reads a stored wire name; `None` for one this version does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => Self::Ok,
            "unreachable" => Self::Unreachable,
            "bad_response" => Self::BadResponse,
            "timeout" => Self::Timeout,
            "rejected" => Self::Rejected,
            "stream_broken" => Self::StreamBroken,
            "stream_idle" => Self::StreamIdle,
            "too_large" => Self::TooLarge,
            "denied" => Self::Denied,
            other => Self::Http(other.strip_prefix("http_")?.parse().ok()?),
        })
    }
}

impl std::fmt::Display for CallOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Http(status) => write!(f, "http_{status}"),
            Self::Unreachable => f.write_str("unreachable"),
            Self::BadResponse => f.write_str("bad_response"),
            Self::Timeout => f.write_str("timeout"),
            Self::Rejected => f.write_str("rejected"),
            Self::StreamBroken => f.write_str("stream_broken"),
            Self::StreamIdle => f.write_str("stream_idle"),
            Self::TooLarge => f.write_str("too_large"),
            Self::Denied => f.write_str("denied"),
        }
    }
}

stored_as_text!(CallOutcome);

/// Compares with a wire name, so `outcome == "ok"` reads as it says.
impl PartialEq<&str> for CallOutcome {
    fn eq(&self, other: &&str) -> bool {
        Self::parse(other) == Some(*self)
    }
}

/// Which MCP protocol era a call speaks, judged by its body: a request whose
/// `params._meta` names its protocol version is modern (2026-07-28 on,
/// stateless); anything else is legacy (`initialize` and sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2025-11-25 and before.
    Legacy,
    /// 2026-07-28 and later.
    Modern,
}

impl Era {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Modern => "modern",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "legacy" => Some(Self::Legacy),
            "modern" => Some(Self::Modern),
            _ => None,
        }
    }
}

impl std::fmt::Display for Era {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

stored_as_text!(Era);

/// Whether a call's mirrored headers (`Mcp-Method`, `Mcp-Name`,
/// `MCP-Protocol-Version`) agreed with its body. The body is what the
/// gateway acts on and logs; a disagreement is forwarded as is (the
/// upstream answers it) and recorded here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCheck {
    /// Every mirrored header present says what the body says, and a modern
    /// request has every one its revision requires.
    Consistent,
    /// A modern request lacks a header its revision requires.
    Missing,
    /// A header says something else than the body.
    Mismatch,
}

impl HeaderCheck {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consistent => "consistent",
            Self::Missing => "missing",
            Self::Mismatch => "mismatch",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "consistent" => Some(Self::Consistent),
            "missing" => Some(Self::Missing),
            "mismatch" => Some(Self::Mismatch),
            _ => None,
        }
    }
}

impl std::fmt::Display for HeaderCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

stored_as_text!(HeaderCheck);

/// One forwarded JSON-RPC message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CallRecord {
    /// When it was sent.
    pub at: Timestamp,
    /// The grant, or `None` for a direct-PAT call.
    pub grant_id: Option<String>,
    /// The account it acted as.
    pub account_id: String,
    /// JSON-RPC method (`(response)` for a client's answer to the server).
    pub method: String,
    /// Tool name, for `tools/call`.
    pub tool: Option<String>,
    /// How it ended.
    pub outcome: CallOutcome,
    /// Upstream HTTP status, if one came.
    pub status: Option<u16>,
    /// Milliseconds until the response was finished (a streamed call: its end).
    pub duration_ms: u64,
    /// The protocol era; `None` for calls logged before eras were recorded.
    pub era: Option<Era>,
    /// Whether the mirrored headers agreed with the body; `None` where
    /// nothing was mirrored (a legacy call without `Mcp-*` request
    /// metadata) or for calls logged before this was recorded.
    pub header_check: Option<HeaderCheck>,
}

impl Store {
    /// The principal a session is bound to, if known.
    pub async fn session_principal(
        &self,
        session_hash: String,
    ) -> Result<Option<String>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT principal FROM mcp_sessions WHERE session_hash = ?1",
                [&session_hash],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// Binds a new session to a principal (first binding wins).
    pub async fn bind_session(
        &self,
        session_hash: String,
        principal: String,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO mcp_sessions (session_hash, principal, created_at) VALUES (?1, ?2, ?3)",
                params![session_hash, principal, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets a session (after the client deleted it).
    pub async fn unbind_session(&self, session_hash: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "DELETE FROM mcp_sessions WHERE session_hash = ?1",
                [&session_hash],
            )?;
            Ok(())
        })
        .await
    }

    /// Appends call records in one transaction. It is committed without
    /// waiting for the disk (`synchronous = NORMAL`): call records are a
    /// convenience, and power loss may take the last few, while every grant
    /// and token write keeps `FULL` (whose sync also covers these).
    pub async fn record_calls(&self, calls: Vec<CallRecord>) -> Result<(), StoreError> {
        self.call_untracked(move |c| {
            c.pragma_update(None, "synchronous", "NORMAL")?;
            let written = insert_calls(c, &calls);
            let restored = c.pragma_update(None, "synchronous", "FULL");
            written?;
            Ok(restored?)
        })
        .await
    }

    /// The most recent calls of a grant, newest first.
    pub async fn calls(&self, grant_id: String, limit: u32) -> Result<Vec<CallRecord>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT at, grant_id, account_id, method, tool, outcome, status, duration_ms, era, header_check FROM mcp_calls
                 WHERE grant_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![grant_id, limit], |r| {
                Ok(CallRecord {
                    at: r.get(0)?,
                    grant_id: r.get(1)?,
                    account_id: r.get(2)?,
                    method: r.get(3)?,
                    tool: r.get(4)?,
                    outcome: r.get(5)?,
                    status: r.get(6)?,
                    duration_ms: r.get::<_, i64>(7)?.max(0) as u64,
                    era: r.get(8)?,
                    header_check: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

fn insert_calls(c: &mut rusqlite::Connection, calls: &[CallRecord]) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO mcp_calls (at, grant_id, account_id, method, tool, outcome, status, duration_ms, era, header_check)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for r in calls {
            stmt.execute(params![
                r.at,
                r.grant_id,
                r.account_id,
                r.method,
                r.tool,
                r.outcome,
                r.status,
                r.duration_ms as i64,
                r.era,
                r.header_check
            ])?;
        }
    }
    // Held to the cap as rows arrive, so each delete is as small as the
    // batch: left to the periodic prune, a busy log meant deleting ten
    // minutes of calls at once, and the memory SQLite took for that stayed
    // with the allocator.
    trim_calls(&tx)?;
    tx.commit()?;
    Ok(())
}

/// Drops the oldest call records beyond the cap.
fn trim_calls(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM mcp_calls WHERE id <= (SELECT max(id) FROM mcp_calls) - ?1")?
        .execute([MAX_CALLS_KEPT])?;
    Ok(())
}

/// Drops call records past retention, and the oldest beyond the cap; runs
/// inside the pruning transaction.
pub(crate) fn prune_calls(conn: &rusqlite::Connection, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM mcp_calls WHERE at < ?1",
        [now - CALL_RETENTION_SECS],
    )?;
    trim_calls(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: Timestamp) -> CallRecord {
        CallRecord {
            at,
            grant_id: Some("g_1".into()),
            account_id: "a_1".into(),
            method: "tools/call".into(),
            tool: Some("put_node".into()),
            outcome: CallOutcome::Ok,
            status: Some(200),
            duration_ms: 1,
            era: Some(Era::Modern),
            header_check: Some(HeaderCheck::Consistent),
        }
    }

    #[test]
    fn outcomes_read_back_as_written() {
        for o in [
            CallOutcome::Ok,
            CallOutcome::Http(404),
            CallOutcome::Unreachable,
            CallOutcome::BadResponse,
            CallOutcome::Timeout,
            CallOutcome::Rejected,
            CallOutcome::StreamBroken,
            CallOutcome::StreamIdle,
            CallOutcome::TooLarge,
        ] {
            assert_eq!(CallOutcome::parse(&o.to_string()), Some(o));
        }
        assert_eq!(CallOutcome::Http(502).to_string(), "http_502");
        assert_eq!(CallOutcome::parse("http_"), None);
        assert_eq!(CallOutcome::parse("fine"), None);
        for e in [Era::Legacy, Era::Modern] {
            assert_eq!(Era::parse(e.as_str()), Some(e));
        }
        for h in [
            HeaderCheck::Consistent,
            HeaderCheck::Missing,
            HeaderCheck::Mismatch,
        ] {
            assert_eq!(HeaderCheck::parse(h.as_str()), Some(h));
        }
    }

    #[tokio::test]
    async fn the_call_log_stays_at_its_cap_as_batches_arrive() {
        let store = Store::open_in_memory().expect("store");
        let first: Vec<_> = (0..MAX_CALLS_KEPT).map(record).collect();
        store.record_calls(first).await.expect("fill");
        store
            .record_calls((0..50).map(|i| record(MAX_CALLS_KEPT + i)).collect())
            .await
            .expect("one batch more");
        let (n, oldest): (i64, i64) = store
            .call(|c| {
                Ok(
                    c.query_row("SELECT count(*), min(at) FROM mcp_calls", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?,
                )
            })
            .await
            .expect("count");
        assert_eq!(n, MAX_CALLS_KEPT, "held at the cap without a prune");
        assert_eq!(oldest, 50, "the oldest went first");
    }
}
