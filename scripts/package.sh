#!/usr/bin/env bash
# Build the Linux packages of Spor Companion: a .deb and an .rpm holding the
# desktop app (spor-companion), the headless daemon / CLI / stdio bridge
# (spor-companiond), the desktop entry that handles spor-companion:// links,
# and the icons. The Tauri bundler does the packaging; its CLI is pinned and
# installed into .tools/ by scripts/setup.sh.
#
#   scripts/package.sh            release build, packages in target/packages/
#   scripts/package.sh --debug    the debug build (what CI's install test uses;
#                                 same steps, unoptimized binaries)
#   scripts/package.sh --no-lint  skip lintian
#
# The AppImage is not built: the bundler downloads its tools (linuxdeploy,
# AppRun) from the internet at build time, and these machines have no
# internet besides the package registries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROFILE=release
LINT=1
for arg in "$@"; do
  case "$arg" in
    --debug) PROFILE=debug ;;
    --no-lint) LINT=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[package] %s\n' "$*"; }
die() { printf 'package.sh: %s\n' "$*" >&2; exit 1; }

TAURI="$ROOT/.tools/tauri-cli/node_modules/.bin/tauri"
[[ -x "$TAURI" ]] || die "the Tauri CLI is not installed in .tools/ (run: bash scripts/setup.sh --package)"
command -v cargo >/dev/null 2>&1 || export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v dpkg-shlibdeps >/dev/null 2>&1 || die "dpkg-shlibdeps is not installed (run: bash scripts/setup.sh --package)"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/$PROFILE"
OUT="$TARGET_DIR/packages"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
[[ -n "$VERSION" ]] || die "no version in the workspace Cargo.toml"

# --- 1. the binaries ------------------------------------------------------------
# Release: the two binaries from one cargo invocation, without symbols (a
# package ships no debug info). Debug: the test command's own build (every
# target of the workspace), because cargo resolves features per invocation
# and a narrower one would compile shared crates a second time; after that
# build this one has nothing to do, and the package holds the very binaries
# the tests ran.
if [[ $PROFILE == release ]]; then
  log "building spor-companion and spor-companiond (release)"
  CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --locked --release \
    -p spor-companion-app -p spor-companion --bin spor-companion --bin spor-companiond
else
  log "building the workspace (debug, as scripts/test.sh does)"
  cargo build --locked --workspace --all-targets
fi

# --- 2. the bundler's view of the project -----------------------------------------
# The CLI looks for tauri.conf.json beside the app crate's Cargo.toml; ours is
# at the repository root (beside the README, where tauri-build reads it), so
# the crate folder gets a link to it while the bundler runs.
LINK="$ROOT/src-tauri/tauri.conf.json"
made_link=0
cleanup() {
  if [[ $made_link -eq 1 ]]; then rm -f "$LINK"; fi
  rm -rf "${STAGE:-}"
}
trap cleanup EXIT
if [[ ! -e "$LINK" ]]; then
  ln -s ../tauri.conf.json "$LINK"
  made_link=1
fi

# Paths in tauri.conf.json are relative to the repository root (tauri-build's
# base); the CLI would read them relative to src-tauri/. Everything the
# bundler reads from disk is therefore given here, absolute, and merged over
# the file's bundle section (which keeps all the metadata).
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/spor-package.XXXXXX")"
LINUX="$ROOT/src-tauri/packaging/linux"
# Debian wants a changelog in every package; ours names this version, dated
# by the commit it is built from (so the same commit gives the same file).
MAINTAINER="$(sed -n 's/^authors = \["\(.*\)"\]$/\1/p' src-tauri/Cargo.toml)"
[[ -n "$MAINTAINER" ]] || die "no authors in src-tauri/Cargo.toml (the packages' maintainer)"
DATE="$(git log -1 --format=%aD 2>/dev/null || date -R)"
printf 'spor-companion (%s) unstable; urgency=medium\n\n  * Spor Companion %s.\n\n -- %s  %s\n' \
  "$VERSION" "$VERSION" "$MAINTAINER" "$DATE" | gzip -9n >"$STAGE/changelog.gz"
files() {
  cat <<EOF
        "/usr/bin/spor-companiond": "$BIN_DIR/spor-companiond",
        "/usr/share/doc/spor-companion/copyright": "$LINUX/copyright",
        "/usr/share/doc/spor-companion/changelog.gz": "$STAGE/changelog.gz",
        "/usr/share/lintian/overrides/spor-companion": "$LINUX/lintian-overrides"
EOF
}
# The .deb's Depends: the bundler declares WebKitGTK 4.1, GTK 3 and the
# AppIndicator library (which the tray loads at run time) by itself;
# dpkg-shlibdeps adds every shared library the two binaries link, with the
# versions their symbols need (libc6 above all).
mkdir -p "$STAGE/shlibs/debian"
printf 'Source: spor-companion\n\nPackage: spor-companion\nArchitecture: any\n' >"$STAGE/shlibs/debian/control"
shlibs="$(cd "$STAGE/shlibs" && dpkg-shlibdeps -O "$BIN_DIR/spor-companion" "$BIN_DIR/spor-companiond" 2>/dev/null)"
shlibs="${shlibs#shlibs:Depends=}"
[[ -n "$shlibs" ]] || die "dpkg-shlibdeps found no dependencies"
deb_depends="$(printf '%s' "$shlibs" | sed 's/, */\n/g' | sed 's/.*/"&"/' | paste -sd, -)"
cat >"$STAGE/paths.json" <<EOF
{
  "bundle": {
    "icon": [
      "$ROOT/icons/32x32.png",
      "$ROOT/icons/64x64.png",
      "$ROOT/icons/128x128.png",
      "$ROOT/icons/icon.png"
    ],
    "linux": {
      "deb": {
        "depends": [$deb_depends],
        "desktopTemplate": "$LINUX/spor-companion.desktop.hbs",
        "files": {
$(files)
        }
      },
      "rpm": {
        "desktopTemplate": "$LINUX/spor-companion.desktop.hbs",
        "files": {
$(files)
        }
      }
    }
  }
}
EOF

# --- 3. bundle ----------------------------------------------------------------------
log "bundling .deb and .rpm with $("$TAURI" --version)"
debug_flag=()
[[ $PROFILE == debug ]] && debug_flag=(--debug)
# --no-binary-patching: the bundler would otherwise rewrite the app binary in
# place to record the package type, which only its updater reads (unused).
(cd "$ROOT/src-tauri" && CI=true "$TAURI" bundle "${debug_flag[@]}" --bundles deb,rpm \
  --no-binary-patching --config "$STAGE/paths.json")

# The bundler names files after the product name ("Spor Companion_…"); the
# packages themselves are called spor-companion, and so are the files here.
mkdir -p "$OUT"
DEB="$OUT/spor-companion_${VERSION}_amd64.deb"
RPM="$OUT/spor-companion-${VERSION}-1.x86_64.rpm"
cp "$BIN_DIR/bundle/deb/Spor Companion_${VERSION}_amd64.deb" "$DEB"
cp "$BIN_DIR/bundle/rpm/Spor Companion-${VERSION}-1.x86_64.rpm" "$RPM"
# The bundler's unpacked trees are as large as the packages: not kept.
rm -rf "$BIN_DIR/bundle/deb" "$BIN_DIR/bundle/rpm"

# --- 4. lintian ------------------------------------------------------------------------
if [[ $LINT -eq 1 ]]; then
  command -v lintian >/dev/null 2>&1 || die "lintian is not installed (run: bash scripts/setup.sh --package)"
  # Tags we accept ship in the package's own overrides file, each with its
  # reason (docs/packaging.md has the list). A debug build keeps its line
  # tables on purpose, so that one tag is expected there only.
  log "lintian"
  lint_args=(--fail-on error,warning --tag-display-limit 0)
  [[ $PROFILE == debug ]] && lint_args+=(--suppress-tags unstripped-binary-or-object)
  lintian "${lint_args[@]}" "$DEB"
fi

log "built:"
ls -l "$DEB" "$RPM" | sed 's/^/[package]   /'
