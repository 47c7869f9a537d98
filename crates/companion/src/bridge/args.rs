//! What the bridge is started with: its options, the endpoint check, and
//! why it could not start.

use url::Url;

use crate::host::is_on_this_machine;

use super::callback;
use super::oauth::AuthError;
use super::socket_owner::SocketOwnerError;
use crate::secrets::owner_only::OwnerOnlyError;

/// `bridge` options, shared by `spor-companiond bridge` and the desktop
/// binary's `spor-companion bridge`.
#[derive(Debug, Clone, clap::Args)]
pub struct BridgeArgs {
    /// The companion's MCP endpoint [default: http://127.0.0.1:<configured port>/mcp].
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Name shown on the consent screen [default: the host's own name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Loopback port for the sign-in answer (another free one if taken).
    #[arg(long, value_name = "PORT", default_value_t = callback::CALLBACK_PORT)]
    pub callback_port: u16,
    /// How long to wait for approval in the browser.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub auth_timeout: u64,
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The URL is unusable.
    #[error("{0}")]
    Url(String),
    /// The secret store could not be opened.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretError),
    /// The configured port is unusable.
    #[error("{0}")]
    Config(String),
    /// Talking to the host failed.
    #[error("stdio: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP client could not be built.
    #[error("{0}")]
    Auth(#[from] AuthError),
    /// Another OS user listens at the companion's address.
    #[error(transparent)]
    Socket(#[from] SocketOwnerError),
    /// The data folder is not, and cannot be made, the user's alone.
    #[error(transparent)]
    Files(#[from] OwnerOnlyError),
}

/// Checks and normalizes the endpoint: `https`, or `http` on loopback only
/// (tokens must not cross a network in the clear).
pub fn endpoint(raw: &str) -> Result<Url, BridgeError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| BridgeError::Url(format!("{raw:?} is not a URL: {e}")))?;
    let loopback = url.host().is_some_and(|h| is_on_this_machine(&h));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(BridgeError::Url(format!(
                "{url} is plain http on another machine; use https (tokens must not travel unencrypted)"
            )))
        }
        other => return Err(BridgeError::Url(format!("{url}: unsupported scheme {other:?}"))),
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(BridgeError::Url(format!(
            "{raw:?}: credentials and fragments do not belong in the URL"
        )));
    }
    Ok(url)
}
