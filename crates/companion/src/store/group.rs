//! Group commit for the writes a client is answered only after they are on
//! disk (token exchanges and rotations): writes that arrive while one
//! `synchronous = FULL` commit is waiting for the disk are run together in
//! the next transaction, each in its own savepoint, and each is answered
//! only after that transaction's commit returned. One fsync then covers
//! many writes instead of one each.
//!
//! Why not a crate: the batching must share the one SQLite connection (and
//! its mutex) with every other store call, and rusqlite offers no queue;
//! the whole mechanism is a queue, a flag and one loop.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::error::StoreError;

/// One queued write.
pub(super) trait Write: Send {
    /// Runs inside the batch's transaction; `true` keeps its changes.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers its caller once the batch's fate is known: `Ok` if the
    /// commit reached the disk, else why not.
    fn answer(self: Box<Self>, committed: Result<(), &StoreError>);
}

/// A write whose caller awaits `R` on a channel.
pub(super) struct Pending<F, R> {
    work: Option<F>,
    result: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Pending<F, R> {
    /// A write and the receiver its caller awaits.
    pub(super) fn new(work: F) -> (Self, oneshot::Receiver<Result<R, StoreError>>) {
        let (reply, rx) = oneshot::channel();
        let pending = Self {
            work: Some(work),
            result: None,
            reply,
        };
        (pending, rx)
    }
}

impl<F, R> Write for Pending<F, R>
where
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn);
        let keep = result.is_ok();
        self.result = Some(result);
        keep
    }

    fn answer(self: Box<Self>, committed: Result<(), &StoreError>) {
        let out = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            // Run, but its transaction never reached the disk.
            (Err(e), Some(Ok(_)) | None) => Err(StoreError::NotCommitted(e.to_string())),
            (Err(_), Some(Err(e))) => Err(e),
            // It panicked (and its savepoint was undone).
            (Ok(()), None) => Err(StoreError::Join),
        };
        // The caller may have gone away; the write stands regardless.
        let _ = self.reply.send(out);
    }
}

/// Writes waiting for the next batch, and whether a drain is on its way.
#[derive(Default)]
pub(super) struct Group {
    queue: Mutex<Vec<Box<dyn Write>>>,
    scheduled: AtomicBool,
    /// Transactions committed so far, for the tests.
    commits: AtomicU64,
}

impl Group {
    /// Queues a write; `true` if the caller must start a drain (none is
    /// scheduled yet).
    pub(super) fn push(&self, write: Box<dyn Write>) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(write);
        !self.scheduled.swap(true, Ordering::AcqRel)
    }

    /// Runs everything queued as one transaction on `conn` (whose lock the
    /// caller holds), calls `changed` if it committed changes, then answers
    /// each write: whoever hears back sees the change already marked.
    pub(super) fn drain(&self, conn: &Connection, changed: impl FnOnce()) {
        // Cleared before taking the queue: a write queued after the take
        // schedules the next drain, which waits for this commit's lock and
        // so gathers everything that arrived during it.
        self.scheduled.store(false, Ordering::Release);
        let writes = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        if writes.is_empty() {
            return;
        }
        let before = conn.total_changes();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let e = StoreError::from(e);
            for w in writes {
                w.answer(Err(&e));
            }
            return;
        }
        let mut ran = Vec::with_capacity(writes.len());
        for mut w in writes {
            match run_one(conn, w.as_mut()) {
                Ok(()) => ran.push(w),
                Err(e) => w.answer(Err(&e)),
            }
        }
        let committed = conn.execute_batch("COMMIT").map_err(StoreError::from);
        if committed.is_err() {
            // Nothing of this batch reached the disk; leave no transaction open.
            let _ = conn.execute_batch("ROLLBACK");
        }
        if committed.is_ok() {
            self.commits.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(writes = ran.len(), "token writes committed together");
            if conn.total_changes() != before {
                changed();
            }
        }
        for w in ran {
            w.answer(committed.as_ref().map(|_| ()));
        }
    }
}

#[cfg(test)]
impl Group {
    /// Writes waiting for a drain.
    pub(super) fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Transactions committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// Runs one write in its own savepoint, so a write that fails (or panics)
/// undoes only its own changes.
fn run_one(conn: &Connection, write: &mut dyn Write) -> Result<(), StoreError> {
    conn.execute_batch("SAVEPOINT write")?;
    let keep = catch_unwind(AssertUnwindSafe(|| write.run(conn))).unwrap_or(false);
    if keep {
        conn.execute_batch("RELEASE write")?;
    } else {
        conn.execute_batch("ROLLBACK TO write; RELEASE write")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let c = Connection::open_in_memory().expect("open");
        c.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE t (v TEXT NOT NULL);
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .expect("schema");
        c
    }

    type Answer<R> = oneshot::Receiver<Result<R, StoreError>>;

    fn insert(group: &Group, v: &'static str, fail: bool) -> Answer<&'static str> {
        let (w, rx) = Pending::new(move |c: &Connection| {
            c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            if fail {
                return Err(StoreError::Corrupt(format!("{v} refused")));
            }
            Ok(v)
        });
        group.push(Box::new(w));
        rx
    }

    fn rows(c: &Connection) -> Vec<String> {
        let mut s = c
            .prepare("SELECT v FROM t ORDER BY rowid")
            .expect("prepare");
        let rows = s.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    }

    fn answer<R>(mut rx: Answer<R>) -> Result<R, StoreError> {
        rx.try_recv().expect("answered during the drain")
    }

    #[test]
    fn queued_writes_share_one_commit_and_a_failed_one_undoes_only_its_own() {
        let (group, c) = (Group::default(), table());
        let mut a = insert(&group, "a", false);
        let b = insert(&group, "b", true);
        let z = insert(&group, "c", false);
        assert_eq!(group.queued(), 3);
        assert!(
            matches!(a.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
            "nothing runs or answers before a drain"
        );
        assert!(rows(&c).is_empty());
        let mut changed = 0;
        group.drain(&c, || changed += 1);
        assert_eq!(answer(a).expect("a"), "a");
        assert!(matches!(answer(b), Err(StoreError::Corrupt(m)) if m == "b refused"));
        assert_eq!(answer(z).expect("c"), "c");
        assert_eq!(rows(&c), ["a", "c"]);
        assert_eq!((group.commits(), changed, group.queued()), (1, 1, 0));
        assert!(c.is_autocommit(), "no transaction left open");
    }

    #[test]
    fn a_panicking_write_is_undone_and_answered_as_failed() {
        let (group, c) = (Group::default(), table());
        let a = insert(&group, "a", false);
        let (w, p) = Pending::new(|c: &Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES ('p')", [])?;
            panic!("a bug in a write");
        });
        group.push(Box::new(w));
        let z = insert(&group, "c", false);
        group.drain(&c, || {});
        assert!(answer(a).is_ok() && answer(z).is_ok());
        assert!(matches!(answer(p), Err(StoreError::Join)));
        assert_eq!(rows(&c), ["a", "c"]);
    }

    #[test]
    fn when_the_commit_fails_no_write_is_answered_as_done() {
        let (group, c) = (Group::default(), table());
        let a = insert(&group, "a", false);
        // Accepted as it runs; refused by the deferred key check at COMMIT.
        let (w, orphan) = Pending::new(|c: &Connection| {
            c.execute("INSERT INTO child (p) VALUES (42)", [])?;
            Ok(())
        });
        group.push(Box::new(w));
        let mut changed = false;
        group.drain(&c, || changed = true);
        assert!(matches!(answer(a), Err(StoreError::NotCommitted(_))));
        assert!(matches!(answer(orphan), Err(StoreError::NotCommitted(_))));
        assert!(rows(&c).is_empty() && !changed && group.commits() == 0);
        assert!(c.is_autocommit(), "the failed transaction was rolled back");
    }

    #[test]
    fn when_no_transaction_can_begin_nothing_runs_and_every_write_hears_why() {
        let (group, c) = (Group::default(), table());
        c.execute_batch("BEGIN")
            .expect("someone else's transaction");
        let a = insert(&group, "a", false);
        group.drain(&c, || {});
        assert!(matches!(answer(a), Err(StoreError::NotCommitted(_))));
        c.execute_batch("ROLLBACK").expect("rollback");
        assert!(rows(&c).is_empty());
    }
}
