//! The database handle: opening (WAL, foreign keys, migrations), running
//! calls on the blocking pool, and the [`Mark`] that tells caches whether
//! anything changed. The tables' own operations live beside it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use super::error::StoreError;
use super::group::{Group, Pending};

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
        M::up(include_str!("migrations/0009_current_access_index.sql")),
    ])
}

/// How long a statement waits for another process's lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Bumped by every call through this handle that changed a row (the call
    /// log's appends excepted), while it still holds the connection.
    pub(super) epoch: Arc<AtomicU64>,
    /// Token writes waiting to be committed together.
    group: Arc<Group>,
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
    // The epoch first: a write that lands between the two reads makes this
    // mark older than the database, which only costs a re-read.
    let epoch = epoch.load(Ordering::SeqCst);
    let data_version = conn
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?;
    Ok(Mark {
        epoch,
        data_version,
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
        conn.busy_timeout(BUSY_TIMEOUT)?;
        migrations().to_latest(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            epoch: Arc::default(),
            group: Arc::default(),
        })
    }

    /// Where the database stands now, read in place when the connection is
    /// free, else on the blocking pool.
    pub async fn mark(&self) -> Result<Mark, StoreError> {
        if let Some(mark) = self.mark_now() {
            return Ok(mark);
        }
        let epoch = self.epoch.clone();
        self.call_untracked(move |c| mark_of(c, &epoch)).await
    }

    /// Where the database stands now, read in place: `None` if that could
    /// mean waiting (the connection is in use, or SQLite is busy).
    ///
    /// Fit for an async thread because it cannot block: the connection is
    /// only tried, SQLite's busy wait is off for the read, and
    /// `data_version` comes from the memory-mapped WAL index, not the
    /// disk. It costs microseconds where a trip to the blocking pool costs
    /// tens, which is what a cached token's check is made of.
    pub fn mark_now(&self) -> Option<Mark> {
        let guard = match self.conn.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        guard.busy_timeout(std::time::Duration::ZERO).ok()?;
        let mark = mark_of(&guard, &self.epoch).ok();
        // Restored whatever happened: every other call relies on it.
        if let Err(e) = guard.busy_timeout(BUSY_TIMEOUT) {
            tracing::error!(error = %e, "could not restore the database busy timeout");
        }
        mark
    }

    /// Runs `f` in a transaction committed together with the other writes
    /// queued meanwhile, and returns once that commit is on disk (see
    /// `group`). `f` must not open a transaction of its own; an `Err` from
    /// it undoes its changes only.
    pub async fn write<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (pending, answer) = Pending::new(f);
        if self.group.push(Box::new(pending)) {
            let (conn, epoch, group) = (self.conn.clone(), self.epoch.clone(), self.group.clone());
            let drained = tokio::task::spawn_blocking(move || {
                let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
                group.drain(&guard, || {
                    epoch.fetch_add(1, Ordering::SeqCst);
                });
            });
            // Not awaited: the drain answers every write it ran, this one
            // included, through its channel.
            drop(drained);
        }
        answer.await.map_err(|_| StoreError::Join)?
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_arrive_during_a_commit_share_the_next_one() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("db.sqlite")).expect("open");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let wait_until = |done: &dyn Fn() -> bool| {
            let ready = done();
            assert!(ready || tokio::time::Instant::now() < deadline, "timed out");
            !ready
        };
        // Someone holds the connection (as a commit waiting for the disk does).
        let (release, held) = std::sync::mpsc::channel::<()>();
        let holder = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .call(move |_| {
                        let _ = held.recv();
                        Ok(())
                    })
                    .await
            })
        };
        while wait_until(&|| store.mark_now().is_none()) {
            tokio::task::yield_now().await;
        }
        let writes: Vec<_> = (0..8_i64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write(move |c| {
                            c.execute("INSERT INTO audit (at, event) VALUES (?1, 'w')", [i])?;
                            Ok(i)
                        })
                        .await
                })
            })
            .collect();
        while wait_until(&|| store.group.queued() == 8) {
            tokio::task::yield_now().await;
        }
        let before = store.group.commits();
        release.send(()).expect("release");
        holder.await.expect("join").expect("holder");
        for (i, w) in writes.into_iter().enumerate() {
            assert_eq!(w.await.expect("join").expect("write"), i as i64);
        }
        assert_eq!(
            store.group.commits() - before,
            1,
            "one transaction for all eight"
        );
        let n: i64 = store
            .call(|c| {
                Ok(
                    c.query_row("SELECT count(*) FROM audit WHERE event = 'w'", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await
            .expect("count");
        assert_eq!(n, 8);
    }

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
    fn superseding_a_grants_access_token_visits_only_its_current_ones() {
        let store = Store::open_in_memory().expect("open");
        let plan: Vec<String> = store
            .call_blocking(|c| {
                let mut s = c.prepare(
                    "EXPLAIN QUERY PLAN UPDATE access_tokens SET superseded_at = 1
                     WHERE grant_id = 'g' AND superseded_at IS NULL",
                )?;
                let rows = s.query_map([], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .expect("plan");
        assert!(
            plan.iter()
                .any(|step| step.contains("access_tokens_current")),
            "{plan:?}"
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
