#!/usr/bin/env bash
# The conformance suite, direct and through the companion, then its
# authorization-server mode against the companion, with the pinned Node 22
# (the suite needs it; scripts/setup.sh --test installs it into
# .tools/node22). Arguments go to run.mjs:
#
#   tests/conformance/run.sh [--requirements 2025-11-25,2026-07-28] [--out DIR] [--write-docs]
#
# --write-docs re-makes the numbers in docs/compatibility.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
NODE="${SPOR_NODE22:-$ROOT/.tools/node22/bin/node}"
if [[ ! -x "$NODE" ]]; then
  echo "run.sh: no Node 22 at $NODE; run scripts/setup.sh --test (or set SPOR_NODE22)" >&2
  exit 2
fi
exec "$NODE" "$HERE/run.mjs" "$@"
