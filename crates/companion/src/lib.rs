//! Spor Companion core, with no GUI dependencies: everything the headless
//! daemon, the desktop shell and the tests share.
//!
//! - [`server`]: router assembly, the loopback (Host/Origin) guard, `serve`.
//! - [`oauth`]: the OAuth 2.1 authorization server (metadata, registration,
//!   authorize + consent page, token, revoke, PKCE, redirect-URI rules).
//! - [`consent`]: pending authorization requests and their approve/deny.
//! - [`gateway`]: `/mcp` — bearer check and forwarding to the upstream.
//! - [`upstream`]: the Spor REST client and which server URLs are allowed.
//! - [`grants`]: disconnecting an assistant, reading its activity.
//! - [`accounts`]: adding, replacing and removing PATs, all-or-nothing.
//! - [`store`]: the SQLite database (clients, accounts, grants, tokens, audit).
//! - [`secrets`]: PAT storage — OS keychain, or an explicit `0600` file.
//! - [`control`]: the same-user Unix socket the CLI drives the daemon through.
//! - [`service`]: a running server + control socket, started and stopped as one.
//! - [`bridge`]: the stdio ↔ Streamable HTTP bridge (an OAuth client of the
//!   companion) that stdio-only hosts such as Claude Desktop run.
//! - [`connect`]: adding `spor` to assistants' configs (files or `claude mcp`).
//! - [`desktop`]: what a graphical app shows and does, as serializable views.
//! - [`state`], [`events`], [`clock`], [`tokens`], [`sensitive`]: shared plumbing.

pub mod accounts;
pub mod bridge;
pub mod clock;
pub mod connect;
pub mod consent;
pub mod control;
pub mod desktop;
pub mod events;
pub mod gateway;
pub mod grants;
pub mod oauth;
pub mod secrets;
pub mod sensitive;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
pub mod tokens;
pub mod upstream;

/// The pure parsing and validation steps of the HTTP surface, in one place
/// for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::consent::client_redirect;
    pub use crate::gateway::{peek, Bearer, Peek};
    pub use crate::oauth::authorize::{
        check_request as check_authorize, select_redirect, CheckedRequest,
    };
    pub use crate::oauth::redirect_uri::RedirectUri;
    pub use crate::oauth::register::{check_metadata, Registration};
    pub use crate::oauth::token::{check_request as check_token, parse_form, Grant, TokenRequest};
    pub use crate::oauth::{check_scope, parse_params, pkce, LocalHost, OAuthError, SCOPE};
}
