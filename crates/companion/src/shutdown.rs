//! How a process is asked to stop: Ctrl-C, or SIGTERM on Unix.

/// Resolves on Ctrl-C, or SIGTERM on Unix: how a daemon or a bridge is asked
/// to stop. The handlers are installed when this is called, not when the
/// future is first polled: a supervisor may send SIGTERM the moment it reads
/// the ready line, and an uninstalled handler would let that signal kill the
/// process without a graceful stop. Must be called on a Tokio runtime.
pub fn signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (term, int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { _ = wait(term) => {}, _ = wait(int) => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
