#!/usr/bin/env bash
# Allocations per proxied request (issue 3, target 7): runs the release binary under a malloc
# counter (bench/tools/malloc-count.c, LD_PRELOAD), proxies N keep-alive GETs to a small
# upstream, and fails when allocations per request exceed bench/alloc-threshold.
#   make bench-check                  # builds release first
#   ALLOC_REQUESTS=20000 bench/alloc-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${ALLOC_REQUESTS:-10000}
threshold=$(grep -v '^#' bench/alloc-threshold | head -1)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
gcc -O2 -shared -fPIC -o "$work/malloc-count.so" bench/tools/malloc-count.c -ldl
[[ -x .build/release/sluice ]] || make release >/dev/null
python3 bench/tools/alloc_load.py "$work" "$requests" "$threshold"
