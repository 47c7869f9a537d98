//! The call log's writer. Forwarded calls queue their records in memory and
//! one task writes whatever has queued in a single transaction, so a tool
//! call never waits for, or pays for, a database commit of its own; under
//! load, batches grow and commits stay few.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{CallRecord, Store};

/// Records waiting at most; beyond this they are dropped (and counted)
/// rather than slowing calls down or growing memory without bound.
const QUEUE: usize = 16 * 1024;
/// Records written in one transaction at most.
const BATCH: usize = 1024;
/// After a batch that did not fill up, the writer waits this long for more
/// so that a steady stream of calls makes a few commits a second, not one
/// per call.
const LINGER: Duration = Duration::from_millis(25);
/// How long [`CallLog::flush`] waits for the writer.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

enum Msg {
    Record(CallRecord),
    Flush(oneshot::Sender<()>),
}

/// The queue in front of the `mcp_calls` table; cheap to clone.
#[derive(Clone)]
pub struct CallLog {
    tx: mpsc::Sender<Msg>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Msg>>>,
    dropped: Arc<AtomicU64>,
}

impl Default for CallLog {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Self {
            tx,
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            dropped: Arc::default(),
        }
    }
}

impl CallLog {
    /// Queues records without waiting; works outside a runtime (drop paths).
    pub(crate) fn push(&self, rows: Vec<CallRecord>) {
        for r in rows {
            if self.tx.try_send(Msg::Record(r)).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until everything queued before this call is written (bounded).
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = tokio::time::timeout(FLUSH_WAIT, done).await;
        }
    }

    /// Writes queued records for as long as it runs; one writer at a time
    /// (a second waits for the first to be aborted).
    pub async fn run(self, store: Store) {
        let mut rx = self.rx.lock().await;
        let mut rows = Vec::new();
        let mut acks = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Record(r) => rows.push(r),
                    Msg::Flush(ack) => acks.push(ack),
                }
                if rows.len() < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            let full = rows.len() >= BATCH;
            let wrote = !rows.is_empty();
            if wrote {
                if let Err(e) = store.record_calls(std::mem::take(&mut rows)).await {
                    tracing::warn!(error = %e, "could not record MCP calls");
                }
            }
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                tracing::warn!(dropped, "the call log fell behind; records were dropped");
            }
            let flushed = !acks.is_empty();
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
            if wrote && !full && !flushed {
                tokio::time::sleep(LINGER).await;
            }
        }
    }
}
