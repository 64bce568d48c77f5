#!/usr/bin/env bash
# Issue 11: a flood of N (100,000) distinct valid ES256 tokens against a JWT route, two event
# loops: RSS before and after, against the token cache's bound (8,192 entries per loop). wrk
# sends each token once (a Lua script walks the list), 64 connections.
#
#   bench/jwt-flood.sh            # N=100000
#   N=20000 bench/jwt-flood.sh
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-100000}
[[ -x .build/release/sluice ]] || make release >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
source bench/lib.sh
up=$(free_port)
port=$(free_port)
admin=$(free_port)
start_upstream "$work" "$up"
python3 bench/tools/mint.py "$work" ES256 "$n" > "$work/tokens.txt"
sed -e "s/{{PORT}}/$port/g" -e "s/{{UPSTREAM}}/127.0.0.1:$up/g" -e "s/{{WORKERS}}/2/g" \
  -e "s/{{ADMIN_PORT}}/$admin/g" -e "s|{{RUNDIR}}|$work|g" bench/sluice-auth.yaml.tmpl > "$work/auth.yaml"
.build/release/sluice serve --config "$work/auth.yaml" --log-level error &
pid=$!
sleep 1
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
cat > "$work/flood.lua" <<LUA
local tokens = {}
for line in io.lines("$work/tokens.txt") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. tokens[i] })
end
LUA
# warm the connections and the allocator with one token
one=$(head -1 "$work/tokens.txt")
wrk -t1 -c64 -d2s -H "Authorization: Bearer $one" "http://127.0.0.1:$port/" >/dev/null
before=$(rss)
answered() {
  curl -s "http://127.0.0.1:$admin/metrics" | awk '/^sluice_http_requests_total\{/ {s += $2} END {printf "%d\n", s}'
}
wait_for_requests() {
  while (( $(answered) < $1 )); do sleep 0.5; done
}
baseline=$(answered)
start=$(date +%s.%N)
wrk -t1 -c64 -d300s -s "$work/flood.lua" "http://127.0.0.1:$port/" >/dev/null 2>&1 &
wrkpid=$!
wait_for_requests "$((baseline + n))"
kill "$wrkpid" 2>/dev/null || true
elapsed=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
after=$(rss)
refused=$(curl -s "http://127.0.0.1:$admin/metrics" | awk '/^sluice_auth_failures_total/ {s += $2} END {print s + 0}')
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "tokens: $n distinct ES256, sent in ${elapsed}s; refused: $refused"
echo "RSS before: $before KiB, after: $after KiB, growth: $((after - before)) KiB"
echo "bound: 2 loops x 4096 cached tokens (token bytes + claims each)"
