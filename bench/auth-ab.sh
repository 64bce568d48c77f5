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
declare -A port
for name in bare auth; do
  tmpl=bench/sluice.yaml.tmpl
  [[ $name == auth ]] && tmpl=bench/sluice-auth.yaml.tmpl
  port[$name]=$(free_port)
  sed -e "s/{{PORT}}/${port[$name]}/g" -e "s/{{UPSTREAM}}/127.0.0.1:$up/g" -e "s/{{WORKERS}}/1/g" \
    -e "s/{{ADMIN_PORT}}/$(free_port)/g" -e "s|{{RUNDIR}}|$work|g" "$tmpl" > "$work/$name.yaml"
  taskset -c 0 .build/release/sluice serve --config "$work/$name.yaml" --log-level error &
done
sleep 1
curl -sf -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:${port[auth]}/" || { echo "auth config refused the token"; exit 1; }
rps() { taskset -c 1 wrk -t1 -c64 -d"${duration}s" -H "Authorization: Bearer $token" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'; }
rps "${port[bare]}" >/dev/null
rps "${port[auth]}" >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); alg $alg"
echo "round bare_rps auth_rps ratio"
ratios=()
for ((r = 1; r <= rounds; r++)); do
  b=$(rps "${port[bare]}")
  a=$(rps "${port[auth]}")
  ratio=$(python3 -c "print(f'{$a / $b:.3f}')")
  ratios+=("$ratio")
  echo "$r $b $a $ratio"
done
printf '%s\n' "${ratios[@]}" | python3 -c 'import sys, statistics; v=[float(x) for x in sys.stdin]; print(f"median auth/bare: {statistics.median(v):.3f} (target >= 0.9)")'
