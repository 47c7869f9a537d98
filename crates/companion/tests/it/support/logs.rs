//! The companion's log lines as a test sees them: captured on the test's
//! thread (where `#[tokio::test]` runs the server too), INFO and above
//! apart from everything down to DEBUG, so a test can check what a
//! default-level log (and a debug one) would show.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;
use tracing::Level;
use tracing_subscriber::fmt::writer::{MakeWriter, MakeWriterExt};
use tracing_subscriber::EnvFilter;

/// Bytes written by one level range of the capture.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The companion's log lines (its own crates only) from creation until
/// dropped, on this thread.
pub struct Logs {
    info: Sink,
    debug: Sink,
    _guard: DefaultGuard,
}

impl Logs {
    /// Starts capturing.
    pub fn capture() -> Self {
        let (info, debug) = (Sink::default(), Sink::default());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("spor_companion=debug,spor_wire=debug"))
            .with_ansi(false)
            .with_writer(info.clone().with_max_level(Level::INFO).and(debug.clone()))
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            info,
            debug,
            _guard: guard,
        }
    }

    /// INFO, WARN and ERROR lines: what a daemon logs by default.
    pub fn info(&self) -> String {
        self.info.text()
    }

    /// Every line down to DEBUG.
    pub fn debug(&self) -> String {
        self.debug.text()
    }
}
