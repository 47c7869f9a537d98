#!/usr/bin/env bash
# A working assistant connection in a minute: starts a local spor-sandbox (a
# stand-in Spor server), mints a demo token, stores it as an account and runs
# the companion in front of it. Prints the `claude mcp add` line to use.
#
#   bash scripts/run.sh --demo [--listen 127.0.0.1:PORT]
#
# Binaries come from $SPOR_COMPANIOND / $SPOR_SANDBOX (run.sh sets them).
# Everything lives in a throw-away directory ($SPOR_DEMO_DIR to keep one) and
# uses the file secret store, so the demo never touches your keychain.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPANIOND="${SPOR_COMPANIOND:-$ROOT/target/release/spor-companiond}"
SANDBOX="${SPOR_SANDBOX:-$ROOT/target/release/spor-sandbox}"
LISTEN="127.0.0.1:7767"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --listen) LISTEN="$2"; shift 2 ;;
    --listen=*) LISTEN="${1#--listen=}"; shift ;;
    *) echo "demo: unknown argument $1" >&2; exit 2 ;;
  esac
done

DEMO_DIR="${SPOR_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/spor-demo.XXXXXX")}"
mkdir -p "$DEMO_DIR/sandbox" "$DEMO_DIR/companion"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${SPOR_DEMO_DIR:-}" ]] || rm -rf "$DEMO_DIR"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# Starts "$@" in the background and waits (bounded) for its ready line,
# which it leaves in READY. (Not used in $(...): the PID must stay in PIDS.)
READY=""
start() {
  local name="$1"; shift
  local out="$DEMO_DIR/$name.out"
  : >"$out"
  "$@" >"$out" 2>"$DEMO_DIR/$name.log" &
  PIDS+=("$!")
  for _ in $(seq 1 300); do
    if grep -q '^listening on ' "$out"; then READY="$(sed -n 's/^listening on //p' "$out" | head -n1)"; return 0; fi
    kill -0 "${PIDS[-1]}" 2>/dev/null || { echo "demo: $name exited; see $DEMO_DIR/$name.log" >&2; cat "$DEMO_DIR/$name.log" >&2; return 1; }
    sleep 0.1
  done
  echo "demo: $name did not become ready" >&2
  return 1
}

PAT="$("$SANDBOX" mint --data-dir "$DEMO_DIR/sandbox" --name "Demo User" --email demo@example.test --org demo --member-of demo-labs)"
start sandbox "$SANDBOX" serve --listen 127.0.0.1:0 --data-dir "$DEMO_DIR/sandbox"
SERVER="$READY"
printf %s "$PAT" | "$COMPANIOND" --data-dir "$DEMO_DIR/companion" --secret-store file \
  account add --server "$SERVER" --token-stdin >/dev/null
start companion "$COMPANIOND" --data-dir "$DEMO_DIR/companion" --secret-store file \
  serve --listen "$LISTEN" --server "$SERVER"
MCP_URL="$READY"

cat <<MSG
Spor Companion demo is running.
  demo Spor server (sandbox): $SERVER   (signed in as Demo User, org demo)
  companion MCP endpoint:     $MCP_URL
Connect Claude Code with:
  claude mcp add --transport http spor $MCP_URL
Your browser will ask you to allow the connection. Press Ctrl-C to stop.
MSG
wait "${PIDS[@]}"
