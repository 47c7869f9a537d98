#!/usr/bin/env bash
# Keychain faults against the real binary and a real spor-sandbox with a real
# PAT: no Secret Service on the bus, a locked collection with no prompter, and
# a locked collection whose unlock prompt nobody answers. In each case
# `account add --token-stdin` (and `account remove`) must fail at once with a
# clear message, never print the PAT, and leave nothing half-written: no
# account row, no keychain item, no secret file.
#
# Binaries: $SPOR_COMPANIOND and $SPOR_SANDBOX (default: target/debug/...).
# Needs: dbus-run-session, gnome-keyring-daemon, gdbus, python3; Xvfb and
# /usr/libexec/gcr-prompter for the unanswered-prompt case.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
COMPANIOND="${SPOR_COMPANIOND:-$ROOT/target/debug/spor-companiond}"
SANDBOX="${SPOR_SANDBOX:-$ROOT/target/debug/spor-sandbox}"
READY_TIMEOUT="${SPOR_READY_TIMEOUT:-30}"
# Hang detector around every companion run; never a timing assertion.
HANG=60

pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
# shellcheck source=tests/keychain/sandbox.sh
source "$HERE/sandbox.sh"

NOT_AVAILABLE="error: the OS keychain is not available"
FILE_ADVICE="choose the file store explicitly: --secret-store file (or SPOR_COMPANION_SECRET_STORE=file)"
REFUSED="error: the OS keychain refused access ("
UNLOCK="); unlock it and try again"

# Runs the companion (bounded); sets RC, OUT, ERR. Args: data dir, then CLI args.
run_companion() {
  local data="$1"; shift
  set +e
  OUT="$(printf %s "$PAT" | timeout "$HANG" "$COMPANIOND" --data-dir "$data" --secret-store keychain "$@" 2>"$WORK/stderr")"
  RC=$?
  set -e
  ERR="$(cat "$WORK/stderr")"
  [[ $RC -ne 124 ]] || fail "$* hung (killed after ${HANG}s)"
}

# Accounts rows in a data dir's database (0 when there is no database).
account_rows() {
  python3 - "$1/companion.db" <<'PY'
import os, sqlite3, sys
path = sys.argv[1]
if not os.path.exists(path):
    print(0)
else:
    print(sqlite3.connect(path).execute("SELECT count(*) FROM accounts").fetchone()[0])
PY
}

# Keychain items of service spor-companion, locked or not, found without
# unlocking anything (SearchItems never prompts).
keychain_items() {
  gdbus call --session --dest org.freedesktop.secrets --object-path /org/freedesktop/secrets \
    --method org.freedesktop.Secret.Service.SearchItems "{'service': 'spor-companion'}" \
    | python3 -c 'import re,sys; print(len(re.findall(r"/org/freedesktop/secrets/collection/[^'"'"']+", sys.stdin.read())))'
}

# The failed add left nothing: exit 1, the PAT in no output, no row, no file.
assert_failed_cleanly() {
  local what="$1" data="$2"
  [[ $RC -eq 1 ]] || fail "$what: exit $RC, want 1 (stderr: $ERR)"
  if grep -qF -- "$PAT" <<<"$OUT$ERR"; then fail "$what: the PAT appears in the output"; fi
  [[ "$(account_rows "$data")" == 0 ]] || fail "$what: an account row was stored"
  [[ ! -e "$data/secrets.json" ]] || fail "$what: fell back to the file store"
  if [[ -d "$data" ]] && grep -rqsF -- "$PAT" "$data"; then fail "$what: the PAT was written to disk"; fi
}

# ----------------------------------------------------------------- inside a bus
if [[ "${1:-}" == "--inner" ]]; then
  case "$2" in
    no-service)
      # A live session bus on which nothing provides (or can be activated as)
      # org.freedesktop.secrets.
      names="$(gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
        --method org.freedesktop.DBus.ListActivatableNames)"
      [[ "$names" != *org.freedesktop.secrets* ]] || fail "the bare bus can still activate a Secret Service"
      run_companion "$WORK/no-service" account add --server "$SERVER" --token-stdin
      assert_failed_cleanly "no Secret Service on the bus" "$WORK/no-service"
      [[ "$ERR" == "$NOT_AVAILABLE ("*"). On a machine without a desktop keychain, $FILE_ADVICE" ]] \
        || fail "no Secret Service: message: $ERR"
      pass "live bus without a Secret Service -> exit 1, '$ERR', nothing stored"
      ;;
    locked | unanswered)
      printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
      if [[ "$2" == unanswered ]]; then
        # A prompter that shows its dialog on a screen nobody watches.
        Xvfb -displayfd 3 -nolisten tcp 3>"$WORK/display" >/dev/null 2>&1 &
        XVFB_PID=$!
        trap 'kill "$XVFB_PID" 2>/dev/null || true' EXIT
        for _ in $(seq 1 100); do [[ -s "$WORK/display" ]] && break; sleep 0.1; done
        [[ -s "$WORK/display" ]] || fail "Xvfb did not start"
        dbus-update-activation-environment DISPLAY=":$(head -n1 "$WORK/display")"
        export SPOR_COMPANION_KEYCHAIN_TIMEOUT_SECS=3
        reason="no answer within 3 s; it is probably locked and its unlock prompt went unanswered"
      fi
      # An account added while unlocked, to try removing once locked.
      run_companion "$WORK/$2-kept" account add --server "$SERVER" --token-stdin
      [[ $RC -eq 0 ]] || fail "$2: account add while unlocked: exit $RC: $ERR"
      KEPT="$(grep -oE 'acct_[0-9a-f]+' <<<"$OUT" | head -n1)"
      [[ -n "$KEPT" && "$(keychain_items)" == 1 ]] || fail "$2: setup: want one keychain item for $KEPT"
      gdbus call --session --dest org.freedesktop.secrets --object-path /org/freedesktop/secrets \
        --method org.freedesktop.Secret.Service.Lock "['/org/freedesktop/secrets/collection/login']" >/dev/null
      locked="$(gdbus call --session --dest org.freedesktop.secrets --object-path /org/freedesktop/secrets/collection/login \
        --method org.freedesktop.DBus.Properties.Get org.freedesktop.Secret.Collection Locked)"
      [[ "$locked" == "(<true>,)" ]] || fail "$2: the login collection did not lock: $locked"

      run_companion "$WORK/$2-add" account add --server "$SERVER" --token-stdin
      assert_failed_cleanly "$2 keychain: account add" "$WORK/$2-add"
      [[ "$ERR" == "$REFUSED"*"$UNLOCK" ]] || fail "$2: account add message: $ERR"
      if [[ -n "${reason:-}" ]]; then
        [[ "$ERR" == "$REFUSED$reason$UNLOCK" ]] || fail "$2: account add message: $ERR"
      fi
      [[ "$(keychain_items)" == 1 ]] || fail "$2: account add wrote a keychain item"
      pass "$2 keychain: account add -> exit 1, '$ERR', no row, no item, PAT not printed"

      run_companion "$WORK/$2-kept" account remove "$KEPT"
      [[ $RC -eq 1 ]] || fail "$2: account remove: exit $RC, want 1"
      [[ "$ERR" == "$REFUSED"*"$UNLOCK" ]] || fail "$2: account remove message: $ERR"
      if grep -qF -- "$PAT" <<<"$OUT$ERR"; then fail "$2: account remove printed the PAT"; fi
      [[ "$(account_rows "$WORK/$2-kept")" == 1 ]] || fail "$2: account remove removed the row anyway"
      [[ "$(keychain_items)" == 1 ]] || fail "$2: account remove half-done: the keychain item is gone"
      pass "$2 keychain: account remove -> exit 1, row and keychain item both kept"
      ;;
    *) fail "unknown case $2" ;;
  esac
  exit 0
fi

# ----------------------------------------------------------------- outside
for tool in dbus-run-session dbus-update-activation-environment gnome-keyring-daemon gdbus python3; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (run scripts/setup.sh --test)"
done
[[ -x "$COMPANIOND" ]] || fail "companion binary not found: $COMPANIOND"
[[ -x "$SANDBOX" ]] || fail "sandbox binary not found: $SANDBOX"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/spor-keychain-faults.XXXXXX")"
SANDBOX_PID=""
cleanup() {
  local rc=$?
  stop_sandbox
  [[ $rc -eq 0 ]] || { echo "---- sandbox log (tail) ----"; tail -n 20 "$WORK/sandbox.log" 2>/dev/null || true; }
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mint_pat "$WORK/sandbox"
start_sandbox "$WORK/sandbox"
export WORK SERVER PAT COMPANIOND SANDBOX

# 1. A bus address nothing listens on.
DBUS_SESSION_BUS_ADDRESS="unix:path=$WORK/no-such-bus" run_companion "$WORK/dead-bus" account add --server "$SERVER" --token-stdin
assert_failed_cleanly "dead bus" "$WORK/dead-bus"
[[ "$ERR" == "$NOT_AVAILABLE ("*"). On a machine without a desktop keychain, $FILE_ADVICE" ]] \
  || fail "dead bus: message: $ERR"
pass "dead D-Bus address -> exit 1, '$ERR', nothing stored"

# 2. A live bus with no Secret Service and no service activation.
cat >"$WORK/bare-session.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=$WORK</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
env -u DISPLAY -u WAYLAND_DISPLAY timeout "$HANG" \
  dbus-run-session --config-file="$WORK/bare-session.conf" -- bash "${BASH_SOURCE[0]}" --inner no-service </dev/null

# 3 and 4. A locked login collection; first with no prompter at all (no
# display: the prompt is dismissed at once), then with one nobody answers.
keyring_session() {
  local home="$WORK/keyring-$1"
  mkdir -p "$home/data" "$home/run"
  chmod 700 "$home/run"
  env -u DISPLAY -u WAYLAND_DISPLAY XDG_DATA_HOME="$home/data" XDG_RUNTIME_DIR="$home/run" \
    timeout "$HANG" dbus-run-session -- bash "${BASH_SOURCE[0]}" --inner "$1" </dev/null
}
keyring_session locked
# scripts/setup.sh --test installs both (xvfb; gcr comes with gnome-keyring):
# missing, the case fails rather than being skipped.
if ! command -v Xvfb >/dev/null 2>&1 || [[ ! -x /usr/libexec/gcr-prompter ]]; then
  fail "the unanswered-prompt case needs Xvfb and /usr/libexec/gcr-prompter (scripts/setup.sh --test)"
fi
keyring_session unanswered
echo "KEYCHAIN FAULTS PASSED"
