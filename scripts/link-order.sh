#!/usr/bin/env bash
# Regenerates scripts/link-order.txt: the functions the gateway runs at start-up, on the proxy
# path (GET, POST, chunked, an error) and on the admin API, in a callgrind run of the current
# release binary. `make release` hands the list to lld (--symbol-ordering-file), which lays those
# functions out next to each other: the pages a running gateway touches are then fewer, and idle
# RSS drops by ~1.9 MiB (bench/RESULTS.md). A stale list costs only that gain (symbols it names
# that no longer exist are skipped silently), so rerun this after large changes:
#
#   make release && scripts/link-order.sh && make release
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
[[ -x .build/release/sluice ]] || make release >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free) admin=$(free) up=$(free)
python3 -m http.server "$up" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
cat > "$work/sluice.yaml" <<YAML
version: 1
runtime: { event_loops: 1, drain_timeout: 1s }
admin: { listen: 127.0.0.1:$admin }
observability: { access_log: { output: none } }
listeners:
  - name: main
    listen: 127.0.0.1:$port
    routes:
      - { name: all, backend: app }
backends:
  app: { endpoints: [127.0.0.1:$up] }
YAML
# Without debug info: valgrind cannot read lld's DWARF; function names come from the symbols.
strip --strip-debug -o "$work/sluice" .build/release/sluice
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.out" "$work/sluice" serve \
  --config "$work/sluice.yaml" --log-level error >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$admin/readyz" && break; sleep 0.2; done
head -c 20000 /dev/urandom > "$work/body"
for _ in $(seq 20); do
  curl -s -o /dev/null "http://127.0.0.1:$port/"
  curl -s -o /dev/null -X POST --data-binary @"$work/body" "http://127.0.0.1:$port/x"
done
curl -s -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary @"$work/body" "http://127.0.0.1:$port/"
curl -s -o /dev/null "http://127.0.0.1:$port/%00"
for path in metrics readyz healthz config backends; do curl -s -o /dev/null "http://127.0.0.1:$admin/$path"; done
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
python3 - "$work/cg.out" .build/release/sluice scripts/link-order.txt <<'PY'
import re, subprocess, sys
names, seen = [], set()
for line in open(sys.argv[1]):
    m = re.match(r"^c?fn=\(\d+\) (.*)$", line.rstrip("\n"))
    if m:
        name = m.group(1).split("'")[0]
        if name not in seen:
            seen.add(name)
            names.append(name)
symbols = set()
for line in subprocess.run(["nm", "--defined-only", sys.argv[2]], capture_output=True, text=True).stdout.splitlines():
    parts = line.split(" ", 2)
    if len(parts) == 3 and parts[1] in "tTwW":
        symbols.add(parts[2])
keep = [n for n in names if n in symbols]
open(sys.argv[3], "w").write("\n".join(keep) + "\n")
print(f"{len(keep)} functions written to {sys.argv[3]}")
PY
