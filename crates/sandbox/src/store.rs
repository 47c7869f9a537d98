//! The sandbox's SQLite store: people, org memberships, hashed PATs and the
//! graph nodes the MCP tools write ([`nodes`]).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::time;

pub mod nodes;

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "sandbox.db";
/// Every personal access token starts with this.
pub const PAT_PREFIX: &str = "spor_pat_";
/// Length of the public token identifier (hex chars of the SHA-256).
pub const HASH_PREFIX_LEN: usize = 12;

// Append-only: each entry moves the schema from version N to N+1.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE persons (
    id         TEXT PRIMARY KEY,
    email_key  TEXT NOT NULL UNIQUE,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL,
    created    INTEGER NOT NULL
);
CREATE TABLE memberships (
    person_id  TEXT NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    org        TEXT NOT NULL,
    PRIMARY KEY (person_id, org)
);
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    prefix     TEXT NOT NULL,
    person_id  TEXT REFERENCES persons(id) ON DELETE CASCADE,
    org        TEXT NOT NULL,
    is_admin   INTEGER NOT NULL DEFAULT 0,
    label      TEXT,
    created    INTEGER NOT NULL,
    expires    INTEGER,
    last_used  INTEGER,
    revoked    INTEGER
);
CREATE INDEX tokens_person ON tokens(person_id);
CREATE INDEX tokens_prefix ON tokens(prefix);
"#,
    r#"
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    org           TEXT NOT NULL,
    kind          TEXT NOT NULL,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    tags          TEXT NOT NULL,
    source        TEXT,
    author        TEXT REFERENCES persons(id) ON DELETE SET NULL,
    author_name   TEXT,
    author_email  TEXT,
    created       INTEGER NOT NULL
);
CREATE INDEX nodes_org_created ON nodes(org, created);
"#,
];

/// A plaintext PAT; `Debug` is redacted so it cannot leak through logs.
pub struct Pat(String);

impl Pat {
    /// The token text, for printing it once to the person who minted it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pat(<redacted>)")
    }
}

/// Who a new token belongs to, when it is bound to a person.
#[derive(Debug, Clone)]
pub struct NewPerson {
    /// Display name (used only when the person is created).
    pub name: String,
    /// Email; people are keyed by it, case-insensitively.
    pub email: String,
    /// Extra orgs the person belongs to besides the token's org.
    pub member_of: Vec<String>,
}

/// Everything `mint` needs.
#[derive(Debug, Clone)]
pub struct MintRequest {
    /// `None` mints an unbound token (maps to no person).
    pub person: Option<NewPerson>,
    /// The org slug the token is scoped to.
    pub org: String,
    /// Whether `/v1/me` reports `is_admin: true` for this token.
    pub admin: bool,
    /// Free-text label shown in the token list.
    pub label: Option<String>,
    /// Lifetime in days; `Some(0)` mints an already expired token (for tests).
    pub expires_in_days: Option<u32>,
}

/// What `mint` did.
#[derive(Debug)]
pub struct Minted {
    /// The new token; shown once, stored only as a hash.
    pub pat: Pat,
    /// The person the token is bound to, if any.
    pub person_id: Option<String>,
    /// True when the person already existed under a different name.
    pub name_ignored: bool,
}

/// A person as `/v1/me` shows them.
#[derive(Debug, Clone)]
pub struct Person {
    /// Stable id, e.g. `per_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email as first given.
    pub email: String,
}

/// The authenticated holder of a request's token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// SHA-256 hex of the calling token (never the token itself).
    pub token_hash: String,
    /// `None` for unbound tokens.
    pub person: Option<Person>,
    /// The token's org slug.
    pub org: String,
    /// Admin flag minted into the token.
    pub is_admin: bool,
}

/// Result of checking a presented token.
#[derive(Debug)]
pub enum AuthOutcome {
    /// Live token.
    Valid(Caller),
    /// No such token.
    Unknown,
    /// Token was revoked.
    Revoked,
    /// Token is past its expiry.
    Expired,
}

/// One row of `/v1/me/tokens`.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// First 12 hex chars of the token's SHA-256.
    pub hash_prefix: String,
    /// Label given at mint time.
    pub label: Option<String>,
    /// The token's org slug.
    pub org: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds, `None` for tokens that never expire.
    pub expires: Option<i64>,
    /// Unix seconds of the last authenticated call.
    pub last_used: Option<i64>,
}

/// SHA-256 of a token, lowercase hex.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks an org slug: lowercase letters, digits and dashes, starting alphanumeric.
pub fn validate_slug(slug: &str) -> anyhow::Result<()> {
    let mut chars = slug.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok_first || !ok_rest || slug.len() > 63 {
        bail!("invalid org slug {slug:?}: use lowercase letters, digits and '-' (max 63)");
    }
    Ok(())
}

/// A handle on `sandbox.db`.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) `DIR/sandbox.db`, in WAL mode with foreign keys on.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let path = data_dir.join(DB_FILE);
        let mut conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        // `mint` and `serve` share the file; wait for the other's lock rather
        // than failing with SQLITE_BUSY.
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("could not switch {} to WAL (got {mode})", path.display());
        }
        conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;")?;
        migrate(&mut conn)?;
        Ok(Self { conn })
    }

    /// Mints a new PAT, creating or reusing the person and adding memberships.
    pub fn mint(&mut self, req: &MintRequest) -> anyhow::Result<Minted> {
        validate_slug(&req.org)?;
        let now = time::now();
        let expires = req
            .expires_in_days
            .map(|d| now.saturating_add(i64::from(d) * 86_400));
        let pat = new_pat();
        let hash = hash_token(pat.expose());
        let prefix = &hash[..HASH_PREFIX_LEN];

        // IMMEDIATE takes the write lock up front so busy_timeout applies,
        // instead of failing on a read→write upgrade while `serve` writes.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut name_ignored = false;
        let person_id = match &req.person {
            None => None,
            Some(p) => {
                let name = p.name.trim();
                let email = p.email.trim();
                if name.is_empty() {
                    bail!("--name must not be empty");
                }
                if email.is_empty() || !email.contains('@') {
                    bail!("--email must be an email address");
                }
                for org in &p.member_of {
                    validate_slug(org)?;
                }
                let key = email.to_lowercase();
                let existing: Option<(String, String)> = tx
                    .query_row(
                        "SELECT id, name FROM persons WHERE email_key = ?1",
                        [&key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let id = match existing {
                    Some((id, old_name)) => {
                        name_ignored = old_name != name;
                        id
                    }
                    None => {
                        let id = format!("per_{}", random_hex(8));
                        tx.execute(
                            "INSERT INTO persons (id, email_key, email, name, created)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![id, key, email, name, now],
                        )?;
                        id
                    }
                };
                for org in std::iter::once(&req.org).chain(&p.member_of) {
                    tx.execute(
                        "INSERT OR IGNORE INTO memberships (person_id, org) VALUES (?1, ?2)",
                        params![id, org],
                    )?;
                }
                Some(id)
            }
        };
        tx.execute(
            "INSERT INTO tokens (hash, prefix, person_id, org, is_admin, label, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![hash, prefix, person_id, req.org, req.admin, req.label, now, expires],
        )?;
        tx.commit()?;
        Ok(Minted {
            pat,
            person_id,
            name_ignored,
        })
    }

    /// Checks a presented token and, if live, records its use.
    pub fn authenticate(&mut self, token: &str) -> anyhow::Result<AuthOutcome> {
        let hash = hash_token(token);
        let row = self
            .conn
            .query_row(
                "SELECT t.org, t.is_admin, t.expires, t.revoked, p.id, p.name, p.email
                 FROM tokens t LEFT JOIN persons p ON p.id = t.person_id
                 WHERE t.hash = ?1",
                [&hash],
                |r| {
                    let person = match r.get::<_, Option<String>>(4)? {
                        Some(id) => Some(Person {
                            id,
                            name: r.get(5)?,
                            email: r.get(6)?,
                        }),
                        None => None,
                    };
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        person,
                    ))
                },
            )
            .optional()?;
        let Some((org, is_admin, expires, revoked, person)) = row else {
            return Ok(AuthOutcome::Unknown);
        };
        if revoked.is_some() {
            return Ok(AuthOutcome::Revoked);
        }
        let now = time::now();
        if expires.is_some_and(|e| e <= now) {
            return Ok(AuthOutcome::Expired);
        }
        self.conn.execute(
            "UPDATE tokens SET last_used = ?1 WHERE hash = ?2",
            params![now, hash],
        )?;
        Ok(AuthOutcome::Valid(Caller {
            token_hash: hash,
            person,
            org,
            is_admin,
        }))
    }

    /// Org slugs the caller's person belongs to, sorted (empty when unbound).
    pub fn memberships(&self, caller: &Caller) -> anyhow::Result<Vec<String>> {
        let Some(person) = &caller.person else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare("SELECT org FROM memberships WHERE person_id = ?1 ORDER BY org")?;
        let orgs = stmt
            .query_map([&person.id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(orgs)
    }

    /// The caller's non-revoked tokens (only the calling token when unbound).
    pub fn list_tokens(&self, caller: &Caller) -> anyhow::Result<Vec<TokenInfo>> {
        let map = |r: &rusqlite::Row<'_>| {
            Ok(TokenInfo {
                hash_prefix: r.get(0)?,
                label: r.get(1)?,
                org: r.get(2)?,
                created: r.get(3)?,
                expires: r.get(4)?,
                last_used: r.get(5)?,
            })
        };
        const COLS: &str = "SELECT prefix, label, org, created, expires, last_used FROM tokens";
        let rows = match &caller.person {
            Some(p) => self
                .conn
                .prepare(&format!(
                    "{COLS} WHERE person_id = ?1 AND revoked IS NULL ORDER BY created, prefix"
                ))?
                .query_map([&p.id], map)?
                .collect::<Result<Vec<_>, _>>()?,
            None => self
                .conn
                .prepare(&format!("{COLS} WHERE hash = ?1 AND revoked IS NULL"))?
                .query_map([&caller.token_hash], map)?
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(rows)
    }

    /// Revokes one of the caller's tokens by hash prefix; false if none matched.
    pub fn revoke(&mut self, caller: &Caller, hash_prefix: &str) -> anyhow::Result<bool> {
        let now = time::now();
        let n = match &caller.person {
            Some(p) => self.conn.execute(
                "UPDATE tokens SET revoked = ?1
                 WHERE prefix = ?2 AND person_id = ?3 AND revoked IS NULL",
                params![now, hash_prefix, p.id],
            )?,
            None => self.conn.execute(
                "UPDATE tokens SET revoked = ?1
                 WHERE prefix = ?2 AND hash = ?3 AND revoked IS NULL",
                params![now, hash_prefix, caller.token_hash],
            )?,
        };
        Ok(n > 0)
    }
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    // Two processes may open a fresh file at once; the write lock makes one
    // of them migrate and the other see the result.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(version).context("negative schema version")?;
    if applied > MIGRATIONS.len() {
        bail!("database schema version {applied} is newer than this spor-sandbox");
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql)
            .with_context(|| format!("applying migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", i64::try_from(i + 1)?)?;
    }
    tx.commit()?;
    Ok(())
}

fn new_pat() -> Pat {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    Pat(format!("{PAT_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_in_order_and_are_idempotent() {
        let mut conn = Connection::open_in_memory().expect("in-memory db");
        conn.execute_batch("PRAGMA foreign_keys=ON;")
            .expect("pragma");
        migrate(&mut conn).expect("first run");
        migrate(&mut conn).expect("second run is a no-op");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(usize::try_from(version).ok(), Some(MIGRATIONS.len()));
        let nodes: i64 = conn
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
            .expect("nodes table");
        assert_eq!(nodes, 0);
    }

    #[test]
    fn slugs() {
        assert!(validate_slug("acme").is_ok());
        assert!(validate_slug("acme-2").is_ok());
        assert!(validate_slug("").is_err());
        assert!(validate_slug("-acme").is_err());
        assert!(validate_slug("Acme").is_err());
        assert!(validate_slug("a b").is_err());
    }

    #[test]
    fn pat_shape_and_redaction() {
        let pat = new_pat();
        let body = pat.expose().strip_prefix(PAT_PREFIX).unwrap_or_default();
        assert_eq!(body.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(body).map(|b| b.len()).ok(), Some(32));
        assert_eq!(format!("{pat:?}"), "Pat(<redacted>)");
    }
}
