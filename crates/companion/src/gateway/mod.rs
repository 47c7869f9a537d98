//! `/mcp`: the bearer check and transport-level forwarding to the grant's
//! upstream with the account's PAT in place of the assistant's token.

mod bearer;
mod forward;

use axum::routing::any;
use axum::Router;

use crate::oauth::MCP_PATH;
use crate::state::AppState;

pub use bearer::{challenge, Bearer};
pub use forward::PatCache;

/// The `/mcp` route.
pub fn router() -> Router<AppState> {
    Router::new().route(MCP_PATH, any(forward::handle))
}
