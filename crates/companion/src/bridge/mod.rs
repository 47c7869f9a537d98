//! `bridge`: a stdio ↔ Streamable HTTP MCP bridge, so hosts that only run
//! local programs (Claude Desktop) reach the companion without Node.js. The
//! host writes newline-delimited JSON-RPC to stdin; each message is POSTed
//! to the MCP endpoint with a bearer token the bridge obtained as an OAuth
//! client ([`oauth`]); JSON and SSE answers, and the server's own stream
//! (GET), come back out on stdout one message per line. Messages are
//! relayed, never interpreted — only `initialize` is read, for the host's
//! name and so a lost session can be re-established.
//!
//! Nothing goes to a companion address another OS user listens on
//! ([`socket_owner`]), and the bridge's folder, lock and secret files are
//! its user's alone (`secrets::owner_only`).

mod args;
pub mod browser;
pub mod callback;
mod forward;
mod mcp;
pub mod oauth;
mod relay;
mod session;
pub mod socket_owner;
mod stdio;
mod stream;

use std::path::PathBuf;

use crate::secrets::owner_only;
use crate::secrets::{SecretStore, SecretStoreKind, Vault};
pub use args::{endpoint, BridgeArgs, BridgeError};
use relay::Relay;

/// The desktop binary's `spor-companion bridge …`: the daemon's options,
/// parsed the same way.
#[derive(Debug, clap::Parser)]
#[command(name = "spor-companion bridge", version)]
struct Standalone {
    /// Where the bridge's lock files (and a file secret store) live.
    #[arg(long, env = "SPOR_COMPANION_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where the bridge keeps its tokens.
    #[arg(
        long,
        env = "SPOR_COMPANION_SECRET_STORE",
        value_enum,
        default_value = "keychain"
    )]
    secret_store: SecretStoreKind,
    #[command(flatten)]
    args: BridgeArgs,
}

/// Entry point for a binary whose first argument was `bridge`; `argv` starts
/// with that argument.
pub fn main_from_args(
    argv: impl IntoIterator<Item = std::ffi::OsString>,
) -> std::process::ExitCode {
    use clap::Parser;
    let cli = match Standalone::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
    let Some(data_dir) = cli.data_dir.or_else(crate::config::default_data_dir) else {
        eprintln!("error: cannot determine a data directory; pass --data-dir");
        return std::process::ExitCode::FAILURE;
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BridgeError::Io)
        .and_then(|rt| rt.block_on(run(cli.args, data_dir, cli.secret_store)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the bridge on this process's stdin/stdout until stdin closes.
pub async fn run(
    args: BridgeArgs,
    data_dir: PathBuf,
    kind: SecretStoreKind,
) -> Result<(), BridgeError> {
    let raw = match args.url.clone() {
        Some(u) => u,
        None => {
            let env = std::env::var("SPOR_COMPANION_PORT").ok();
            let port = crate::config::configured_port(&data_dir, env.as_deref())
                .map_err(|e| BridgeError::Config(e.to_string()))?;
            format!("http://127.0.0.1:{port}/mcp")
        }
    };
    let url = endpoint(&raw)?;
    // Refused at once, before anything is read or written, so the host's
    // log says why the bridge stopped.
    socket_owner::check(&url).await?;
    let dir = data_dir.clone();
    tokio::task::spawn_blocking(move || owner_only::dir(&dir))
        .await
        .map_err(|e| BridgeError::Io(std::io::Error::other(e)))??;
    let store = SecretStore::open_vault(Vault::Bridge, kind, &data_dir)?;
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let stdout = tokio::io::stdout();
    let (relay, out) = Relay::new(url, args, data_dir, store)?;
    relay.serve(out, stdin, stdout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_endpoints_are_accepted() {
        for ok in [
            "http://127.0.0.1:7767/mcp",
            "http://localhost:7767/mcp",
            "http://[::1]:7767/mcp",
            "https://mcp.spor.example/mcp",
        ] {
            assert!(endpoint(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            (
                "http://192.168.1.2:7767/mcp",
                "plain http on another machine",
            ),
            (
                "http://localhost.evil.example/mcp",
                "plain http on another machine",
            ),
            ("ftp://127.0.0.1/mcp", "unsupported scheme"),
            ("http://user:pw@127.0.0.1/mcp", "credentials and fragments"),
            ("http://127.0.0.1/mcp#x", "credentials and fragments"),
            ("not a url", "is not a URL"),
        ] {
            let e = endpoint(bad).expect_err(bad).to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
