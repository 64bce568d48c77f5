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
declare -A port
for name in bare features; do
  tmpl=bench/sluice.yaml.tmpl
  [[ $name == features ]] && tmpl=bench/sluice-features.yaml.tmpl
  port[$name]=$(free_port)
  sed -e "s/{{PORT}}/${port[$name]}/g" -e "s/{{UPSTREAM}}/127.0.0.1:$up/g" -e "s/{{WORKERS}}/1/g" \
    -e "s/{{ADMIN_PORT}}/$(free_port)/g" -e "s|{{RUNDIR}}|$work|g" "$tmpl" > "$work/$name.yaml"
  taskset -c 0 .build/release/sluice serve --config "$work/$name.yaml" --log-level error &
done
sleep 1
rps() { taskset -c 1 wrk -t1 -c64 -d"${duration}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'; }
rps "${port[bare]}" >/dev/null  # warm both
rps "${port[features]}" >/dev/null
echo "round bare_rps features_rps ratio"
ratios=()
for ((r = 1; r <= rounds; r++)); do
  b=$(rps "${port[bare]}")
  f=$(rps "${port[features]}")
  ratio=$(python3 -c "print(f'{$f / $b:.3f}')")
  ratios+=("$ratio")
  echo "$r $b $f $ratio"
done
printf '%s\n' "${ratios[@]}" | python3 -c 'import sys, statistics; v=[float(x) for x in sys.stdin]; print(f"median features/bare: {statistics.median(v):.3f} (target >= 0.9)")'
echo "access log lines written: $(wc -l < "$work/access.log" 2>/dev/null || echo 0)"
