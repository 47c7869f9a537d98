//! Spor Companion core, with no GUI dependencies: everything the headless
//! daemon, the desktop shell and the tests share.
//!
//! - [`server`]: router assembly, the peer (OS user) and loopback
//!   (Host/Origin) guards, `serve`.
//! - [`listener`]: the port on both loopback families; each connection's ends.
//! - [`peer`]: which OS user and program is at the other end of a loopback
//!   socket, and who listens on a port.
//! - [`oauth`]: the OAuth 2.1 authorization server (metadata, registration,
//!   authorize + consent page, token, revoke, PKCE, redirect-URI rules).
//! - [`consent`]: pending authorization requests and their approve/deny.
//! - [`client_documents`]: the metadata documents that name CIMD clients,
//!   fetched from public addresses only and kept while fresh.
//! - [`gateway`]: `/mcp` — bearer check and forwarding to the upstream.
//! - [`upstream`]: the Spor REST client and which server URLs are allowed.
//! - [`grants`]: disconnecting an assistant, reading its activity.
//! - [`access`]: what one assistant may do with the account's tools.
//! - [`accounts`]: adding, replacing and removing PATs, all-or-nothing.
//! - [`store`]: the SQLite database (clients, accounts, grants, tokens, audit).
//! - [`secrets`]: PAT storage — OS keychain, or an explicit `0600` file.
//! - [`control`]: the same-user Unix socket the CLI drives the daemon through.
//! - [`service`]: a running server + control socket, started and stopped as one.
//! - [`bridge`]: the stdio ↔ Streamable HTTP bridge (an OAuth client of the
//!   companion) that stdio-only hosts such as Claude Desktop run.
//! - [`connect`]: adding `spor` to assistants' configs (files or `claude mcp`).
//! - [`desktop`]: what a graphical app shows and does, as serializable views.
//! - [`state`]: `AppState`, a bundle of the leaf parts every handler shares.
//! - [`config`]: start-up settings, limits, the data dir, the port.
//! - [`events`], [`clock`], [`tokens`], [`paste_limit`], [`shutdown`],
//!   [`http_body`] (bounded reading of response bodies), [`sse`] (the one
//!   event-stream parser): shared plumbing.
//! - [`host`], [`sensitive`]: re-exported from `spor_wire`, the crate of the
//!   pure parsing and checking steps (which the fuzz targets build alone).

pub mod access;
pub mod accounts;
pub mod bridge;
pub mod client_documents;
pub mod clock;
pub mod config;
pub mod connect;
pub mod consent;
pub mod control;
pub mod desktop;
pub mod events;
pub mod gateway;
pub mod grants;
pub mod http_body;
pub mod listener;
pub mod oauth;
pub mod paste_limit;
pub mod peer;
pub mod secrets;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod sse;
pub mod state;
pub mod store;
pub mod tokens;
pub mod upstream;

/// The loopback host a request named us by, and our route paths.
pub use spor_wire::host;
/// Secrets that cannot leak by `Debug`, and comparing them in constant time.
pub use spor_wire::sensitive;
