//! The bridge as an OAuth 2.1 client of the companion (or any MCP
//! authorization server): discovery (RFC 9728 → RFC 8414), dynamic
//! registration (RFC 7591), authorization code + PKCE S256 through the
//! browser and a loopback callback, refresh with rotation. Credentials live
//! in the secret store, and every renewal happens under a cross-process
//! lock, so several bridges share one registration and one token pair
//! instead of racing each other through the browser.
//!
//! - `client`: [`OAuthClient`], handing out tokens and renewing them;
//! - `discovery`: finding and checking the authorization server;
//! - `registration`: registering, and probing a kept registration;
//! - `authorize`: the browser flow with PKCE and the loopback callback;
//! - `token`: the token endpoint;
//! - `credentials`: what is stored, and the lock around it;
//! - `http`, `error`, `settings`: what those share.

mod authorize;
mod client;
mod credentials;
mod discovery;
mod error;
mod http;
mod registration;
mod settings;
mod token;

pub use client::OAuthClient;
pub use discovery::resource_metadata_hint;
pub use error::AuthError;
pub use settings::ClientSettings;
