//! Reading the companion's SQLite file directly, with the daemon stopped:
//! SQLite's own checks, the invariants every committed transaction keeps
//! (no grant without its tokens, no rotation half done, …), and whether
//! what clients received is there.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

/// The companion's cap on stored call records (`store::MAX_CALLS_KEPT`).
pub const MAX_CALLS_KEPT: i64 = 100_000;

/// Opens the database without writing to it.
pub fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    Ok(Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?)
}

/// Copies a database as a crashed process left it (the main file and its
/// WAL; the shared-memory index is rebuilt from them) into `dir`, and opens
/// the copy, so that checking it recovers the copy, not the original the
/// restarted daemon will recover itself.
pub fn open_crash_image(db: &Path, dir: &Path) -> anyhow::Result<Connection> {
    std::fs::create_dir_all(dir)?;
    let name = db
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let copy = dir.join(&name);
    std::fs::copy(db, &copy)?;
    let wal = db.with_file_name(format!("{name}-wal"));
    if wal.exists() {
        std::fs::copy(&wal, dir.join(format!("{name}-wal")))?;
    }
    Ok(Connection::open(copy)?)
}

/// Bytes of the database file and its WAL.
pub fn file_bytes(db: &Path) -> u64 {
    let name = db
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    [db.to_path_buf(), db.with_file_name(format!("{name}-wal"))]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// `PRAGMA integrity_check` must say `ok`, `PRAGMA foreign_key_check`
/// nothing; one failure line per problem.
pub fn integrity(c: &Connection) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let rows: Vec<String> = c
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if rows != ["ok"] {
        out.push(format!("integrity_check: {}", rows.join("; ")));
    }
    let fk: Vec<String> = c
        .prepare("PRAGMA foreign_key_check")?
        .query_map([], |r| {
            Ok(format!(
                "{} row {:?} → {}",
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?
            ))
        })?
        .collect::<Result<_, _>>()?;
    if !fk.is_empty() {
        out.push(format!(
            "foreign_key_check: {} rows, e.g. {}",
            fk.len(),
            fk[..fk.len().min(3)].join("; ")
        ));
    }
    Ok(out)
}

/// Rows that break what one committed transaction always leaves behind;
/// each query counts the offending rows.
const INVARIANTS: &[(&str, &str)] = &[
    (
        "grants without an access token",
        "SELECT count(*) FROM grants g WHERE NOT EXISTS (SELECT 1 FROM access_tokens t WHERE t.grant_id = g.id)",
    ),
    (
        "grants without a refresh token",
        "SELECT count(*) FROM grants g WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id)",
    ),
    (
        "grants whose access and refresh tokens do not pair up",
        "SELECT count(*) FROM grants g WHERE (SELECT count(*) FROM access_tokens WHERE grant_id = g.id)
            != (SELECT count(*) FROM refresh_tokens WHERE grant_id = g.id)",
    ),
    (
        "live grants without exactly one unused refresh token",
        "SELECT count(*) FROM grants g WHERE g.revoked_at IS NULL
            AND (SELECT count(*) FROM refresh_tokens r WHERE r.grant_id = g.id AND r.used_at IS NULL) != 1",
    ),
    (
        "grants without exactly one first refresh token",
        "SELECT count(*) FROM grants g
            WHERE (SELECT count(*) FROM refresh_tokens r WHERE r.grant_id = g.id AND r.parent_hash IS NULL) != 1",
    ),
    (
        "used refresh tokens without their successor",
        "SELECT count(*) FROM refresh_tokens r WHERE r.used_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM refresh_tokens s WHERE s.token_hash = r.successor_hash
            AND s.grant_id = r.grant_id AND s.parent_hash = r.token_hash)",
    ),
    (
        "grants without the one used code that minted them",
        "SELECT count(*) FROM grants g WHERE (SELECT count(*) FROM auth_codes k
            WHERE k.grant_id = g.id AND k.used_at IS NOT NULL AND k.client_id = g.client_id) != 1",
    ),
    (
        "used codes without a grant",
        "SELECT count(*) FROM auth_codes WHERE used_at IS NOT NULL AND grant_id IS NULL",
    ),
    (
        "grants without their grant.created audit row",
        "SELECT count(*) FROM grants g WHERE NOT EXISTS
            (SELECT 1 FROM audit a WHERE a.event = 'grant.created' AND a.grant_id = g.id)",
    ),
    (
        "revoked grants without a reason or a grant.revoked audit row",
        "SELECT count(*) FROM grants g WHERE g.revoked_at IS NOT NULL AND (g.revoke_reason IS NULL
            OR NOT EXISTS (SELECT 1 FROM audit a WHERE a.event = 'grant.revoked' AND a.grant_id = g.id))",
    ),
    (
        "clients without their client.registered audit row",
        "SELECT count(*) FROM clients k WHERE NOT EXISTS
            (SELECT 1 FROM audit a WHERE a.event = 'client.registered' AND a.client_id = k.id)",
    ),
    (
        "clients with an empty name or no redirect URI",
        "SELECT count(*) FROM clients WHERE name = '' OR json_valid(redirect_uris) = 0
            OR json_type(redirect_uris) != 'array' OR json_array_length(redirect_uris) = 0",
    ),
];

/// The structural invariants; one failure line per broken one.
pub fn invariants(c: &Connection) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (what, sql) in INVARIANTS {
        let n: i64 = c.query_row(sql, [], |r| r.get(0))?;
        if n > 0 {
            out.push(format!("{n} {what}"));
        }
    }
    Ok(out)
}

/// Row counts of every table, by name.
pub fn row_counts(c: &Connection) -> anyhow::Result<Vec<(String, i64)>> {
    let tables: Vec<String> = c
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND name != '_rusqlite_migration' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for t in tables {
        let n: i64 = c.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))?;
        out.push((t, n));
    }
    Ok(out)
}

/// What a grant's client believes about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Believed {
    /// Not revoked by anyone.
    Live,
    /// The client revoked it and was told so.
    Revoked,
    /// A revocation was sent and its answer never came.
    Either,
}

/// One grant as its client saw it: every token received, in order.
pub struct SeenGrant<'a> {
    /// Access tokens.
    pub access: &'a [String],
    /// Refresh tokens.
    pub refresh: &'a [String],
    /// Revoked or not.
    pub state: Believed,
}

/// Everything the clients received, to be found in the database.
#[derive(Default)]
pub struct Seen<'a> {
    /// Client ids from registrations.
    pub clients: Vec<&'a str>,
    /// Codes received and never presented: stored, not used.
    pub unsent_codes: Vec<&'a str>,
    /// Codes received and presented without an answer: stored.
    pub sent_codes: Vec<&'a str>,
    /// Grants.
    pub grants: Vec<SeenGrant<'a>>,
    /// Every grant in the database must be one of these, or one minted by a
    /// code whose exchange answer was lost and that was revoked when the
    /// client presented the code again.
    pub complete: bool,
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn map2(c: &Connection, sql: &str) -> anyhow::Result<HashMap<String, Option<String>>> {
    let rows = c
        .prepare(sql)?
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<Result<HashMap<_, _>, _>>()?;
    Ok(rows)
}

/// Whether what the clients received is in the database, as they believe it
/// to be. Failure lines name grants and counts, never a secret.
pub fn seen(c: &Connection, seen: &Seen) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let clients = map2(c, "SELECT id, NULL FROM clients")?;
    let codes = map2(c, "SELECT code_hash, CAST(used_at AS TEXT) FROM auth_codes")?;
    let access = map2(c, "SELECT token_hash, grant_id FROM access_tokens")?;
    let refresh = map2(c, "SELECT token_hash, grant_id FROM refresh_tokens")?;
    let grants = map2(
        c,
        "SELECT id, CASE WHEN revoked_at IS NULL THEN NULL ELSE revoke_reason END FROM grants",
    )?;

    let missing = seen
        .clients
        .iter()
        .filter(|id| !clients.contains_key(**id))
        .count();
    if missing > 0 {
        out.push(format!("{missing} registered clients are not stored"));
    }
    let missing = seen
        .sent_codes
        .iter()
        .chain(&seen.unsent_codes)
        .filter(|k| !codes.contains_key(&hash(k)))
        .count();
    if missing > 0 {
        out.push(format!(
            "{missing} issued authorization codes are not stored"
        ));
    }
    let used = seen
        .unsent_codes
        .iter()
        .filter(|k| matches!(codes.get(&hash(k)), Some(Some(_))))
        .count();
    if used > 0 {
        out.push(format!("{used} codes never presented are marked used"));
    }

    let mut claimed: HashSet<&str> = HashSet::new();
    let (mut lost, mut split, mut shared, mut wrong_state) = (0, 0, 0, Vec::new());
    for (i, g) in seen.grants.iter().enumerate() {
        let ids: Vec<Option<&Option<String>>> = g
            .access
            .iter()
            .map(|t| access.get(&hash(t)))
            .chain(g.refresh.iter().map(|t| refresh.get(&hash(t))))
            .collect();
        if ids.iter().any(|id| !matches!(id, Some(Some(_)))) {
            lost += 1;
            continue;
        }
        let ids: HashSet<&str> = ids
            .into_iter()
            .filter_map(|id| id.and_then(|s| s.as_deref()))
            .collect();
        let [id] = ids.into_iter().collect::<Vec<_>>()[..] else {
            split += 1;
            continue;
        };
        if !claimed.insert(id) {
            shared += 1;
        }
        let revoked = match grants.get(id) {
            Some(reason) => reason.is_some(),
            None => {
                lost += 1;
                continue;
            }
        };
        let ok = match g.state {
            Believed::Live => !revoked,
            Believed::Revoked => revoked,
            Believed::Either => true,
        };
        if !ok && wrong_state.len() < 5 {
            wrong_state.push(format!(
                "grant #{i} ({id}) is {} but its client believes it {:?}",
                if revoked { "revoked" } else { "live" },
                g.state
            ));
        }
    }
    if lost > 0 {
        out.push(format!(
            "{lost} grants have tokens their client received that are not stored"
        ));
    }
    if split > 0 {
        out.push(format!(
            "{split} grants' tokens belong to more than one stored grant"
        ));
    }
    if shared > 0 {
        out.push(format!(
            "{shared} stored grants hold tokens of two client-side grants"
        ));
    }
    if !wrong_state.is_empty() {
        out.push(format!(
            "grants in the wrong state: {}",
            wrong_state.join("; ")
        ));
    }
    if seen.complete {
        let strays: Vec<String> = grants
            .iter()
            .filter(|(id, reason)| {
                !claimed.contains(id.as_str())
                    && reason.as_deref() != Some("authorization_code_reuse")
            })
            .map(|(id, reason)| format!("{id} ({})", reason.as_deref().unwrap_or("live")))
            .collect();
        if !strays.is_empty() {
            out.push(format!(
                "{} stored grants no client holds (and not revoked as minted by a lost exchange): {}",
                strays.len(),
                strays[..strays.len().min(5)].join(", ")
            ));
        }
    }
    Ok(out)
}
