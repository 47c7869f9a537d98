//! `spor-sandbox` CLI: `serve` the stand-in Spor API, or `mint` a PAT.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use spor_sandbox::faults::Faults;
use spor_sandbox::server::{self, AppState};
use spor_sandbox::store::{MintRequest, NewPerson, Store};

/// A small stand-in for a Spor server, for tests and demos.
#[derive(Parser)]
#[command(name = "spor-sandbox", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Spor REST API (/v1) and MCP endpoint (/mcp) on a loopback
    /// address until SIGINT/SIGTERM.
    ///
    /// Prints `listening on http://ADDR` on stdout once ready. Faults for tests:
    /// SPOR_SANDBOX_FAULTS=org-choices-502,org-choices-404,mcp-401,mcp-500.
    Serve {
        /// Loopback address to bind; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Directory holding sandbox.db (created if missing).
        #[arg(long)]
        data_dir: PathBuf,
        /// Accept a token checked once without asking the database again
        /// (benchmarks: keeps this stand-in from being the bottleneck). A
        /// token revoked while serving stays accepted until restart.
        #[arg(long)]
        remember_tokens: bool,
        /// Sleep like a hosted graph: start asleep, and answer the first
        /// request after an idle spell (and any arriving while it wakes)
        /// only after this many milliseconds. `POST /_sandbox/sleep` sends
        /// it back to sleep at once; `GET /_sandbox/requests` counts what
        /// was asked.
        #[arg(long, value_name = "MS")]
        wake_delay_ms: Option<u64>,
        /// With --wake-delay-ms: how long without a request puts the graph
        /// back to sleep.
        #[arg(
            long,
            value_name = "SECS",
            default_value_t = 300,
            requires = "wake_delay_ms"
        )]
        idle_secs: u64,
    },
    /// Mint a personal access token and print it (only it) on stdout.
    ///
    /// People are keyed by email: minting again reuses the person and adds
    /// memberships. Works while `serve` runs on the same data dir.
    Mint {
        /// Directory holding sandbox.db (created if missing).
        #[arg(long)]
        data_dir: PathBuf,
        /// Person's display name (kept from the first mint for that email).
        #[arg(long, required_unless_present = "unbound")]
        name: Option<String>,
        /// Person's email; identifies the person.
        #[arg(long, required_unless_present = "unbound")]
        email: Option<String>,
        /// Org slug the token is scoped to.
        #[arg(long)]
        org: String,
        /// Another org the person belongs to (repeatable).
        #[arg(long = "member-of", value_name = "ORG", conflicts_with = "unbound")]
        member_of: Vec<String>,
        /// Mint a token that maps to no person (`bound: false`).
        #[arg(long, conflicts_with_all = ["name", "email"])]
        unbound: bool,
        /// Report `is_admin: true` for this token.
        #[arg(long)]
        admin: bool,
        /// Label shown in the token list.
        #[arg(long)]
        label: Option<String>,
        /// Token lifetime in days (0 mints an already expired token); default: never expires.
        #[arg(long, value_name = "N")]
        expires_in_days: Option<u32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            listen,
            data_dir,
            remember_tokens,
            wake_delay_ms,
            idle_secs,
        } => serve(
            listen,
            data_dir,
            remember_tokens,
            wake_delay_ms.map(|ms| (Duration::from_millis(ms), Duration::from_secs(idle_secs))),
        ),
        Command::Mint {
            data_dir,
            name,
            email,
            org,
            member_of,
            unbound,
            admin,
            label,
            expires_in_days,
        } => {
            let person = match (unbound, name, email) {
                (true, _, _) => None,
                (false, Some(name), Some(email)) => Some(NewPerson {
                    name,
                    email,
                    member_of,
                }),
                // clap enforces --name/--email unless --unbound.
                (false, _, _) => {
                    eprintln!("spor-sandbox: --name and --email are required unless --unbound");
                    return ExitCode::from(2);
                }
            };
            mint(
                data_dir,
                MintRequest {
                    person,
                    org,
                    admin,
                    label,
                    expires_in_days,
                },
            )
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spor-sandbox: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn mint(data_dir: PathBuf, req: MintRequest) -> anyhow::Result<()> {
    let mut store = Store::open(&data_dir)?;
    let minted = store.mint(&req)?;
    if minted.name_ignored {
        if let Some(id) = &minted.person_id {
            eprintln!("spor-sandbox: note: person {id} already exists; --name ignored");
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", minted.pat.expose())?;
    out.flush()?;
    Ok(())
}

/// `sleeping`: the wake delay and the idle spell of `--wake-delay-ms`.
fn serve(
    listen: SocketAddr,
    data_dir: PathBuf,
    remember_tokens: bool,
    sleeping: Option<(Duration, Duration)>,
) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!(
            "refusing to bind non-loopback address {listen}: spor-sandbox is a local test \
             stand-in; use 127.0.0.1 or [::1]"
        );
    }
    let faults = Faults::from_env()?;
    let store = Store::open(&data_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        // Installed before the ready line: whoever reads it may stop us at once.
        let stop = shutdown_signal();
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{addr}")?;
            out.flush()?;
        }
        let mut state = AppState::new(store, faults);
        if remember_tokens {
            state = state.remembering_tokens();
        }
        if let Some((wake_delay, idle)) = sleeping {
            state = state.sleeping(wake_delay, idle);
        }
        server::serve(listener, state, stop)
            .await
            .context("serving")
    })
}

/// Resolves on SIGINT or SIGTERM; the handlers are installed by the call
/// itself, not on first poll. Must be called on the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("spor-sandbox: cannot watch SIGTERM/SIGINT ({e}); Ctrl-C still works");
                None
            }
        }
    };
    async move {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = handlers {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
