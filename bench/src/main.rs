//! `spor-bench`: the benchmark (companion vs. direct vs. nginx, token
//! endpoint; the default), and two checks that drive the real processes
//! the same way: `crash` (SIGKILL under load, restart, nothing issued is
//! lost) and `soak` (a bounded run of many hosts: no unexpected errors,
//! memory and descriptors flat, no secret in the log). Every mode exits
//! non-zero if anything failed.

mod benchmark;
mod crash;
mod dbcheck;
mod ledger;
mod mcp;
mod oauth;
mod procs;
mod rig;
mod soak;
mod stats;
mod sys;
mod tally;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmark Spor Companion against going direct and against nginx, or run
/// its crash-safety and soak checks.
#[derive(Parser, Debug)]
#[command(name = "spor-bench", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Kill the companion with SIGKILL under a load of registrations, code
    /// exchanges, refreshes and revocations; restart it; check that nothing
    /// a client received was lost and that the database is whole.
    Crash(crash::CrashArgs),
    /// Many simulated hosts doing OAuth, MCP calls, refreshes and
    /// disconnects for a bounded time: no unexpected errors, resident memory
    /// and open descriptors flat, no secret in the companion's log.
    Soak(soak::SoakArgs),
}

/// The benchmark's options (also the top-level flags, for compatibility).
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Where `spor-companiond` and `spor-sandbox` are (release builds for
    /// real numbers).
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// A short run that checks correctness only (for the test command).
    #[arg(long)]
    pub smoke: bool,
    /// Timed tool calls per target and concurrency.
    #[arg(long, default_value_t = 6_000)]
    pub calls: usize,
    /// Concurrency levels (simulated clients, one session each).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    pub concurrency: Vec<usize>,
    /// Rounds the calls are split into; each round runs the three targets
    /// in a rotating order.
    #[arg(long, default_value_t = 6)]
    pub rounds: usize,
    /// Code exchanges per concurrency level (1 and 32).
    #[arg(long, default_value_t = 500)]
    pub exchanges: usize,
    /// Refresh rotations at concurrency 1; at 32, this many in all.
    #[arg(long, default_value_t = 3_200)]
    pub rotations: usize,
    /// Companion starts timed for the start-up figure.
    #[arg(long, default_value_t = 7)]
    pub starts: usize,
    /// Also write the report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl BenchArgs {
    fn apply_smoke(&mut self) {
        if self.smoke {
            self.calls = 60;
            self.concurrency = vec![1, 8];
            self.rounds = 2;
            self.exchanges = 8;
            self.rotations = 64;
            self.starts = 2;
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut report_path = None;
    let outcome = match cli.mode {
        Some(Mode::Crash(args)) => crash::run(&args).await,
        Some(Mode::Soak(args)) => soak::run(&args).await,
        None => {
            let mut args = cli.bench;
            args.apply_smoke();
            report_path = args.report.clone();
            benchmark::run(&args).await
        }
    };
    match outcome {
        Ok((report, failures)) => {
            println!("{report}");
            if let Some(path) = &report_path {
                if let Err(e) = std::fs::write(path, &report) {
                    eprintln!("spor-bench: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                for f in failures {
                    eprintln!("spor-bench: FAILED: {f}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("spor-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
