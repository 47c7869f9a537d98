# shellcheck shell=bash
# Sourced by run.sh and faults.sh: a real spor-sandbox for the keychain tests.
# Needs $SANDBOX, $WORK, $READY_TIMEOUT and a `fail` function; writes the
# sandbox's output to $WORK/sandbox.log.

# mint_pat DATA_DIR: sets PAT to a fresh PAT for Kay Chain (org acme).
mint_pat() {
  local out
  out="$("$SANDBOX" mint --data-dir "$1" --name "Kay Chain" --email kay@example.test --org acme 2>>"$WORK/sandbox.log")" \
    || fail "spor-sandbox mint exited non-zero"
  PAT="$(grep -oE 'spor_pat_[A-Za-z0-9_-]+' <<<"$out" | head -n1 || true)"
  [[ -n "$PAT" ]] || fail "spor-sandbox mint printed no spor_pat_ token"
}

# start_sandbox DATA_DIR: serves on an ephemeral port; waits (bounded) for the
# ready line; sets SERVER and SANDBOX_PID.
start_sandbox() {
  coproc SANDBOX_PROC { exec "$SANDBOX" serve --listen 127.0.0.1:0 --data-dir "$1" 2>>"$WORK/sandbox.log"; }
  SANDBOX_PID="$SANDBOX_PROC_PID"
  SERVER=""
  local line deadline=$((SECONDS + READY_TIMEOUT))
  while [[ -z "$SERVER" ]]; do
    (( SECONDS < deadline )) || fail "sandbox printed no ready line within ${READY_TIMEOUT}s"
    if ! IFS= read -r -t "$READY_TIMEOUT" line <&"${SANDBOX_PROC[0]}"; then
      fail "sandbox exited or timed out before its ready line"
    fi
    printf '%s\n' "$line" >>"$WORK/sandbox.log"
    if [[ "$line" =~ listening\ on\ (http://127\.0\.0\.1:[0-9]+) ]]; then
      SERVER="${BASH_REMATCH[1]}"
    fi
  done
  # Keep draining its stdout so it never blocks on a full pipe. (bash does not
  # pass coproc descriptors to subshells, so hand `cat` a duplicate.)
  local out_fd
  exec {out_fd}<&"${SANDBOX_PROC[0]}"
  cat <&"$out_fd" >>"$WORK/sandbox.log" &
  exec {out_fd}<&-
}

# stop_sandbox: SIGTERM, then SIGKILL after 5 s.
stop_sandbox() {
  if [[ -n "${SANDBOX_PID:-}" ]] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
    kill -TERM "$SANDBOX_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SANDBOX_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SANDBOX_PID" 2>/dev/null || true
  fi
}
