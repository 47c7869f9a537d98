//! What one bridge's OAuth client is set up with; shared by the client and
//! the browser flow, so it lives apart from both.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// Settings of one bridge's OAuth client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The MCP endpoint (the protected resource).
    pub resource: Url,
    /// `client_name` at registration; also part of the storage key.
    pub client_name: String,
    /// Preferred loopback callback port.
    pub callback_port: u16,
    /// How long to wait for the person in the browser.
    pub auth_timeout: Duration,
    /// The cross-process lock file for this resource.
    pub lock_path: PathBuf,
}
