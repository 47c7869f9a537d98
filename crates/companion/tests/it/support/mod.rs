//! What the integration tests share, one file per role:
//!
//! - [`harness`]: the real companion server with its temp database,
//!   in-memory secret store, fake clock and HTTP client;
//! - [`oauth`]: the OAuth flow a well-behaved client drives (register,
//!   authorize, consent, token exchange and refresh);
//! - [`mcp`]: calls to the companion's `/mcp` gateway and its challenge;
//! - [`store`]: seeding and reading the companion's state directly;
//! - [`upstream`]: the fake Spor server the companion talks to;
//! - [`documents`]: an HTTPS server of client metadata documents (CIMD)
//!   with a CA made for the test;
//! - [`http`]: parameters, whole responses and their shared assertions,
//!   loopback ports;
//! - [`logs`]: the companion's log lines, captured per level;
//! - [`running`]: stopping a spawned server, bounded.
//!
//! Everything a test names is re-exported here, so test modules write
//! `crate::support::Harness` without knowing which file holds it (a test
//! starts a second `FakeUpstream` to play a planted server). Types a test
//! only reaches through a value (`Counts`, `Seen`) are not: an unused
//! re-export is a warning.

mod documents;
mod harness;
mod http;
mod logs;
mod mcp;
mod oauth;
mod running;
mod store;
mod upstream;

pub use documents::{Answer, DocumentServer, FixedNames, DOC_HOST};
pub use harness::{Harness, START, UPSTREAM_HEADER_TIMEOUT};
pub use http::{closed_port, other_port, query_of, Params, Reply};
pub use logs::Logs;
pub use mcp::{assert_invalid_token, INIT};
pub use oauth::{scrape_csrf, Connected, Pkce, Tokens, CLIENT_NAME, REDIRECT};
pub use upstream::{
    hash_prefix, FakeUpstream, McpMode, ToolServer, PAT, PAT_BETA, UPSTREAM_EXPIRED,
    UPSTREAM_REJECTION,
};
