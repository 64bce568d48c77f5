#!/usr/bin/env bash
# Issue 3, target 3 (tails): how fast a fresh proxy drains the backlog after its process was
# held up, as a VM pause holds it. The harness's rate scenarios meet such pauses by chance;
# this makes them on purpose: each proxy (nginx with the harness's proxy settings, and Sluice
# with bench/sluice.yaml.tmpl) is started fresh, driven by the harness's open-loop generator at
# RATE req/s over 64 connections (CPU 1), and stopped with SIGSTOP for STALL_MS twice in the
# measured window (SIGCONT after). p99.9 and max then measure the stall plus the drain; the
# upstream connections each proxy ended with show how many it opened for the bursts.
#
#   bench/stall.sh                          # 3 rounds, nginx and Sluice alternating
#   ROUNDS=5 STALL_MS=20 RATE=5000 bench/stall.sh
#   BIN_OLD=/path/to/older/sluice bench/stall.sh   # a third target: another Sluice binary
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
stall_ms=${STALL_MS:-20}
rate=${RATE:-5000}
duration=10
[[ -x .build/release/sluice ]] || make release >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; for f in "$work"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done; rm -rf "$work"' EXIT
source bench/lib.sh
gcc -O2 -o "$work/oload" "${BENCH_OLOAD_SRC:-../shared/bench/tools/oload.c}" -lm
up=$(free_port)
start_upstream "$work" "$up"
proxy_port=$(free_port)
nginx_conf "$work" proxy "  keepalive_timeout 300s;
  upstream backend { server 127.0.0.1:$up; keepalive 256; keepalive_requests 100000000; keepalive_timeout 300s; }
  server { listen 127.0.0.1:$proxy_port; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
sluice_port=$(free_port)
sed -e "s/{{PORT}}/$sluice_port/g" -e "s/{{UPSTREAM}}/127.0.0.1:$up/g" -e "s/{{WORKERS}}/1/g" \
  -e "s/{{ADMIN_PORT}}/$(free_port)/g" bench/sluice.yaml.tmpl > "$work/sluice.yaml"

# stall PID: SIGSTOP for stall_ms at 4.5 s and 9 s after the start (the measured window is
# 2-12 s: 2 s of warm-up first).
stall() {
  local pid=$1
  python3 - "$pid" "$stall_ms" <<'PY'
import os, signal, sys, time
pid, ms = int(sys.argv[1]), float(sys.argv[2])
for _ in range(2):
    time.sleep(4.5)
    os.kill(pid, signal.SIGSTOP)
    time.sleep(ms / 1000)
    os.kill(pid, signal.SIGCONT)
PY
}

targets=(nginx sluice)
[[ -n ${BIN_OLD:-} ]] && targets+=(sluice-old)
echo "| round | target | p50 ms | p99 ms | p99.9 ms | max ms | ok | upstream connections |"
echo "|--:|---|--:|--:|--:|--:|--:|--:|"
for round in $(seq "$rounds"); do
  for target in "${targets[@]}"; do
    case $target in
      nginx)
        taskset -c 0 nginx -c "$work/proxy.conf" -p "$work"
        sleep 0.3
        pid=$(ps -o pid= --ppid "$(cat "$work/proxy.pid")" | tr -d ' ')
        port=$proxy_port ;;
      *)
        bin=.build/release/sluice
        [[ $target == sluice-old ]] && bin=$BIN_OLD
        taskset -c 0 "$bin" serve --config "$work/sluice.yaml" --log-level error > /dev/null 2>&1 &
        pid=$!
        port=$sluice_port ;;
    esac
    "$work/oload" ready 127.0.0.1 "$port" / 10 "${EPOCHREALTIME/./}" > /dev/null
    sleep 0.5
    taskset -c 1 bash -c "$(declare -f stall); stall_ms=$stall_ms; stall $pid" &
    stopper=$!
    out=$(taskset -c 1 "$work/oload" rate 127.0.0.1 "$port" / "$rate" "$duration" 2 64 | grep OLOAD || true)
    wait "$stopper"
    conns=$(ss -tnp state established "( dport = :$up )" 2> /dev/null | grep -c "pid=$pid," || true)
    field() { grep -o " $1=[^ ]*" <<< "$out" | head -1 | cut -d= -f2; }
    echo "| $round | $target | $(field p50_ms) | $(field p99_ms) | $(field p999_ms) | $(field max_ms) | $(field ok) | $conns |"
    if [[ $target == nginx ]]; then kill "$(cat "$work/proxy.pid")"; else kill "$pid"; wait "$pid" 2> /dev/null || true; fi
    sleep 0.3
  done
done
