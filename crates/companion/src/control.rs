//! The control channel: a Unix socket in the data dir (mode `0600`, peer
//! must be the same OS user) through which the CLI acts on the running
//! daemon — consent decisions, grant revocation and access. One JSON request line,
//! one JSON response line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::access::Access;
use crate::consent::{self, ConsentError};
use crate::grants;
use crate::state::AppState;

/// Socket file name inside the data dir.
pub const SOCKET_NAME: &str = "control.sock";
/// Longest request line accepted.
const MAX_LINE: usize = 8 * 1024;

/// A command for the running daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Pending authorization requests.
    ConsentList,
    /// Approve one, as an account (or the only account).
    ConsentApprove {
        /// Request id.
        id: String,
        /// Account id.
        account_id: Option<String>,
        /// What the assistant may do (`Access::parse`); full when absent.
        #[serde(default)]
        access: Option<String>,
    },
    /// Deny one.
    ConsentDeny {
        /// Request id.
        id: String,
    },
    /// Connected assistants.
    GrantsList {
        /// Also list ended grants.
        include_revoked: bool,
    },
    /// Disconnect one assistant.
    GrantsRevoke {
        /// Grant id.
        id: String,
    },
    /// Change what one assistant may do.
    GrantsAccess {
        /// Grant id.
        id: String,
        /// The new access (`Access::parse`).
        access: String,
    },
    /// Recent calls of one assistant.
    GrantsActivity {
        /// Grant id.
        id: String,
        /// How many, newest first.
        limit: u32,
    },
}

/// The daemon's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the command succeeded.
    pub ok: bool,
    /// The result, on success.
    #[serde(default)]
    pub data: serde_json::Value,
    /// A stable error code, on failure.
    #[serde(default)]
    pub code: Option<String>,
    /// A human message, on failure.
    #[serde(default)]
    pub message: Option<String>,
}

impl Reply {
    fn ok(data: serde_json::Value) -> Self {
        Self {
            ok: true,
            data,
            code: None,
            message: None,
        }
    }

    fn err(code: &str, message: impl ToString) -> Self {
        Self {
            ok: false,
            data: serde_json::Value::Null,
            code: Some(code.into()),
            message: Some(message.to_string()),
        }
    }
}

/// Errors of the control channel itself.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nobody is listening.
    #[error(
        "the Spor Companion daemon is not running for {0} (start it with `spor-companiond serve`)"
    )]
    NotRunning(PathBuf),
    /// Another daemon already serves this data dir.
    #[error("another Spor Companion is already running with the data dir {0}")]
    AlreadyRunning(PathBuf),
    /// I/O trouble.
    #[error("control channel: {0}")]
    Io(#[from] std::io::Error),
    /// Garbled answer.
    #[error("control channel: unexpected answer from the daemon")]
    Protocol,
    /// Not on this platform.
    #[error("the control channel needs a Unix socket; not available on this platform")]
    Unsupported,
}

/// Executes one command against the state.
pub async fn execute(state: &AppState, cmd: Command) -> Reply {
    let now = state.now();
    match cmd {
        Command::ConsentList => Reply::ok(serde_json::json!(state.consent.list(now))),
        Command::ConsentApprove {
            id,
            account_id,
            access,
        } => {
            let access = match access.as_deref().map(Access::parse).transpose() {
                Ok(a) => a.unwrap_or_default(),
                Err(e) => return Reply::err(e.code(), e),
            };
            match consent::approve(state, &id, account_id.as_deref(), access).await {
                Ok(_) => Reply::ok(serde_json::json!({ "id": id, "approved": true })),
                Err(e) => consent_error(e),
            }
        }
        Command::ConsentDeny { id } => match consent::deny(state, &id) {
            Ok(_) => Reply::ok(serde_json::json!({ "id": id, "approved": false })),
            Err(e) => consent_error(e),
        },
        Command::GrantsList { include_revoked } => {
            match state.store.grants(include_revoked).await {
                Ok(g) => Reply::ok(serde_json::json!(g)),
                Err(e) => Reply::err("storage", e),
            }
        }
        Command::GrantsRevoke { id } => match grants::disconnect(state, &id).await {
            Ok(true) => Reply::ok(serde_json::json!({ "id": id, "revoked": true })),
            Ok(false) => Reply::err(
                "not_found",
                format!("no connected assistant with grant id {id}"),
            ),
            Err(e) => Reply::err("storage", e),
        },
        Command::GrantsAccess { id, access } => {
            let access = match Access::parse(&access) {
                Ok(a) => a,
                Err(e) => return Reply::err(e.code(), e),
            };
            match grants::set_access(state, &id, access.clone()).await {
                Ok(true) => Reply::ok(serde_json::json!({ "id": id, "access": access })),
                Ok(false) => Reply::err(
                    "not_found",
                    format!("no connected assistant with grant id {id}"),
                ),
                Err(e) => Reply::err("storage", e),
            }
        }
        Command::GrantsActivity { id, limit } => match grants::activity(state, &id, limit).await {
            Ok(Some(calls)) => Reply::ok(serde_json::json!(calls)),
            Ok(None) => Reply::err("not_found", format!("no assistant with grant id {id}")),
            Err(e) => Reply::err("storage", e),
        },
    }
}

fn consent_error(e: ConsentError) -> Reply {
    Reply::err(e.code(), e)
}

/// Where the socket of a data dir is.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

#[cfg(unix)]
mod unix {
    use std::future::Future;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{UnixListener, UnixStream};

    use super::{execute, Command, ControlError, Reply, MAX_LINE};
    use crate::state::AppState;

    /// Binds the socket (refusing if a live daemon holds it) with mode 0600.
    pub async fn bind(path: &Path) -> Result<UnixListener, ControlError> {
        if path.exists() {
            if UnixStream::connect(path).await.is_ok() {
                return Err(ControlError::AlreadyRunning(
                    path.parent().unwrap_or(path).to_path_buf(),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(listener)
    }

    /// Answers commands until `shutdown` resolves, then removes the socket.
    pub async fn serve(
        listener: UnixListener,
        path: PathBuf,
        state: AppState,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let owner = std::fs::metadata(&path).map(|m| m.uid()).ok();
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(e) => { tracing::warn!(error = %e, "control accept failed"); continue; }
                },
            };
            let same_user = stream.peer_cred().ok().map(|c| c.uid()) == owner && owner.is_some();
            let state = state.clone();
            tokio::spawn(async move {
                if !same_user {
                    tracing::warn!("control connection from another OS user refused");
                    return;
                }
                if let Err(e) = handle(stream, &state).await {
                    tracing::debug!(error = %e, "control connection ended");
                }
            });
        }
        let _ = std::fs::remove_file(&path);
    }

    async fn handle(stream: UnixStream, state: &AppState) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        BufReader::new(read.take(MAX_LINE as u64))
            .read_line(&mut line)
            .await?;
        let reply = match serde_json::from_str::<Command>(line.trim()) {
            Ok(cmd) => execute(state, cmd).await,
            Err(_) => Reply::err("bad_request", "unknown or malformed command"),
        };
        let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
        out.push(b'\n');
        write.write_all(&out).await?;
        write.shutdown().await
    }

    /// Sends one command to the daemon of `data_dir`.
    pub async fn send(data_dir: &Path, cmd: &Command) -> Result<Reply, ControlError> {
        let path = super::socket_path(data_dir);
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|_| ControlError::NotRunning(data_dir.to_path_buf()))?;
        let (read, mut write) = stream.into_split();
        let mut out = serde_json::to_vec(cmd).map_err(|_| ControlError::Protocol)?;
        out.push(b'\n');
        write.write_all(&out).await?;
        let mut line = String::new();
        BufReader::new(read).read_line(&mut line).await?;
        serde_json::from_str(&line).map_err(|_| ControlError::Protocol)
    }
}

#[cfg(unix)]
pub use unix::{bind, send, serve};

/// Sends one command to the daemon of `data_dir`.
#[cfg(not(unix))]
pub async fn send(_data_dir: &Path, _cmd: &Command) -> Result<Reply, ControlError> {
    Err(ControlError::Unsupported)
}
