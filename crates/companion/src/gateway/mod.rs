//! `/mcp`: the bearer check and transport-level forwarding to the grant's
//! upstream with the account's PAT in place of the assistant's token, for
//! both MCP eras (legacy sessions bound to the grant that created them;
//! modern stateless requests and listen streams), the call log, and each
//! grant's access to the account's tools (`policy`, `catalogue`).

mod auth;
mod bearer;
mod cache;
mod calllog;
pub mod catalogue;
mod error;
mod forward;
mod headers;
pub mod listing;
mod log;
mod mirror;
mod policy;
mod relay;
mod session;
pub mod state;

use axum::routing::any;
use axum::Router;

use crate::host::MCP_PATH;
use crate::state::AppState;

pub use bearer::challenge;
pub use cache::{AccessCache, PatCache};
pub use calllog::CallLog;
pub use error::GatewayError;
pub use spor_wire::bearer::Bearer;
pub use spor_wire::peek::{peek, Peek};
pub use state::{Gateway, DEFAULT_HEADER_TIMEOUT, DEFAULT_STREAM_IDLE_TIMEOUT};

/// The `/mcp` route.
pub fn router() -> Router<AppState> {
    Router::new().route(MCP_PATH, any(forward::handle))
}
