#!/usr/bin/env bash
# Run the app: for now the headless daemon `spor-companiond serve`.
# Any arguments are passed to `serve` (e.g. --listen 127.0.0.1:0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
cargo build --release -p spor-companion --bin spor-companiond
exec "$ROOT/target/release/spor-companiond" serve "$@"
