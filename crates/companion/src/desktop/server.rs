//! The embedded server's lifecycle as the window drives it: start, report a
//! port in use, move to another port, stop; and which port to use first.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Serialize;

use super::error::{sentence, DesktopError};
use crate::config::{self, Settings};
use crate::control::ControlError;
use crate::listener::BindError;
use crate::service::{Companion, StartError};
use crate::state::AppState;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// Not started yet.
    Starting,
    /// Serving.
    Running,
    /// The port is held by another program.
    PortInUse,
    /// Could not start for another reason.
    Failed,
}

/// The server as the status line shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatus {
    /// Lifecycle state.
    pub state: ServerState,
    /// The port in use or wanted.
    pub port: u16,
    /// The MCP endpoint, while running.
    pub mcp_url: Option<String>,
    /// Why it is not running.
    pub message: Option<String>,
}

/// The window's handle on the app's [`Companion`]: started at launch,
/// restartable on another port, with the status the window shows.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    inner: tokio::sync::Mutex<(Option<Companion>, ServerStatus)>,
}

impl Server {
    /// A server for `state`, not started yet, meant for `port`.
    pub fn new(state: AppState, port: u16) -> Self {
        Self {
            state,
            inner: tokio::sync::Mutex::new((
                None,
                ServerStatus {
                    state: ServerState::Starting,
                    port,
                    mcp_url: None,
                    message: None,
                },
            )),
        }
    }

    /// The current status.
    pub async fn status(&self) -> ServerStatus {
        self.inner.lock().await.1.clone()
    }

    /// (Re)starts on `port` and reports how that went; the old listener is
    /// released first so the same port can be retried.
    pub async fn start(&self, port: u16) -> ServerStatus {
        let mut inner = self.inner.lock().await;
        if let Some(old) = inner.0.take() {
            if let Err(e) = old.stop().await {
                tracing::warn!(error = %e, "the previous server ended with an error");
            }
        }
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        inner.1 = match Companion::start(self.state.clone(), listen).await {
            Ok(service) => {
                let status = ServerStatus {
                    state: ServerState::Running,
                    port: service.addr().port(),
                    mcp_url: Some(service.mcp_url()),
                    message: None,
                };
                inner.0 = Some(service);
                status
            }
            Err(e) => {
                let (state, message) = match &e {
                    StartError::Bind(BindError::InUse { addr, holder }) => (
                        ServerState::PortInUse,
                        format!("Port {} is in use on {} by {holder}. Choose another port, or quit that program and try again.", addr.port(), addr.ip()),
                    ),
                    StartError::Control(ControlError::AlreadyRunning(dir)) => (
                        ServerState::Failed,
                        format!(
                            "Another Spor Companion is already running with the data folder {}. Quit it (or stop spor-companiond), then try again.",
                            dir.display()
                        ),
                    ),
                    other => (ServerState::Failed, sentence(&other.to_string())),
                };
                tracing::warn!(error = %e, "the server did not start");
                ServerStatus {
                    state,
                    port,
                    mcp_url: None,
                    message: Some(message),
                }
            }
        };
        inner.1.clone()
    }

    /// Moves to `port` chosen by the person; remembered once it works.
    pub async fn use_port(&self, port: u32) -> Result<ServerStatus, DesktopError> {
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p >= 1024)
            .ok_or_else(|| {
                DesktopError::new("invalid_port", "Choose a port between 1024 and 65535.")
            })?;
        let status = self.start(port).await;
        if status.state == ServerState::Running {
            let settings = Settings { port: Some(port) };
            if let Err(e) = settings.save(&self.state.config.data_dir) {
                tracing::warn!(error = %e, "could not save the chosen port");
            }
        }
        Ok(status)
    }

    /// Stops serving (on quit): live streams end, the port is released.
    pub async fn stop(&self) {
        let mut inner = self.inner.lock().await;
        if let Some(service) = inner.0.take() {
            if let Err(e) = service.stop().await {
                tracing::warn!(error = %e, "the server ended with an error");
            }
        }
        inner.1.state = ServerState::Starting;
        inner.1.mcp_url = None;
    }
}

/// Reads the port to use: the environment's choice, else the saved one,
/// else the default.
pub fn configured_port(data_dir: &Path, env: Option<&str>) -> Result<u16, DesktopError> {
    config::configured_port(data_dir, env).map_err(DesktopError::from)
}

/// The MCP URL assistants should use: the running one, else the wanted port's.
pub(super) fn server_url(server: &ServerStatus) -> String {
    server.mcp_url.clone().unwrap_or_else(|| {
        crate::service::mcp_url(SocketAddr::from((Ipv4Addr::LOCALHOST, server.port)))
    })
}
