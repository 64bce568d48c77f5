#!/usr/bin/env bash
# Issue 11: throughput with JWT auth on a route (every request carrying the same valid RS256
# token, so the verified-token cache answers) against the bare config, in the same minute:
# both gateways side by side (one event loop each, CPU 0), wrk (64 connections, CPU 1)
# alternating between them, ROUNDS times, one nginx upstream. Both get the same
# Authorization header (the bare config forwards it), so the only difference is the auth step.
#
#   bench/auth-ab.sh                      # 5 rounds of 10 s
#   ALG=ES256 ROUNDS=3 bench/auth-ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
duration=${SECONDS_PER_RUN:-10}
alg=${ALG:-RS256}
[[ -x .build/release/sluice ]] || make release >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
source bench/lib.sh
up=$(free_port)
start_upstream "$work" "$up"
token=$(python3 bench/tools/mint.py "$work" "$alg")
ab_start "$work" "$up" bare bench/sluice.yaml.tmpl
ab_start "$work" "$up" auth bench/sluice-auth.yaml.tmpl
sleep 1
curl -sf -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:${AB_PORT[auth]}/" || { echo "auth config refused the token"; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); alg $alg"
AB_WRK_ARGS=(-H "Authorization: Bearer $token")
ab_rounds bare auth "$rounds" "$duration"
