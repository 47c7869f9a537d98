#!/usr/bin/env bash
# Real-keychain test: the companion stores a PAT in the Secret Service
# (gnome-keyring on a private D-Bus session) — and nowhere on disk — and
# removing the account removes the keychain entry.
#
# Binaries: $SPOR_COMPANIOND and $SPOR_SANDBOX (default: target/debug/...).
# Needs: dbus-run-session, gnome-keyring-daemon, secret-tool, python3
#        (scripts/setup.sh --test installs them).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
COMPANIOND="${SPOR_COMPANIOND:-$ROOT/target/debug/spor-companiond}"
SANDBOX="${SPOR_SANDBOX:-$ROOT/target/debug/spor-sandbox}"
READY_TIMEOUT="${SPOR_READY_TIMEOUT:-30}"

# --- stage 1: re-exec inside a private D-Bus session with an unlocked keyring.
# The keyring lives in a throw-away XDG_DATA_HOME so the user's own keyrings
# are never touched.
if [[ "${SPOR_KEYCHAIN_TEST_INNER:-}" != "1" ]]; then
  for tool in dbus-run-session gnome-keyring-daemon secret-tool python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found (run scripts/setup.sh --test)"; exit 1; }
  done
  # Without a reachable keychain the companion must refuse, say how to pick
  # the file store, and write no secret anywhere (never a silent fallback).
  NOKC="$(mktemp -d "${TMPDIR:-/tmp}/spor-nokeychain.XXXXXX")"
  set +e
  nokc_err="$(printf %s spor_pat_never_stored_anywhere_0123456789 | \
    DBUS_SESSION_BUS_ADDRESS="unix:path=$NOKC/no-such-bus" \
    "$COMPANIOND" --data-dir "$NOKC/data" --secret-store keychain \
    account add --server http://127.0.0.1:9 --token-stdin 2>&1 >/dev/null)"
  nokc_rc=$?
  set -e
  [[ $nokc_rc -eq 1 ]] || { echo "FAIL: unavailable keychain: exit $nokc_rc, want 1"; exit 1; }
  [[ "$nokc_err" == *"OS keychain is not available"*"--secret-store file"* ]] || \
    { echo "FAIL: unavailable keychain message: $nokc_err"; exit 1; }
  if grep -rqs spor_pat_never_stored_anywhere "$NOKC"; then echo "FAIL: a secret was written without a keychain"; exit 1; fi
  [[ ! -e "$NOKC/data/secrets.json" ]] || { echo "FAIL: fell back to the file store silently"; exit 1; }
  rm -rf "$NOKC"
  echo "PASS: no keychain -> clear error naming --secret-store file, nothing written"
  # Keychain faults with a real PAT: no Secret Service, locked, unanswered prompt.
  SPOR_COMPANIOND="$COMPANIOND" SPOR_SANDBOX="$SANDBOX" bash "$HERE/faults.sh" \
    || { echo "FAIL: keychain faults (tests/keychain/faults.sh)"; exit 1; }
  KEYRING_HOME="$(mktemp -d "${TMPDIR:-/tmp}/spor-keyring.XXXXXX")"
  trap 'rm -rf "$KEYRING_HOME"' EXIT
  mkdir -p "$KEYRING_HOME/data" "$KEYRING_HOME/run"
  chmod 700 "$KEYRING_HOME/run"
  rc=0
  # shellcheck disable=SC2016 # $0 is expanded by the inner sh
  SPOR_KEYCHAIN_TEST_INNER=1 \
  XDG_DATA_HOME="$KEYRING_HOME/data" \
  XDG_RUNTIME_DIR="$KEYRING_HOME/run" \
  SPOR_COMPANIOND="$COMPANIOND" SPOR_SANDBOX="$SANDBOX" \
    dbus-run-session -- sh -c 'printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec bash "$0"' \
    "${BASH_SOURCE[0]}" </dev/null || rc=$?
  exit "$rc"
fi

# --- stage 2: inside the session. ---------------------------------------------
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
# shellcheck source=tests/keychain/sandbox.sh
source "$HERE/sandbox.sh"

[[ -x "$COMPANIOND" ]] || fail "companion binary not found: $COMPANIOND (cargo build --workspace --bins)"
[[ -x "$SANDBOX" ]] || fail "sandbox binary not found: $SANDBOX (cargo build -p spor-sandbox)"
[[ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ]] || fail "no DBUS_SESSION_BUS_ADDRESS inside dbus-run-session"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/spor-keychain-test.XXXXXX")"
SANDBOX_DIR="$WORK/sandbox"
DATA="$WORK/companion"
mkdir -p "$SANDBOX_DIR" "$DATA"
SANDBOX_PID=""
ACCOUNT_ID=""

cleanup() {
  local rc=$?
  stop_sandbox
  # Do not leave the PAT behind in the keychain if we failed half-way.
  if [[ -n "$ACCOUNT_ID" ]]; then
    secret-tool clear service spor-companion username "$ACCOUNT_ID" >/dev/null 2>&1 || true
  fi
  if [[ $rc -ne 0 ]]; then
    echo "---- sandbox log (tail) ----"; tail -n 40 "$WORK/sandbox.log" 2>/dev/null || true
    echo "---- companion output (tail) ----"; tail -n 40 "$WORK/companion.log" 2>/dev/null || true
    echo "KEYCHAIN TEST FAILED"
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs the companion CLI, appending its stderr to companion.log (checked for
# leaks at the end); stdout goes to the caller.
companion() {
  "$COMPANIOND" "$@" 2>>"$WORK/companion.log"
}

# 1. A PAT from the sandbox.
mint_pat "$SANDBOX_DIR"
pass "minted a PAT for Kay Chain (org acme)"

# 2. The sandbox on an ephemeral port; wait (bounded) for its ready line.
start_sandbox "$SANDBOX_DIR"
pass "sandbox listening on $SERVER"

# 3. Add the account with the keychain store; the PAT goes in on stdin only.
printf %s "$PAT" | companion --data-dir "$DATA" --secret-store keychain \
  account add --server "$SERVER" --token-stdin >>"$WORK/companion.log" \
  || fail "account add --secret-store keychain exited non-zero"
pass "account add (keychain)"

# 4. account list --json shows it.
LIST="$(companion --data-dir "$DATA" --secret-store keychain account list --json)" \
  || fail "account list --json exited non-zero"
printf '%s\n' "$LIST" >>"$WORK/companion.log"
ACCOUNT_ID="$(python3 - "$LIST" <<'PY'
import json, sys
def check():
    try:
        accounts = json.loads(sys.argv[1])
    except ValueError as e:
        raise AssertionError(f"not JSON ({e})")
    assert isinstance(accounts, list), "account list --json must print a JSON array"
    match = [a for a in accounts if a.get("name") == "Kay Chain" and a.get("email") == "kay@example.test"]
    assert len(accounts) == 1 and len(match) == 1, f"expected exactly Kay Chain, got {accounts!r}"
    a = match[0]
    for key in ("id", "name", "email", "org", "server", "person", "bound"):
        assert key in a, f"account is missing {key!r}: {a!r}"
    assert a["org"] == "acme", f"org is {a['org']!r}, want 'acme'"
    return a["id"]
try:
    print(check())
except AssertionError as e:
    print(f"account list --json: {e}", file=sys.stderr)
    sys.exit(1)
PY
)" || fail "account list --json does not show exactly Kay Chain <kay@example.test> in org acme: $LIST"
[[ -n "$ACCOUNT_ID" ]] || fail "empty account id"
pass "account list --json shows Kay Chain <kay@example.test> (id $ACCOUNT_ID)"

# 5. The keychain holds the PAT under service=spor-companion, username=<id>.
SECRET="$(secret-tool lookup service spor-companion username "$ACCOUNT_ID" 2>/dev/null || true)"
[[ -n "$SECRET" ]] || fail "secret-tool lookup service spor-companion username $ACCOUNT_ID found nothing"
[[ "$SECRET" == *"$PAT"* ]] || fail "the keychain entry for $ACCOUNT_ID does not hold the PAT"
pass "keychain entry service=spor-companion username=$ACCOUNT_ID holds the PAT"

# 6. ...and the PAT is in no file of the data dir, nor in the companion's output.
if grep -rlF -- "$PAT" "$DATA" >"$WORK/leaks" 2>/dev/null; then
  fail "PAT found on disk in: $(tr '\n' ' ' <"$WORK/leaks")"
fi
pass "PAT appears in no file under the data dir ($(find "$DATA" -type f | wc -l) files checked)"
if grep -qF -- "$PAT" "$WORK/companion.log"; then
  fail "PAT appears in the companion's output"
fi
pass "PAT appears in none of the companion's output"

# 7. Remove the account: the keychain entry goes, the list is empty.
companion --data-dir "$DATA" --secret-store keychain account remove "$ACCOUNT_ID" >>"$WORK/companion.log" \
  || fail "account remove $ACCOUNT_ID exited non-zero"
if secret-tool lookup service spor-companion username "$ACCOUNT_ID" >/dev/null 2>&1; then
  fail "keychain entry for $ACCOUNT_ID still present after account remove"
fi
if secret-tool search --all service spor-companion 2>/dev/null | grep -qF -- "$PAT"; then
  fail "the PAT is still in the keychain after account remove"
fi
pass "keychain entry removed"
LIST="$(companion --data-dir "$DATA" --secret-store keychain account list --json)" \
  || fail "account list --json exited non-zero after remove"
python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1] or "null") == [] else 1)' "$LIST" 2>/dev/null \
  || fail "account list not empty after remove: $LIST"
ACCOUNT_ID=""
pass "account list --json is empty after remove"

if grep -qF -- "$PAT" "$WORK/companion.log"; then
  fail "PAT appears in the companion's output"
fi
echo "KEYCHAIN TEST PASSED"
