//! Why the bridge could not get a usable access token: the one error every
//! step of the OAuth client returns, and the text the host shows the person.

use std::path::PathBuf;

use crate::bridge::socket_owner::SocketOwnerError;
use crate::secrets::owner_only::OwnerOnlyError;
use crate::secrets::SecretError;

/// Why the bridge could not get a usable access token. Messages are shown to
/// the person (as the JSON-RPC error the host displays) and carry no secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The server did not answer at all.
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    /// Discovery documents were missing or wrong.
    #[error("{0}")]
    Discovery(String),
    /// Dynamic registration failed.
    #[error("registration with {0} failed: {1}")]
    Registration(String, String),
    /// The person declined in the consent screen.
    #[error("access was not granted ({0}). Ask your assistant to connect again to retry.")]
    Denied(String),
    /// Nobody finished the consent screen in time.
    #[error("nobody approved the connection within {0} s. Ask your assistant to connect again to retry.")]
    TimedOut(u64),
    /// The token endpoint refused.
    #[error("the token endpoint refused: {0}")]
    Token(String),
    /// The callback listener could not start.
    #[error("cannot listen for the sign-in answer on 127.0.0.1: {0}")]
    Callback(String),
    /// Reading or writing the stored credentials failed.
    #[error(transparent)]
    Store(#[from] SecretError),
    /// The cross-process lock could not be taken.
    #[error("cannot lock {0}: {1}")]
    Lock(PathBuf, String),
    /// The lock file is not, and cannot be made, the user's alone.
    #[error(transparent)]
    Files(#[from] OwnerOnlyError),
    /// Another OS user listens where the companion should.
    #[error(transparent)]
    Socket(#[from] SocketOwnerError),
    /// A discovered endpoint is on another origin than the MCP endpoint.
    #[error("the {what} {url} is not on {origin}, where the bridge was told Spor Companion is; nothing is sent there")]
    ForeignOrigin {
        /// Which endpoint, e.g. `token_endpoint`.
        what: &'static str,
        /// Its URL, as the metadata named it.
        url: String,
        /// The MCP endpoint's origin.
        origin: String,
    },
}
