#!/usr/bin/env bash
# The one test command: set-up, format, lints, build, unit/integration tests,
# the benchmark's smoke run, crash safety, the soak smoke, the fuzz smoke,
# the real-keychain test, the end-to-end tests, the MCP conformance suite, and the
# packages with their install test. Fails on the first failing step. Used by CI
# (.ci/run) on a fresh clone, with no stdin.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec </dev/null

# Bounds for the steps that start processes, browsers and daemons.
KEYCHAIN_TIMEOUT="${SPOR_KEYCHAIN_TIMEOUT:-300}"
E2E_TIMEOUT="${SPOR_E2E_TIMEOUT:-900}"
CONFORMANCE_TIMEOUT="${SPOR_CONFORMANCE_TIMEOUT:-300}"
DESKTOP_TIMEOUT="${SPOR_DESKTOP_TIMEOUT:-600}"
PACKAGE_TIMEOUT="${SPOR_PACKAGE_TIMEOUT:-600}"
INSTALL_TIMEOUT="${SPOR_INSTALL_TIMEOUT:-600}"

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

STEP=""
START_ALL=$SECONDS
section() {
  STEP="$1"
  STEP_START=$SECONDS
  printf '\n==================== %s ====================\n' "$STEP"
}
done_step() {
  printf -- '---- ok: %s (%ss)\n' "$STEP" "$((SECONDS - STEP_START))"
}
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    printf '\n**** FAILED: %s (exit %s) ****\n' "${STEP:-?}" "$rc" >&2
  else
    printf '\n**** ALL STEPS PASSED (%ss) ****\n' "$((SECONDS - START_ALL))"
  fi
}
trap on_exit EXIT

section "setup"
bash scripts/setup.sh --test
# setup.sh may have found cargo outside PATH; do the same here.
if ! command -v cargo >/dev/null 2>&1; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
done_step

section "cargo fmt --check"
cargo fmt --all -- --check
done_step

section "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
done_step

section "cargo build (every target of the workspace, desktop app included)"
# One build of every binary and test target with one feature set: the test
# step below then compiles nothing (separate `cargo build --bins`, `cargo
# test` and `cargo test -p spor-companion-app` runs each resolved features
# for a different set of packages and rebuilt shared dependencies).
cargo build --workspace --all-targets
done_step

section "cargo test"
# Every crate's unit and integration tests, the desktop shell's included;
# nextest (on the machine image) runs the test binaries side by side.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
done_step

section "bench smoke (companion vs. direct vs. nginx, token endpoint; correctness only)"
# A few hundred checked calls through each target; no timing is asserted.
timeout --kill-after=10 300 target/debug/spor-bench --smoke --bin-dir target/debug
done_step

section "crash safety (SIGKILL mid-load, restart, every token checked, integrity_check)"
timeout --kill-after=10 300 target/debug/spor-bench crash --cycles 5 --bin-dir target/debug
done_step

section "soak smoke (16 hosts for 2 minutes: memory, descriptors, log, database)"
timeout --kill-after=10 420 target/debug/spor-bench soak --duration 120 --bin-dir target/debug
done_step

section "fuzz smoke (cargo fuzz, 30 s per target)"
timeout --kill-after=30 1800 bash scripts/fuzz.sh 30
done_step

export SPOR_COMPANIOND="$ROOT/target/debug/spor-companiond"
export SPOR_SANDBOX="$ROOT/target/debug/spor-sandbox"

section "keychain (dbus + gnome-keyring + secret-tool)"
timeout --kill-after=10 "$KEYCHAIN_TIMEOUT" bash tests/keychain/run.sh
done_step

section "e2e (node --test)"
(
  cd tests/e2e
  timeout --kill-after=15 "$E2E_TIMEOUT" \
    node --test --test-concurrency=1 --test-reporter=spec test/*.test.mjs
)
done_step

section "MCP conformance (official suite, server mode, 2025-11-25 and 2026-07-28; direct and through the companion; authorization-server mode)"
# Fails when a check passing directly does not pass through the companion, or
# when a check of the authorization-server mode fails.
timeout --kill-after=15 "$CONFORMANCE_TIMEOUT" bash tests/conformance/run.sh
done_step

section "desktop e2e (the app under Xvfb, tauri-driver + WebKitWebDriver, real keychain)"
SPOR_APP="$ROOT/target/debug/spor-companion" \
  timeout --kill-after=15 "$DESKTOP_TIMEOUT" bash tests/e2e/desktop/run.sh
done_step

section "packages (.deb and .rpm of the debug build, lintian)"
# The release script's own steps on the debug build (already built above:
# its cargo build has nothing to do).
timeout --kill-after=15 "$PACKAGE_TIMEOUT" bash scripts/package.sh --debug
done_step

section "install test (apt-get install, the installed app under Xvfb, a link through xdg-open, apt-get remove)"
timeout --kill-after=15 "$INSTALL_TIMEOUT" bash tests/install/run.sh
done_step
