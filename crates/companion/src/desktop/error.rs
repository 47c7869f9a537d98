//! How every failure reaches the window: one `{code, message}` type and the
//! mapping of each domain error into it, so a code means the same thing
//! whichever button produced it.

use serde::Serialize;

use crate::accounts::AccountError;
use crate::config::ConfigError;
use crate::connect::ConnectError;
use crate::consent::ConsentError;
use crate::secrets::SecretError;
use crate::store::StoreError;

/// An error as the window shows it: a stable code and a sentence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DesktopError {
    /// Stable, for the UI's logic.
    pub code: &'static str,
    /// For the person.
    pub message: String,
}

impl DesktopError {
    /// An error with this code and sentence.
    pub(super) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for DesktopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DesktopError {}

impl From<StoreError> for DesktopError {
    fn from(e: StoreError) -> Self {
        // The details are for the log; the person only needs to know where to look.
        tracing::error!(error = %e, "database error");
        Self::new(
            "storage",
            "Spor Companion could not read or write its database; see its log.",
        )
    }
}

impl From<SecretError> for DesktopError {
    fn from(e: SecretError) -> Self {
        Self::new("keychain", format!("The keychain refused: {e}"))
    }
}

impl From<AccountError> for DesktopError {
    fn from(e: AccountError) -> Self {
        match e {
            // Same wording as these failures have anywhere else in the window.
            AccountError::Store(e) => e.into(),
            AccountError::Secret(e) => e.into(),
            e => Self::new(e.code(), sentence(&e.to_string())),
        }
    }
}

impl From<ConfigError> for DesktopError {
    fn from(e: ConfigError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<ConsentError> for DesktopError {
    fn from(e: ConsentError) -> Self {
        let code = e.code();
        // The error's own text speaks of the CLI (`--account`, `account add`);
        // the window says what to do in the window.
        let message = match e {
            ConsentError::UnknownRequest => {
                "This request has expired or was already decided. Connect again from the assistant."
            }
            ConsentError::UnknownAccount(_) => "That account no longer exists.",
            ConsentError::AccountRejected(_) => {
                "The server rejected this account's token. Paste a new one first."
            }
            ConsentError::AccountRequired => "Choose an organization first.",
            ConsentError::NoAccount => "Add your Spor token first.",
            ConsentError::Store(e) => return e.into(),
        };
        Self::new(code, message)
    }
}

impl From<ConnectError> for DesktopError {
    fn from(e: ConnectError) -> Self {
        Self::new(e.code(), sentence(&e.to_string()))
    }
}

/// Capitalizes the first letter and ends with a full stop.
pub(super) fn sentence(s: &str) -> String {
    let mut c = s.chars();
    let mut out: String = match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}
