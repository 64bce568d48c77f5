#!/usr/bin/env bash
# Memory under connection churn: a new connection per request (`Connection: close`) on a plain,
# an https and a tls_passthrough listener, 4 rounds of 5 s each; prints Sluice's RSS after every
# round. RSS must level off: growth with the number of connections is a leak (see
# bench/RESULTS.md, "The leak this found"). Proxy on CPU 0, wrk and the upstream on CPU 1.
#
#   bench/churn.sh          # ~1.5 min
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  for f in "$work"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -r); sluice $(git rev-parse --short HEAD)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
up=$(free_port)
tls_up=$(free_port)
nginx_conf "$work" nginx "  server { listen 127.0.0.1:$up; location / { return 200 \"hello\"; } }
  server { listen 127.0.0.1:$tls_up ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    location / { return 200 \"hello\"; } }"
taskset -c 1 nginx -c "$work/nginx.conf" -p "$work"
plain=$(free_port)
https=$(free_port)
pass=$(free_port)
cat > "$work/sluice.yaml" <<CONF
version: 1
runtime: { event_loops: 1 }
admin: { listen: 127.0.0.1:$(free_port) }
observability: { access_log: { output: none } }
listeners:
  - { name: plain, listen: 127.0.0.1:$plain, routes: [{ name: p, backend: up }] }
  - name: https
    listen: 127.0.0.1:$https
    protocol: https
    tls: { certificates: [{ cert: $work/cert.pem, key: $work/key.pem }] }
    routes: [{ name: h, backend: up }]
  - { name: pass, listen: 127.0.0.1:$pass, protocol: tls_passthrough, routes: [{ name: t, backend: tls }] }
backends:
  up: { endpoints: [127.0.0.1:$up] }
  tls: { protocol: tcp, endpoints: [127.0.0.1:$tls_up] }
CONF
taskset -c 0 .build/release/sluice serve --config "$work/sluice.yaml" --log-level error 2>/dev/null &
pid=$!
sleep 0.7
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
echo "| listener | start RSS MiB | after round 1 | 2 | 3 | 4 | connections |"
echo "|---|--:|--:|--:|--:|--:|--:|"
for target in "plain http://127.0.0.1:$plain/" "https https://127.0.0.1:$https/" "passthrough https://localhost:$pass/"; do
  set -- $target
  row="| $1 | $(rss)"
  total=0
  for _ in 1 2 3 4; do
    n=$(taskset -c 1 wrk -t1 -c32 -d5s -H "Connection: close" "$2" | awk '/requests in/ {print $1}')
    total=$((total + n))
    sleep 0.5
    row="$row | $(rss)"
  done
  echo "$row | $total |"
done
