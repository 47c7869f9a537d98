//! A running companion: the HTTP server and, on Unix, the control socket,
//! started on a loopback address and stopped cleanly. The headless daemon
//! and the desktop app each run one.

use std::net::SocketAddr;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::ControlError;
use crate::listener::{BindError, Loopback};
use crate::server;
use crate::state::AppState;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The port could not be bound on both loopback families.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The control socket could not be set up (e.g. another daemon runs).
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// The server and control socket of one companion, until [`Companion::stop`].
#[derive(Debug)]
pub struct Companion {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    control: Option<JoinHandle<()>>,
}

impl Companion {
    /// Binds `listen` (and its port on the other loopback family) and the
    /// control socket of the state's data dir, then serves both in the
    /// background. Nothing is left bound on failure.
    pub async fn start(state: AppState, listen: SocketAddr) -> Result<Self, StartError> {
        let listener = Loopback::bind(listen).await?;
        let addr = listener.local_addr().map_err(|source| BindError::Io {
            addr: listen,
            source,
        })?;
        let addrs = listener.addrs();
        let (stop, stop_rx) = watch::channel(false);
        let wait = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };

        #[cfg(unix)]
        let control = {
            let path = crate::control::socket_path(&state.config.data_dir);
            let socket = crate::control::bind(&path).await?;
            Some(tokio::spawn(crate::control::serve(
                socket,
                path,
                state.clone(),
                wait(stop_rx.clone()),
            )))
        };
        #[cfg(not(unix))]
        let control = None;

        tracing::info!(%addr, ?addrs, data_dir = %state.config.data_dir.display(), secret_store = %state.secrets.describe(), "serving");
        let http = tokio::spawn(server::serve(listener, state, wait(stop_rx)));
        Ok(Self {
            addr,
            stop,
            http,
            control,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The MCP endpoint assistants connect to.
    pub fn mcp_url(&self) -> String {
        mcp_url(self.addr)
    }

    /// Ends live streams, stops accepting, waits for both tasks.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        let result = match self.http.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        };
        if let Some(control) = self.control {
            let _ = control.await;
        }
        tracing::info!(addr = %self.addr, "stopped");
        result
    }
}

/// `http://127.0.0.1:PORT/mcp` for an address (IPv6 in brackets).
pub fn mcp_url(addr: SocketAddr) -> String {
    let host = if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}/mcp", addr.port())
}
