//! The pure steps of Spor Companion's HTTP surface: parsing and checking
//! what clients send, with no I/O and no state. The companion's handlers run
//! them first and act on the result; the fuzz targets in `fuzz/` run them
//! alone against oracles written from the RFCs. Also the one other parser
//! the companion feeds with outside text: the editor of MCP hosts' config
//! files.
//!
//! - [`host`]: the loopback host a request named us by, and our route paths.
//! - [`oauth`]: authorization, registration and token requests, redirect
//!   URIs, PKCE, scope, and the one OAuth error type.
//! - [`bearer`]: the `Authorization: Bearer` header of `/mcp` calls.
//! - [`peek`]: the method and tool name of a JSON-RPC body, for the call log.
//! - [`jsonrpc`]: JSON-RPC error responses and their codes.
//! - [`mirror`]: MCP 2026-07-28's headers that mirror a request's body.
//! - [`jsonc`]: a format-preserving editor for the JSON and JSONC config
//!   files of MCP hosts (the companion's `connect`).
//! - [`sensitive`]: a wrapper that keeps secrets out of logs, and comparing
//!   secrets in constant time.

pub mod bearer;
pub mod host;
pub mod jsonc;
pub mod jsonrpc;
pub mod mirror;
pub mod oauth;
pub mod peek;
pub mod sensitive;
