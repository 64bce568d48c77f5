#!/usr/bin/env bash
# Issue 12's figures, in one run (bench/RESULTS.md): Sluice on CPU 0 with one event loop, wrk and
# the upstream nginx (and redis-server) on CPU 1.
#   1. bare vs a local per-IP limit that never trips, same minute (target >= 0.95);
#   2. nginx with limit_req (a zone per IP, never tripping) vs Sluice's local limit, same minute
#      (target: Sluice >= 0.8x nginx);
#   3. bare vs the same limit kept in Redis: throughput, and Redis round trips per request
#      (commands per write, from Sluice's metrics and Redis's INFO);
#   4. p50/p99 at 5k req/s, local vs Redis, through the shared harness (sluice vs sluice-b);
#   5. accuracy: 3 Sluice processes x 64 connections sharing one limit through one Redis;
#   6. memory: 1,000,000 distinct client IPs through a trusted proxy against the default cap.
#
#   bench/ratelimit.sh                 # all parts (~6 min)
#   PARTS="1 2" ROUNDS=3 bench/ratelimit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
duration=${SECONDS_PER_RUN:-10}
parts=" ${PARTS:-1 2 3 4 5 6} "
[[ -x .build/release/sluice ]] || make release >/dev/null
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  for p in "$work"/*.pid; do [[ -f $p ]] && kill "$(cat "$p")" 2>/dev/null; done
  [[ -n ${redis_pid:-} ]] && kill "$redis_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
up=$(free_port)
start_upstream "$work" "$up"
redis_port=$(free_port)
taskset -c 1 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --daemonize no --loglevel warning > /dev/null &
redis_pid=$!
sed "s/{{REDIS}}/127.0.0.1:$redis_port/g" bench/sluice-ratelimit-redis.yaml.tmpl > "$work/redis.yaml.tmpl"
ab_start "$work" "$up" bare bench/sluice.yaml.tmpl
ab_start "$work" "$up" local bench/sluice-ratelimit.yaml.tmpl
ab_start "$work" "$up" redis "$work/redis.yaml.tmpl"
# nginx as the same proxy, with and without limit_req, one worker on CPU 0.
for variant in nginx nginxlimit; do
  AB_PORT[$variant]=$(free_port)
  zone="" use=""
  if [[ $variant == nginxlimit ]]; then
    zone="limit_req_zone \$binary_remote_addr zone=perip:10m rate=1000000r/s;"
    use="limit_req zone=perip burst=1000000 nodelay;"
  fi
  nginx_conf "$work" "$variant" "  $zone
  upstream backend { server 127.0.0.1:$up; keepalive 256; keepalive_requests 100000000; }
  server { listen 127.0.0.1:${AB_PORT[$variant]}; location / { $use proxy_pass http://backend;
    proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
  taskset -c 0 nginx -c "$work/$variant.conf" -p "$work"
done
sleep 1
for name in bare local redis nginx nginxlimit; do
  curl -sf -o /dev/null "http://127.0.0.1:${AB_PORT[$name]}/" || { echo "$name does not answer 200"; exit 1; }
done
admin_of() { grep -o 'listen: 127.0.0.1:[0-9]*' "$work/$1.yaml" | head -1 | cut -d: -f3; }
metric_sum() {  # metric_sum NAME PATTERN: the sum of NAME's series whose labels match PATTERN
  curl -s "http://127.0.0.1:$(admin_of redis)/metrics" | awk -v n="$1" -v p="$2" '$1 ~ "^"n"[{]" && $1 ~ p {s += $2} END {print s+0}'
}

if [[ $parts == *" 1 "* ]]; then
  echo "== 1. bare vs local per-IP limit (same minute; target local/bare >= 0.95)"
  ab_rounds bare local "$rounds" "$duration"
fi
if [[ $parts == *" 2 "* ]]; then
  echo "== 2. nginx limit_req vs Sluice local limit (same minute; target sluice/nginx >= 0.8)"
  ab_rounds nginxlimit local "$rounds" "$duration"
  echo "   (for reference, nginx without limit_req vs with it)"
  ab_rounds nginx nginxlimit 3 "$duration"
fi
if [[ $parts == *" 3 "* ]]; then
  echo "== 3. bare vs the limit in Redis (same minute), with round trips per request"
  rc0=$(redis-cli -p "$redis_port" info stats | tr -d '\r' | awk -F: '/^total_reads_processed/ {print $2}')
  c0=$(metric_sum sluice_store_commands_total 'result="ok"')
  w0=$(metric_sum sluice_store_writes_total '')
  ab_rounds bare redis "$rounds" "$duration"
  rc1=$(redis-cli -p "$redis_port" info stats | tr -d '\r' | awk -F: '/^total_reads_processed/ {print $2}')
  c1=$(metric_sum sluice_store_commands_total 'result="ok"')
  w1=$(metric_sum sluice_store_writes_total '')
  fails=$(metric_sum sluice_store_commands_total 'result="(timeout|disconnected|overloaded|bad_reply)"')
  python3 -c "
c, w, r = $c1 - $c0, $w1 - $w0, $rc1 - $rc0
print(f'   commands {c:.0f}, writes {w:.0f}: {w / c:.3f} writes per request; Redis reads {r:.0f}: {r / c:.3f} per request; failed commands {$fails:.0f}')"
fi
if [[ $parts == *" 4 "* ]]; then
  echo "== 4. latency at 5k req/s: local (sluice) vs Redis (sluice-b), shared harness"
  SLUICE_CONF_TMPL=bench/sluice-ratelimit.yaml.tmpl SLUICE_B_CONF_TMPL="$work/redis.yaml.tmpl" RESULTS_DIR="$work/harness" \
    SLUICE_VERSION="sluice $(git rev-parse --short HEAD)" bash ../shared/bench/run.sh --label ratelimit --workers 1 \
    --scenarios rate5k --runs 3 sluice sluice-b -- .build/release/sluice serve --config {CONFIG} --log-level warning \
    > "$work/harness.log" 2>&1 || true
  python3 - "$work"/harness/*-raw.csv <<'PY'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["scenario"] == "rate5k" and r["p50_ms"]]
for target in ("sluice", "sluice-b"):
    mine = [r for r in rows if r["target"] == target]
    p50 = statistics.median(float(r["p50_ms"]) for r in mine)
    p99 = statistics.median(float(r["p99_ms"]) for r in mine)
    name = "local" if target == "sluice" else "redis"
    print(f"   {name}: p50 {p50:.3f} ms, p99 {p99:.3f} ms (median of {len(mine)} runs)")
PY
fi
if [[ $parts == *" 5 "* ]]; then
  echo "== 5. accuracy: 3 processes x 64 connections, one limit in one Redis"
  redis-cli -p "$redis_port" flushall > /dev/null
  acc=()
  for i in 1 2 3; do
    p=$(free_port) a=$(free_port)
    cat > "$work/acc$i.yaml" <<YAML
version: 1
runtime: { event_loops: 1 }
admin: { listen: 127.0.0.1:$a }
observability: { access_log: { output: none } }
listeners:
  - { name: l, listen: 127.0.0.1:$p, limits: { max_connections: 100000 },
      routes: [ { name: all, rate_limit: [shared], direct_response: { status: 200, body: ok } } ] }
rate_limits:
  shared: { key: route, limit: 5000, per: 1h, store: main, on_store_error: deny }
stores:
  main: { type: redis, url: "redis://127.0.0.1:$redis_port/0", timeout: 200ms }
YAML
    taskset -c 0 .build/release/sluice serve --config "$work/acc$i.yaml" --log-level error &
    acc+=("$p:$a")
  done
  sleep 1.5
  t0=$(date +%s.%N)
  for entry in "${acc[@]}"; do
    taskset -c 1 wrk -t1 -c64 -d8s "http://127.0.0.1:${entry%%:*}/" > "$work/wrk-${entry%%:*}.txt" &
  done
  wait $(jobs -p | tail -3) 2>/dev/null || true
  t1=$(date +%s.%N)
  admitted=0 refused=0 other=0
  for entry in "${acc[@]}"; do
    m=$(curl -s "http://127.0.0.1:${entry##*:}/metrics")
    admitted=$((admitted + $(awk '/^sluice_http_requests_total[{].*code="200"/ {s += $2} END {print s+0}' <<<"$m")))
    refused=$((refused + $(awk '/^sluice_http_requests_total[{].*code="429"/ {s += $2} END {print s+0}' <<<"$m")))
    other=$((other + $(awk '/^sluice_http_requests_total[{]/ && !/code="(200|429)"/ {s += $2} END {print s+0}' <<<"$m")))
  done
  python3 -c "
elapsed = $t1 - $t0
allowed = 5000 + int(elapsed / 0.72)  # burst + what the rate (5000 per hour: one per 0.72 s) adds
print(f'   {elapsed:.1f} s: admitted {$admitted}, refused {$refused}, other {$other}; GCRA allows at most {allowed}: over-admission {$admitted - allowed:+d}')"
fi
if [[ $parts == *" 6 "* ]]; then
  echo "== 6. memory: 1,000,000 distinct client IPs through a trusted proxy (default max_keys 100,000)"
  p=$(free_port) a=$(free_port)
  cat > "$work/flood.yaml" <<YAML
version: 1
runtime: { event_loops: 1 }
admin: { listen: 127.0.0.1:$a }
observability: { access_log: { output: none } }
listeners:
  - { name: l, listen: 127.0.0.1:$p, trusted_proxies: [127.0.0.0/8], limits: { max_connections: 100000 },
      routes: [ { name: all, rate_limit: [per-ip], direct_response: { status: 200, body: ok } } ] }
rate_limits:
  per-ip: { key: client_ip, limit: 10, per: 1m }
YAML
  taskset -c 0 .build/release/sluice serve --config "$work/flood.yaml" --log-level error &
  pid=$!
  sleep 1
  for _ in $(seq 11); do curl -s -o /dev/null -H 'x-forwarded-for: 198.51.100.1' "http://127.0.0.1:$p/"; done
  before=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  cat > "$work/flood.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", "/", { ["X-Forwarded-For"] = ip })
end
LUA
  t0=$(date +%s)
  taskset -c 1 wrk -t1 -c64 -d60s -s "$work/flood.lua" "http://127.0.0.1:$p/" > "$work/flood.txt" &
  wrk_pid=$!
  peak=$before
  while kill -0 $wrk_pid 2>/dev/null; do
    r=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    if ((r > peak)); then peak=$r; fi
    sleep 1
    total=$(curl -s "http://127.0.0.1:$a/metrics" | awk '/^sluice_http_requests_total[{]/ {s += $2} END {print s+0}')
    if ((total >= 1000011)); then kill $wrk_pid 2>/dev/null || true; fi
  done
  total=$(curl -s "http://127.0.0.1:$a/metrics" | awk '/^sluice_http_requests_total[{]/ {s += $2} END {print s+0}')
  # The client that used its burst before the flood has earned back one request per 6 s since;
  # if its state had been forgotten it would get a fresh burst of 10.
  hot=$(for _ in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null -w '%{http_code} ' -H 'x-forwarded-for: 198.51.100.1' "http://127.0.0.1:$p/"; done)
  earned=$(( ($(date +%s) - t0) / 6 + 1 ))
  after=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  echo "   $((total - 11)) requests from distinct IPs in $(($(date +%s) - t0)) s; RSS $before -> $after KiB (peak $peak, +$((peak - before)) KiB); the client over its limit gets: $hot(at most $earned earned back)"
fi
