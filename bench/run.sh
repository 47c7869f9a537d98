#!/usr/bin/env bash
# The benchmark, from a clean clone: installs what it needs (nginx, the build
# dependencies), builds release binaries and runs spor-bench, which prints
# Markdown tables. Extra arguments go to spor-bench (see --help), e.g.
#
#   bash bench/run.sh                               # the full run
#   bash bench/run.sh --report /tmp/bench.md        # also save the tables
#   bash bench/run.sh --concurrency 32 --calls 20000
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec </dev/null

bash scripts/setup.sh --headless --bench
if ! command -v cargo >/dev/null 2>&1; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Two invocations: `--bin` applies to every package named with it, so one
# line would build only the daemon.
cargo build --release --locked -p spor-companion --bin spor-companiond
cargo build --release --locked -p spor-sandbox -p spor-bench
exec target/release/spor-bench --bin-dir target/release "$@"
