#!/usr/bin/env bash
# Issue 13 section 8: an upstream fails under load. Three endpoints (bench/tools/endpoint.py)
# behind each proxy at a fixed 5k req/s (oload, open loop, 64 connections, GET /):
#   kill: one endpoint is SIGKILLed 1 s into an 11 s window and restarted at its end;
#   slow: one endpoint answers after 200 ms from 1 s into the window until its end.
# Client-visible errors and latency are measured during that window ("fault") and in the 10 s
# after it ("after"). Sluice, nginx and HAProxy each get the same timeouts (100 ms connect, 100 ms
# per try), three tries, and the failure detection their docs recommend. The proxy runs on CPU 0
# with one worker; oload and the endpoints on CPU 1.
#
#   bench/failover.sh                         # both scenarios, all three proxies
#   SCENARIOS=kill TARGETS="sluice nginx" bench/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${RATE:-5000}
scenarios=${SCENARIOS:-kill slow}
targets=${TARGETS:-sluice nginx haproxy}
[[ -x .build/release/sluice ]] || make release >/dev/null
work=$(mktemp -d)
declare -a EP_PORT EP_PID
proxy_pid=""
cleanup() {
  [[ -n $proxy_pid ]] && kill "$proxy_pid" 2>/dev/null
  for p in "${EP_PID[@]:-}"; do [[ -n $p ]] && kill -9 "$p" 2>/dev/null; done
  [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh
gcc -O2 -o "$work/oload" ../shared/bench/tools/oload.c -lm
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
echo "versions: $(nginx -v 2>&1 | cut -d/ -f2), haproxy $(haproxy -v 2>&1 | awk 'NR==1{print $3}'), sluice $(git rev-parse --short HEAD)"

start_endpoint() {  # INDEX
  taskset -c 1 python3 bench/tools/endpoint.py "${EP_PORT[$1]}" &
  EP_PID[$1]=$!
}
wait_endpoint() {  # INDEX
  "$work/oload" ready 127.0.0.1 "${EP_PORT[$1]}" / 10 "${EPOCHREALTIME/./}" >/dev/null
}
for i in 0 1 2; do EP_PORT[$i]=$(free_port); done
eps="127.0.0.1:${EP_PORT[0]}, 127.0.0.1:${EP_PORT[1]}, 127.0.0.1:${EP_PORT[2]}"

start_proxy() {  # TARGET PORT
  local target=$1 port=$2
  case $target in
  sluice)
    cat > "$work/sluice.yaml" <<CONF
version: 1
runtime: { event_loops: 1, drain_timeout: 1s }
admin: { listen: 127.0.0.1:$(free_port) }
observability: { access_log: { output: $([[ -n ${FAILOVER_LOG:-} ]] && echo "$work/access.log" || echo none) } }
listeners:
  - name: bench
    listen: 127.0.0.1:$port
    limits: { max_connections: 100000, idle_timeout: 10m }
    routes:
      - name: all
        timeout: 5s
        retries: { attempts: 3, on: [connect-failure, reset, timeout], per_try_timeout: 100ms, budget: 20% }
        backend: up
backends:
  up:
    endpoints: [$eps]
    connect_timeout: 100ms
    health_check: { path: /healthz, interval: 1s, timeout: 100ms, healthy_threshold: 2, unhealthy_threshold: 2 }
    outlier_detection: { consecutive_failures: 3, eject_for: 10s }
CONF
    taskset -c 0 .build/release/sluice serve --config "$work/sluice.yaml" --log-level "${FAILOVER_LOG_LEVEL:-error}" &
    ;;
  nginx)
    # nginx (open source): passive checks only (max_fails / fail_timeout), proxy_next_upstream.
    nginx_conf "$work" proxy "
  upstream up {
    server 127.0.0.1:${EP_PORT[0]} max_fails=1 fail_timeout=10s;
    server 127.0.0.1:${EP_PORT[1]} max_fails=1 fail_timeout=10s;
    server 127.0.0.1:${EP_PORT[2]} max_fails=1 fail_timeout=10s;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_connect_timeout 100ms;
      proxy_read_timeout 100ms;
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
    }
  }"
    sed -i 's/^pid .*/daemon off;\npid '"${work//\//\\/}"'\/proxy.pid;/' "$work/proxy.conf"
    taskset -c 0 nginx -c "$work/proxy.conf" -p "$work" &
    ;;
  haproxy)
    # HAProxy: active checks, passive (observe layer7), L7 retries with redispatch.
    cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 100ms
  timeout client 30s
  timeout server 100ms
  timeout http-keep-alive 30s
  retries 2
  option redispatch 1
  retry-on all-retryable-errors
frontend fe
  bind 127.0.0.1:$port
  default_backend be
backend be
  balance roundrobin
  http-reuse safe
  option httpchk GET /healthz
  default-server inter 1s fall 2 rise 2 observe layer7 error-limit 3 on-error mark-down
  server a 127.0.0.1:${EP_PORT[0]} check
  server b 127.0.0.1:${EP_PORT[1]} check
  server c 127.0.0.1:${EP_PORT[2]} check
CONF
    taskset -c 0 haproxy -db -f "$work/haproxy.cfg" &
    ;;
  esac
  proxy_pid=$!
}

row() {  # SCENARIO TARGET PHASE OLOAD-LINE
  local line=$4
  kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  local errors=$(($(kv non2xx) + $(kv errors) + $(kv incomplete)))
  printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$1" "$2" "$3" "$(kv ok)" "$errors" \
    "$(kv p50_ms)" "$(kv p99_ms)" "$(kv p999_ms)" "$(kv max_ms)"
}

echo
echo "| scenario | proxy | window | ok | client-visible errors | p50 ms | p99 ms | p99.9 ms | max ms |"
echo "|---|---|---|--:|--:|--:|--:|--:|--:|"
for scenario in $scenarios; do
  for target in $targets; do
    for i in 0 1 2; do start_endpoint $i; done
    for i in 0 1 2; do wait_endpoint $i; done
    port=$(free_port)
    start_proxy "$target" "$port"
    "$work/oload" ready 127.0.0.1 "$port" / 10 "${EPOCHREALTIME/./}" >/dev/null
    sleep 1.5  # a health check round
    taskset -c 1 "$work/oload" rate 127.0.0.1 "$port" / "$rate" 3 0 64 >/dev/null  # warm-up
    taskset -c 1 "$work/oload" rate 127.0.0.1 "$port" / "$rate" 11 0 64 > "$work/fault.txt" &
    loader=$!
    sleep 1
    if [[ $scenario == kill ]]; then kill -9 "${EP_PID[2]}"; else kill -USR1 "${EP_PID[2]}"; fi
    wait "$loader"
    if [[ $scenario == kill ]]; then
      wait "${EP_PID[2]}" 2>/dev/null || true
      start_endpoint 2
      wait_endpoint 2
    else
      kill -USR2 "${EP_PID[2]}"
    fi
    taskset -c 1 "$work/oload" rate 127.0.0.1 "$port" / "$rate" 10 0 64 > "$work/after.txt"
    row "$scenario" "$target" fault "$(grep '^OLOAD' "$work/fault.txt")"
    row "$scenario" "$target" after "$(grep '^OLOAD' "$work/after.txt")"
    kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null || true
    if [[ -n ${FAILOVER_LOG:-} && -f $work/access.log ]]; then
      # FAILOVER_LOG=1: what Sluice answered other than 200, and how many tries it took.
      python3 -c 'import json,sys,collections
c=collections.Counter(); r=collections.Counter()
for l in open(sys.argv[1]):
  d=json.loads(l); r[d["retries"]]+=1
  if d["status"]!=200: c[(d["status"],d.get("error"))]+=1
print("  sluice non-200:", dict(c), "retries:", dict(r))' "$work/access.log" >&2
      rm -f "$work/access.log"
    fi
    proxy_pid=""
    for i in 0 1 2; do kill -9 "${EP_PID[$i]}" 2>/dev/null; wait "${EP_PID[$i]}" 2>/dev/null || true; done
    sleep 0.5
  done
done
