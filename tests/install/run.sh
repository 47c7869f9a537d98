#!/usr/bin/env bash
# The install test: the packages scripts/package.sh built, as a person gets
# them. Needs root (apt-get); a machine where spor-companion is installed
# already is refused, so a real installation is never touched.
#
#   tests/install/run.sh [DEB] [RPM]   (default: target/packages/*)
#
# 1. The .rpm: its files and its requirements (rpm -qlp / -qp --requires).
# 2. `apt-get install ./…deb`; the files, the desktop entry
#    (desktop-file-validate) and the system's handler for spor-companion://.
# 3. installed.test.mjs in tests/e2e/desktop/run.sh's session (Xvfb, a
#    private D-Bus and keyring, a throw-away HOME): the installed app serves
#    and shows its window, handles a link opened with xdg-open, keeps the
#    pasted token in the keychain, makes a Claude Desktop extension, and
#    `apt-get remove` leaves the data folder and keychain entries alone.
# 4. After the removal: nothing of the package is left on the system.
# Screenshots: tests/e2e/artifacts/install/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)"
DEB="$(realpath "${1:-$ROOT/target/packages/spor-companion_${VERSION}_amd64.deb}")"
RPM="$(realpath "${2:-$ROOT/target/packages/spor-companion-${VERSION}-1.x86_64.rpm}")"
PKG=spor-companion
DESKTOP="/usr/share/applications/Spor Companion.desktop"
# Every file the packages hold, in the order rpm lists them.
FILES=(
  /usr/bin/spor-companion
  /usr/bin/spor-companiond
  "$DESKTOP"
  /usr/share/doc/spor-companion/changelog.gz
  /usr/share/doc/spor-companion/copyright
  /usr/share/icons/hicolor/128x128/apps/spor-companion.png
  /usr/share/icons/hicolor/32x32/apps/spor-companion.png
  /usr/share/icons/hicolor/512x512/apps/spor-companion.png
  /usr/share/icons/hicolor/64x64/apps/spor-companion.png
  /usr/share/lintian/overrides/spor-companion
)

pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
installed() { [[ "$(dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null)" == "install ok installed" ]]; }

[[ $(id -u) -eq 0 ]] || fail "needs root (it runs apt-get install and remove)"
for tool in apt-get dpkg-query rpm desktop-file-validate xdg-mime xdg-open; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (run scripts/setup.sh --test)"
done
[[ -f "$DEB" && -f "$RPM" ]] || fail "packages not found: $DEB $RPM (run scripts/package.sh)"
installed && fail "$PKG is installed on this machine already; the test installs and removes it, so remove it first"

# --- 1. the .rpm ------------------------------------------------------------------
mapfile -t rpm_files < <(rpm -qlp "$RPM" 2>/dev/null)
[[ "${rpm_files[*]}" == "${FILES[*]}" ]] || fail "rpm -qlp: ${rpm_files[*]}"
requires="$(rpm -qp --requires "$RPM" 2>/dev/null)"
for want in 'libwebkit2gtk-4.1.so.0()(64bit)' 'libgtk-3.so.0()(64bit)' 'libayatana-appindicator3.so.1()(64bit)'; do
  grep -qxF "$want" <<<"$requires" || fail "the .rpm does not require $want: $requires"
done
[[ "$(rpm -qp --queryformat '%{NAME} %{VERSION} %{LICENSE}' "$RPM")" == "$PKG $VERSION MIT OR Apache-2.0" ]] \
  || fail "rpm name/version/license: $(rpm -qip "$RPM")"
pass "the .rpm holds the ${#FILES[@]} files and requires WebKitGTK 4.1, GTK 3 and AppIndicator"

# --- 2. install ---------------------------------------------------------------------
cleanup() {
  # A failed run must not leave the package behind.
  if installed; then
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get remove -y -q "$PKG" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q "$DEB" \
  || fail "apt-get install $DEB"
installed || fail "dpkg does not list $PKG as installed"
mapfile -t deb_files < <(dpkg-query -L "$PKG" | while read -r f; do [[ -f "$f" ]] && printf '%s\n' "$f"; done | sort)
mapfile -t want_files < <(printf '%s\n' "${FILES[@]}" | sort)
[[ "${deb_files[*]}" == "${want_files[*]}" ]] || fail "installed files: ${deb_files[*]}"
for b in /usr/bin/spor-companion /usr/bin/spor-companiond; do [[ -x "$b" ]] || fail "$b is not executable"; done
[[ "$(command -v spor-companiond)" == /usr/bin/spor-companiond ]] || fail "spor-companiond is not on PATH"
spor-companiond --help >/dev/null || fail "spor-companiond --help"
pass "apt-get install: ${#FILES[@]} files, spor-companiond on PATH"

validate="$(desktop-file-validate "$DESKTOP" 2>&1)" || fail "desktop-file-validate: $validate"
[[ -z "$validate" ]] || fail "desktop-file-validate has remarks: $validate"
grep -qx 'Exec=spor-companion %u' "$DESKTOP" || fail "the desktop entry does not pass the link to the app: $(grep ^Exec "$DESKTOP")"
grep -qx 'MimeType=x-scheme-handler/spor-companion;' "$DESKTOP" || fail "the desktop entry does not declare the scheme"
bare="$(mktemp -d)"
handler="$(HOME="$bare" XDG_CONFIG_HOME="$bare/config" XDG_DATA_HOME="$bare/data" xdg-mime query default x-scheme-handler/spor-companion)"
rm -rf "$bare"
[[ "$handler" == "Spor Companion.desktop" ]] || fail "the system's spor-companion:// handler is '$handler'"
pass "desktop entry valid; it handles spor-companion:// for every user"

# --- 3. the installed app, in a session ------------------------------------------------
SPOR_APP=/usr/bin/spor-companion SPOR_COMPANIOND=/usr/bin/spor-companiond \
  bash "$ROOT/tests/e2e/desktop/run.sh" "$HERE/installed.test.mjs" \
  || fail "the installed app (tests/install/installed.test.mjs)"

# --- 4. removed ----------------------------------------------------------------------
installed && fail "$PKG is still installed after the test removed it"
for f in "${FILES[@]}"; do [[ ! -e "$f" ]] || fail "$f is left after apt-get remove"; done
if grep -qs spor-companion /usr/share/applications/mimeinfo.cache; then fail "the scheme is still registered system-wide"; fi
pass "apt-get remove: every file gone, the scheme unregistered"
