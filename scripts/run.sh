#!/usr/bin/env bash
# Run Spor Companion, installing what it needs first.
#
#   scripts/run.sh                 the desktop app (tray, window, native consent)
#   scripts/run.sh --headless ...  the headless daemon `spor-companiond serve ...`
#                                  (servers, WSL, CI; consent in the browser)
#   scripts/run.sh --demo          a local stand-in Spor server with a demo account
#                                  in front of the headless daemon (scripts/demo.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

mode="desktop"
case "${1:-}" in
  --headless) mode="headless"; shift ;;
  --demo) mode="demo"; shift ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
esac

if [[ $mode == desktop ]]; then
  bash scripts/setup.sh
else
  bash scripts/setup.sh --headless
fi
if ! command -v cargo >/dev/null 2>&1; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

case "$mode" in
  demo)
    cargo build --release -p spor-companion --bin spor-companiond -p spor-sandbox
    SPOR_COMPANIOND="$ROOT/target/release/spor-companiond" SPOR_SANDBOX="$ROOT/target/release/spor-sandbox" \
      exec bash "$ROOT/scripts/demo.sh" "$@"
    ;;
  headless)
    cargo build --release -p spor-companion --bin spor-companiond
    exec "$ROOT/target/release/spor-companiond" serve "$@"
    ;;
  desktop)
    if [[ "$(uname -s)" == Linux && -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
      echo "run.sh: no graphical session here (DISPLAY and WAYLAND_DISPLAY are unset)." >&2
      echo "        Start the headless daemon instead: bash scripts/run.sh --headless" >&2
      exit 1
    fi
    cargo build --release -p spor-companion-app
    exec "$ROOT/target/release/spor-companion" "$@"
    ;;
esac
