#!/usr/bin/env bash
# Desktop end-to-end: the real app binary under Xvfb, driven through
# tauri-driver + WebKitWebDriver, inside a private D-Bus session with an
# unlocked gnome-keyring and a throw-away HOME (so the user's own keyrings,
# autostart entries and MIME registrations are never touched).
#
#   tests/e2e/desktop/run.sh [TEST_FILE...]   (default: the *.test.mjs here;
#                                             tests/install/run.sh runs its own)
#
# Binaries: $SPOR_APP (default target/debug/spor-companion), $SPOR_SANDBOX,
# $TAURI_DRIVER (default .tools/bin/tauri-driver; scripts/setup.sh --test
# installs it). Screenshots land in tests/e2e/artifacts/desktop/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
export SPOR_APP="${SPOR_APP:-$ROOT/target/debug/spor-companion}"
export TAURI_DRIVER="${TAURI_DRIVER:-$ROOT/.tools/bin/tauri-driver}"

if [[ "${SPOR_DESKTOP_INNER:-}" != "1" ]]; then
  for tool in Xvfb dbus-run-session gnome-keyring-daemon secret-tool WebKitWebDriver node; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found (run scripts/setup.sh --test)"; exit 1; }
  done
  [[ -x "$SPOR_APP" ]] || { echo "FAIL: app binary not found: $SPOR_APP (cargo build -p spor-companion-app)"; exit 1; }
  [[ -x "$TAURI_DRIVER" ]] || { echo "FAIL: tauri-driver not found: $TAURI_DRIVER (scripts/setup.sh --test)"; exit 1; }

  WORK="$(mktemp -d "${TMPDIR:-/tmp}/spor-desktop.XXXXXX")"
  mkdir -p "$WORK/home" "$WORK/run"
  chmod 700 "$WORK/run"
  XVFB_PID=""
  cleanup() {
    if [[ -n "$XVFB_PID" ]]; then kill "$XVFB_PID" 2>/dev/null || true; wait "$XVFB_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
  }
  trap cleanup EXIT
  # -displayfd: Xvfb picks a free display number and writes it to fd 3.
  Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$WORK/display" 2>"$WORK/xvfb.log" &
  XVFB_PID=$!
  for _ in $(seq 1 100); do [[ -s "$WORK/display" ]] && break; sleep 0.1; done
  [[ -s "$WORK/display" ]] || { echo "FAIL: Xvfb did not start"; cat "$WORK/xvfb.log"; exit 1; }
  rc=0
  # shellcheck disable=SC2016 # $0 is expanded by the inner sh
  SPOR_DESKTOP_INNER=1 \
  DISPLAY=":$(head -n1 "$WORK/display")" \
  HOME="$WORK/home" \
  XDG_DATA_HOME="$WORK/home/.local/share" \
  XDG_CONFIG_HOME="$WORK/home/.config" \
  XDG_RUNTIME_DIR="$WORK/run" \
    dbus-run-session -- sh -c 'printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec bash "$0" "$@"' \
    "${BASH_SOURCE[0]}" "$@" </dev/null || rc=$?
  exit "$rc"
fi

cd "$ROOT/tests/e2e"
if [[ $# -gt 0 ]]; then tests=("$@"); else tests=("$HERE"/*.test.mjs); fi
exec node --test --test-concurrency=1 "${tests[@]}"
