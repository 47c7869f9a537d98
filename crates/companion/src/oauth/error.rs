//! How failures of the companion's own parts become OAuth errors.

use spor_wire::oauth::OAuthError;

use crate::store::StoreError;

/// A storage failure is our fault: logged here, and the client is told only
/// that the server failed.
impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        Self::ServerError("storage failure; see the companion's log".into())
    }
}
