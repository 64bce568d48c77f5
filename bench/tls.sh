#!/usr/bin/env bash
# TLS figures the shared harness does not take (its tls/tlshs scenarios cover keep-alive and
# handshake throughput): memory per idle TLS connection (Sluice vs nginx) and TLS passthrough
# of 16 KiB responses (Sluice tls_passthrough vs HAProxy mode tcp, both routing on SNI), same
# minute, same CPUs (proxy on CPU 0; wrk, the upstream and the Python client on CPU 1).
#
#   bench/tls.sh                 # both (~3 min)
#   PARTS=passthrough bench/tls.sh
#
# Needs nginx, haproxy, wrk, openssl, python3 and .build/release/sluice (make release).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
parts=${PARTS:-idle passthrough}
rounds=${ROUNDS:-5}
duration=${DURATION:-8}
conns=${CONNS:-1000}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/{print $2}') GiB, $(uname -r)"
echo "versions: nginx $(nginx -v 2>&1 | cut -d/ -f2), haproxy $(haproxy -v 2>&1 | awk 'NR==1{print $3}'), sluice $(git rev-parse --short HEAD), $(openssl version)"

# One ECDSA P-256 certificate for every server (as the shared harness makes per run).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
head -c 16384 /dev/urandom > "$work/16k"

rss_kib() { # PIDS...: summed VmRSS
  local total=0 p
  for p in "$@"; do total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
  echo "$total"
}

# hold PORT N: N TLS connections, one GET each, then held open until killed; prints HELD when ready.
hold_script='
import socket, ssl, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(cafile=sys.argv[3])
held = []
for i in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while b"hello" not in data:
        data += s.recv(4096)
    held.append(s)
print("HELD", len(held), flush=True)
time.sleep(600)
'

if [[ " $parts " == *" idle "* ]]; then
  up=$(free_port)
  start_upstream "$work" "$up"
  echo
  echo "== memory per idle TLS connection ($conns keep-alive TLS 1.3 connections, one GET each, then idle)"
  echo "| target | idle RSS MiB | RSS with $conns TLS conns MiB | KiB per idle TLS conn |"
  echo "|---|--:|--:|--:|"
  for target in nginx sluice; do
    port=$(free_port)
    case $target in
      nginx)
        nginx_conf "$work" proxy "  upstream u { server 127.0.0.1:$up; keepalive 64; }
  server { listen 127.0.0.1:$port ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m; keepalive_timeout 600s;
    location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
        taskset -c 0 nginx -c "$work/proxy.conf" -p "$work"
        sleep 0.5
        master=$(cat "$work/proxy.pid")
        procs="$master $(pgrep -P "$master" | tr '\n' ' ')"
        ;;
      sluice)
        cat > "$work/sluice.yaml" <<CONF
version: 1
runtime: { event_loops: 1 }
admin: { listen: 127.0.0.1:$(free_port) }
observability: { access_log: { output: none } }
listeners:
  - name: tls
    listen: 127.0.0.1:$port
    protocol: https
    tls: { certificates: [{ cert: $work/cert.pem, key: $work/key.pem }] }
    limits: { idle_timeout: 10m }
    routes: [{ name: all, backend: up }]
backends:
  up: { endpoints: [127.0.0.1:$up] }
CONF
        taskset -c 0 .build/release/sluice serve --config "$work/sluice.yaml" --log-level error &
        pids+=($!)
        sleep 0.5
        procs=$!
        ;;
    esac
    # shellcheck disable=SC2086
    before=$(rss_kib $procs)
    taskset -c 1 python3 -c "$hold_script" "$port" "$conns" "$work/cert.pem" > "$work/hold.out" &
    holder=$!
    for _ in $(seq 1 600); do grep -q HELD "$work/hold.out" && break; sleep 0.1; done
    sleep 1
    # shellcheck disable=SC2086
    after=$(rss_kib $procs)
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    python3 -c "print(f'| $target | {$before/1024:.1f} | {$after/1024:.1f} | {($after-$before)/$conns:.2f} |')"
    if [[ $target == nginx ]]; then kill "$(cat "$work/proxy.pid")"; rm -f "$work/proxy.pid"; else kill "${pids[-1]}"; fi
    sleep 0.5
  done
  kill "$(cat "$work/nginx.pid")"
  rm -f "$work/nginx.pid"
  sleep 0.3
fi

if [[ " $parts " == *" passthrough "* ]]; then
  tls_up=$(free_port)
  # The TLS upstream: nginx on CPU 1 serving 16 KiB over keep-alive TLS.
  nginx_conf "$work" nginx "  server { listen 127.0.0.1:$tls_up ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; keepalive_timeout 600s; root $work; location / { } }"
  taskset -c 1 nginx -c "$work/nginx.conf" -p "$work"
  sp=$(free_port)
  hp=$(free_port)
  cat > "$work/pass.yaml" <<CONF
version: 1
runtime: { event_loops: 1 }
admin: { listen: 127.0.0.1:$(free_port) }
observability: { access_log: { output: none } }
listeners:
  - name: edge
    listen: 127.0.0.1:$sp
    protocol: tls_passthrough
    routes:
      - { name: local, match: { server_name: localhost }, backend: tls }
backends:
  tls: { protocol: tcp, endpoints: [127.0.0.1:$tls_up] }
CONF
  taskset -c 0 .build/release/sluice serve --config "$work/pass.yaml" --log-level error &
  pids+=($!)
  cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend edge
  bind 127.0.0.1:$hp
  tcp-request inspect-delay 5s
  tcp-request content accept if { req_ssl_hello_type 1 }
  use_backend tls if { req_ssl_sni -i localhost }
backend tls
  server up 127.0.0.1:$tls_up
CONF
  taskset -c 0 haproxy -db -f "$work/haproxy.cfg" &
  pids+=($!)
  sleep 1
  echo
  echo "== TLS passthrough, 16 KiB responses (wrk -t1 -c64 over TLS, SNI localhost, $rounds rounds of ${duration}s)"
  rps() { taskset -c 1 wrk -t1 -c64 -d"${duration}s" "https://localhost:$1/16k" | awk '/Requests\/sec/ {print $2}'; }
  rps "$sp" >/dev/null
  rps "$hp" >/dev/null
  echo "| round | haproxy req/s | sluice req/s | sluice/haproxy |"
  echo "|--:|--:|--:|--:|"
  ratios=()
  for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then a=$(rps "$hp"); b=$(rps "$sp"); else b=$(rps "$sp"); a=$(rps "$hp"); fi
    ratio=$(python3 -c "print(f'{$b / $a:.3f}')")
    ratios+=("$ratio")
    echo "| $r | $a | $b | $ratio |"
  done
  printf '%s\n' "${ratios[@]}" | python3 -c "import sys, statistics; v=[float(x) for x in sys.stdin]; print(f'median sluice/haproxy: {statistics.median(v):.3f} (target >= 0.9)')"
fi
