#!/usr/bin/env bash
# Issue 3, target 6: throughput with the core's features on (bench/sluice-features.yaml.tmpl:
# JSON access log to a file, a request header rewrite, a regex route behind 49 prefix routes)
# against the bare config (bench/sluice.yaml.tmpl), in the same minute: both gateways run side
# by side (one event loop each, CPU 0), wrk (64 connections, CPU 1) alternates between them,
# ROUNDS times, against one nginx upstream. The harness runs one Sluice config per run, so its
# two results are minutes apart; this puts both in one run.
#
#   bench/features-ab.sh                   # 5 rounds of 10 s each
#   ROUNDS=3 SECONDS_PER_RUN=5 bench/features-ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
duration=${SECONDS_PER_RUN:-10}
[[ -x .build/release/sluice ]] || make release >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
source bench/lib.sh
up=$(free_port)
start_upstream "$work" "$up"
ab_start "$work" "$up" bare bench/sluice.yaml.tmpl
ab_start "$work" "$up" features bench/sluice-features.yaml.tmpl
sleep 1
ab_rounds bare features "$rounds" "$duration"
echo "access log lines written: $(wc -l < "$work/access.log" 2>/dev/null || echo 0)"
