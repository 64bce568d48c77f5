#!/usr/bin/env bash
# Issue 3, target 4: RSS stays flat (growth < 2 MiB) over 10 minutes at 5k req/s with zero
# errors. Runs the release binary with one event loop on CPU 0, an nginx upstream and the
# harness's open-loop generator (../shared/bench/tools/oload.c) on CPU 1, and samples RSS every
# 30 s. Not part of CI.
#
#   bench/soak.sh                          # 600 s at 5000 req/s
#   SOAK_SECONDS=60 SOAK_RATE=2000 bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SOAK_SECONDS:-600}
rate=${SOAK_RATE:-5000}
oload_src=${BENCH_OLOAD_SRC:-../shared/bench/tools/oload.c}
[[ -x .build/release/sluice ]] || make release >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
gcc -O2 -o "$work/oload" "$oload_src" -lm
source bench/lib.sh
up=$(free_port)
port=$(free_port)
admin=$(free_port)
start_upstream "$work" "$up"
cat > "$work/sluice.yaml" <<CONF
version: 1
runtime: { event_loops: 1 }
admin: { listen: 127.0.0.1:$admin }
observability: { access_log: { output: none } }
listeners:
  - name: soak
    listen: 127.0.0.1:$port
    routes: [ { name: all, backend: up } ]
backends:
  up: { endpoints: [127.0.0.1:$up] }
CONF
taskset -c 0 .build/release/sluice serve --config "$work/sluice.yaml" --log-level error &
pid=$!
"$work/oload" ready 127.0.0.1 "$port" / 10 "${EPOCHREALTIME/./}" "$pid" >/dev/null
taskset -c 1 "$work/oload" rate 127.0.0.1 "$port" / "$rate" "$seconds" 5 64 > "$work/oload.out" 2>&1 &
load=$!
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
first=$(rss)
echo "t_s rss_kib"
for ((t = 0; t < seconds; t += 30)); do
  echo "$t $(rss)"
  sleep 30
done
wait "$load" || true
last=$(rss)
echo "$seconds $last"
cat "$work/oload.out"
kill -0 "$pid" && echo "sluice still running (pid $pid)"
echo "RSS growth: $(((last - first))) KiB (first sample $first KiB, last $last KiB)"
