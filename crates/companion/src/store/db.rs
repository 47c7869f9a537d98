//! The database handle: opening (WAL, foreign keys, migrations), running
//! calls on the blocking pool, and the [`Mark`] that tells caches whether
//! anything changed. The tables' own operations live beside it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

/// Errors from the storage layer. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// A blocking task panicked or was cancelled.
    #[error("database task failed")]
    Join,
    /// A row held something the code cannot read (hand-edited database?).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// The migration list; append only, never edit a shipped entry.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_init.sql")),
        M::up(include_str!("migrations/0002_gateway.sql")),
        M::up(include_str!("migrations/0003_rejected_reason.sql")),
        M::up(include_str!("migrations/0004_client_program.sql")),
        M::up(include_str!("migrations/0005_superseded_access.sql")),
        M::up(include_str!("migrations/0006_client_application_type.sql")),
        M::up(include_str!("migrations/0007_call_era.sql")),
        M::up(include_str!("migrations/0008_grant_access.sql")),
    ])
}

/// A handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Bumped by every call through this handle that changed a row (the call
    /// log's appends excepted), while it still holds the connection.
    pub(super) epoch: Arc<AtomicU64>,
}

/// Where the database stood at one moment. Two equal marks mean no row
/// changed in between — neither through this handle (the call log's
/// appends excepted) nor by another process — so what was read at the
/// first is still true at the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    epoch: u64,
    /// SQLite's `PRAGMA data_version`: changes when another connection commits.
    data_version: i64,
}

pub(super) fn mark_of(conn: &Connection, epoch: &AtomicU64) -> Result<Mark, StoreError> {
    Ok(Mark {
        epoch: epoch.load(Ordering::SeqCst),
        data_version: conn.query_row("PRAGMA data_version", [], |r| r.get(0))?,
    })
}

/// Runs `f`, bumping `epoch` if it changed any row.
fn tracked<F, R>(conn: &mut Connection, epoch: &AtomicU64, f: F) -> Result<R, StoreError>
where
    F: FnOnce(&mut Connection) -> Result<R, StoreError>,
{
    let before = conn.total_changes();
    let result = f(conn);
    if conn.total_changes() != before {
        epoch.fetch_add(1, Ordering::SeqCst);
    }
    result
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (creating if needed) the database file and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn, true)
    }

    /// An in-memory database; for unit tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?, false)
    }

    fn init(mut conn: Connection, wal: bool) -> Result<Self, StoreError> {
        if wal {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // FULL keeps an issued grant across power loss, not just kill -9.
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations().to_latest(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            epoch: Arc::default(),
        })
    }

    /// Where the database stands now.
    pub async fn mark(&self) -> Result<Mark, StoreError> {
        let epoch = self.epoch.clone();
        self.call_untracked(move |c| mark_of(c, &epoch)).await
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (conn, epoch) = (self.conn.clone(), self.epoch.clone());
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            tracked(&mut guard, &epoch, f)
        })
        .await
        .map_err(|_| StoreError::Join)?
    }

    /// [`Store::call`] for writes that no cache depends on (the call log),
    /// so they do not make cached reads look stale.
    pub(crate) async fn call_untracked<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|_| StoreError::Join)?
    }

    /// Runs `f` with the connection on the current thread; for CLI code
    /// that is not on an async runtime.
    pub fn call_blocking<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError>,
    {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        tracked(&mut guard, &self.epoch, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().expect("migrations validate");
    }

    #[test]
    fn upgrading_marks_every_access_token_but_each_grants_newest_superseded() {
        let mut c = Connection::open_in_memory().expect("open");
        migrations().to_version(&mut c, 4).expect("migrate to 4");
        c.execute_batch(
            "INSERT INTO clients (id, name, redirect_uris, created_at) VALUES ('c', 'n', '[]', 0);
             INSERT INTO grants (id, client_id, scope, created_at) VALUES ('g1', 'c', 'mcp', 0), ('g2', 'c', 'mcp', 0);
             INSERT INTO access_tokens (token_hash, grant_id, created_at, expires_at) VALUES
                 ('a1', 'g1', 100, 9999), ('b1', 'g2', 150, 9999), ('a2', 'g1', 200, 9999),
                 ('a3', 'g1', 200, 9999), ('b2', 'g2', 300, 9999);",
        )
        .expect("seed");
        migrations().to_latest(&mut c).expect("migrate");
        let mut stmt = c
            .prepare("SELECT token_hash, superseded_at FROM access_tokens ORDER BY token_hash")
            .expect("prepare");
        let rows: Vec<(String, Option<i64>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        // Each is superseded when the next of its grant was issued (a3 came
        // after a2 in the same second); each grant's newest stays current.
        assert_eq!(
            rows,
            [
                ("a1".to_string(), Some(200)),
                ("a2".to_string(), Some(200)),
                ("a3".to_string(), None),
                ("b1".to_string(), Some(300)),
                ("b2".to_string(), None),
            ]
        );
    }

    #[test]
    fn foreign_keys_are_enforced() {
        let store = Store::open_in_memory().expect("open");
        let err = store.call_blocking(|c| {
            c.execute(
                "INSERT INTO access_tokens (token_hash, grant_id, created_at, expires_at) VALUES ('h', 'nope', 0, 1)",
                [],
            )
            .map_err(StoreError::from)
        });
        assert!(err.is_err());
    }
}
