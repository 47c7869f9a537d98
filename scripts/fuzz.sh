#!/usr/bin/env bash
# Fuzz the companion's parsers with cargo fuzz (libFuzzer); see fuzz/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 30)
#   FUZZ_TARGETS="bearer_header jsonrpc_peek" scripts/fuzz.sh 60
#
# Builds every target once (release + debug assertions, AddressSanitizer),
# then runs each for SECONDS_PER_TARGET starting from a copy of its committed
# seeds (fuzz/seeds/<target>, never written to) in fuzz/corpus/<target>.
# Prints runs, coverage and findings per target; exits non-zero if any target
# crashed or broke a property, leaving the reproducer in fuzz/artifacts/<target>
# (replay: scripts/fuzz.sh --repro fuzz/artifacts/<target>/<file>).
#
# Toolchain: the stable one. cargo fuzz needs -Z flags (-Zsanitizer, ...),
# which stable rustc accepts with RUSTC_BOOTSTRAP=1; cargo-fuzz is pinned in
# .tools/ by scripts/setup.sh --test. FUZZ_SANITIZER=none builds without ASan.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,17p' "$0"
  exit 0
fi

export PATH="$ROOT/.tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz not found; run scripts/setup.sh --test" >&2
  exit 1
fi
export RUSTC_BOOTSTRAP=1
# A rustup-managed machine may have a nightly as well; use stable, as CI does.
TOOLCHAIN=()
if command -v rustup >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q '^stable'; then
  TOOLCHAIN=(+stable)
fi
SANITIZER="${FUZZ_SANITIZER:-address}"
FUZZ=(cargo "${TOOLCHAIN[@]}" fuzz)
BUILD_OPTS=(--fuzz-dir fuzz --sanitizer "$SANITIZER")

if [[ "${1:-}" == "--repro" ]]; then
  artifact="${2:?usage: scripts/fuzz.sh --repro fuzz/artifacts/<target>/<file>}"
  target="$(basename "$(dirname "$artifact")")"
  exec "${FUZZ[@]}" run "${BUILD_OPTS[@]}" "$target" "$artifact" </dev/null
fi

SECONDS_PER_TARGET="${1:-30}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [[ "$SECONDS_PER_TARGET" -lt 1 ]]; then
  echo "fuzz.sh: SECONDS_PER_TARGET must be a positive integer, not '$SECONDS_PER_TARGET'" >&2
  exit 2
fi
ALL_TARGETS=(redirect_uri authorize_query dcr_json token_form bearer_header jsonrpc_peek jsonc_edit)
read -r -a TARGETS <<<"${FUZZ_TARGETS:-${ALL_TARGETS[*]}}"

log() { printf '[fuzz] %s\n' "$*"; }

log "building ${#TARGETS[@]} targets (sanitizer: $SANITIZER)"
start=$(date +%s)
"${FUZZ[@]}" build "${BUILD_OPTS[@]}" </dev/null
log "built in $(($(date +%s) - start)) s"

LOGS="$ROOT/fuzz/target/fuzz-logs"
mkdir -p "$LOGS"
failed=()
for t in "${TARGETS[@]}"; do
  seeds="fuzz/seeds/$t"
  corpus="fuzz/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  if [[ ! -d "$seeds" ]]; then
    echo "fuzz.sh: no seeds for target '$t' ($seeds)" >&2
    exit 2
  fi
  # The working corpus starts from the seeds (and keeps what earlier runs
  # found); the seeds themselves are only read.
  mkdir -p "$corpus" "$artifacts"
  cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  opts=(-max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$artifacts/")
  if [[ -f "fuzz/dict/$t.dict" ]]; then
    opts+=(-dict="fuzz/dict/$t.dict")
  fi
  before=$(find "$artifacts" -type f | wc -l)
  log "$t: ${SECONDS_PER_TARGET}s from $(find "$corpus" -type f | wc -l) inputs"
  rc=0
  # The hard bound: the fuzz time plus a generous margin for startup and
  # shrinking; libFuzzer stops itself at -max_total_time.
  timeout --kill-after=30 $((SECONDS_PER_TARGET + 120)) \
    "${FUZZ[@]}" run "${BUILD_OPTS[@]}" "$t" "$corpus" -- "${opts[@]}" \
    </dev/null >"$LOGS/$t.log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$LOGS/$t.log" | awk '{print $2}' | tail -1)
  cov=$(grep -oE '(#[0-9]+).*cov: [0-9]+ ft: [0-9]+' "$LOGS/$t.log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  corpus_n=$(find "$corpus" -type f | wc -l)
  after=$(find "$artifacts" -type f | wc -l)
  if [[ $rc -eq 0 && $after -eq $before ]]; then
    log "$t: ok — ${runs:-?} runs, ${cov:-cov: ?}, corpus $corpus_n, nothing found"
  else
    failed+=("$t")
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
      log "$t: FAILED — timed out (rc $rc)"
    else
      log "$t: FAILED (rc $rc) — ${runs:-?} runs, ${cov:-cov: ?}"
    fi
    grep -E 'panicked at|^==[0-9]+==ERROR|SUMMARY:|Test unit written to' "$LOGS/$t.log" | head -8 | sed 's/^/    /' || true
    log "$t: full log: $LOGS/$t.log; reproducer(s) in $artifacts/"
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  log "FAILED: ${failed[*]}"
  exit 1
fi
log "all ${#TARGETS[@]} targets ran ${SECONDS_PER_TARGET}s each; nothing found"
