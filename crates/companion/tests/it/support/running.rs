//! A spawned server (the companion, or the fake upstream) and the means to
//! stop it: through its shutdown future, bounded, so a test never hangs on a
//! server that will not end and never leaves one running after it fails.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const STOP_WITHIN: Duration = Duration::from_secs(10);

/// A spawned server and the means to stop it through its shutdown future.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub(super) fn new(stop: oneshot::Sender<()>, task: JoinHandle<std::io::Result<()>>) -> Self {
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Resolves the shutdown future and waits (bounded) for a clean exit.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(STOP_WITHIN, t)
                .await
                .expect("server stops within 10 s of shutdown")
                .expect("server task did not panic")
                .expect("server exited cleanly");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test never reaches `stop`; still end the server.
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
