#!/usr/bin/env bash
# Run the app: for now the headless daemon `spor-companiond serve`.
# Any arguments are passed to `serve` (e.g. --listen 127.0.0.1:0).
# `--demo` instead starts a local stand-in Spor server with a demo account
# in front of the companion (scripts/demo.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
if [[ "${1:-}" == "--demo" ]]; then
  shift
  cargo build --release -p spor-companion --bin spor-companiond -p spor-sandbox
  SPOR_COMPANIOND="$ROOT/target/release/spor-companiond" SPOR_SANDBOX="$ROOT/target/release/spor-sandbox" \
    exec bash "$ROOT/scripts/demo.sh" "$@"
fi
cargo build --release -p spor-companion --bin spor-companiond
exec "$ROOT/target/release/spor-companiond" serve "$@"
