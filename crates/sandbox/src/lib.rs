//! `spor-sandbox`: a small, faithful stand-in for a Spor server (tests, demos).
//!
//! It implements the subset of Spor's REST contract the companion relies on:
//! identity (`/v1/me`), org choices, and token list/revoke, with Spor's error
//! envelope, plus an MCP endpoint (`/mcp`, Streamable HTTP) whose tools store
//! nodes and stamp the author from the token. Tokens are stored as SHA-256
//! hashes only. For tests it can also sleep like a hosted graph
//! (`serve --wake-delay-ms`) and count what it was asked (`/_sandbox/`).

pub mod auth;
pub mod error;
pub mod faults;
pub mod mcp;
pub mod requests;
pub mod rest;
pub mod server;
pub mod sleep;
pub mod store;
pub mod time;
