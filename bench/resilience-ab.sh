#!/usr/bin/env bash
# Issue 13: the bare config vs the same with every resilience key (health checks, outlier
# detection, breaker, queue, retries with a budget), never tripping, side by side in the same minute (Sluice on
# CPU 0, wrk and the upstream nginx on CPU 1). Target: >= 0.95.
#
#   bench/resilience-ab.sh            # 5 rounds of 10 s
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
duration=${SECONDS_PER_RUN:-10}
[[ -x .build/release/sluice ]] || make release >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
source bench/lib.sh
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
up=$(free_port)
start_upstream "$work" "$up"
ab_start "$work" "$up" bare bench/sluice.yaml.tmpl
ab_start "$work" "$up" resilience bench/sluice-resilience.yaml.tmpl
sleep 1
ab_rounds bare resilience "$rounds" "$duration"
