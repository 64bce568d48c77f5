#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: the repeatable measure
# of the request path's own work (wall-clock A/B runs on these VMs move by 5-10 % between
# minutes; this count moves by < 0.1 %). Runs the release binary under valgrind with an nginx
# upstream on CPU 1, warms up, zeroes the counters, sends N keep-alive GETs at a fixed rate
# with the harness's generator (../shared/bench/tools/oload.c, 16 connections), and prints
# instructions per request and the 25 costliest functions (self cost). Kernel time is not
# counted. Not part of CI; compare two commits with the same N.
#
#   bench/instructions.sh                       # the current release build, N=4000
#   INSTR_REQUESTS=8000 bench/instructions.sh path/to/other/sluice
#   INSTR_CONFIG=bench/sluice-features.yaml.tmpl bench/instructions.sh   # features config
#   INSTR_CONFIG=bench/sluice-auth.yaml.tmpl INSTR_SETUP='python3 bench/tools/mint.py $work RS256' \
#     bench/instructions.sh    # cached RS256 token on every request (INSTR_SETUP's output is the token)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${INSTR_REQUESTS:-4000}
oload_src=${BENCH_OLOAD_SRC:-../shared/bench/tools/oload.c}
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
[[ -n ${1:-} || -x .build/release/sluice ]] || make release >/dev/null
binary=${1:-.build/release/sluice}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
# INSTR_SETUP runs first (with $work set); its output is a bearer token for every request.
[[ -n ${INSTR_SETUP:-} ]] && INSTR_HEADER="Authorization: Bearer $(eval "$INSTR_SETUP")"
# INSTR_HEADER='Name: value' adds a header to every request (a copy of oload.c is patched).
if [[ -n ${INSTR_HEADER:-} ]]; then
  sed "s|User-Agent: oload\\\\r\\\\n|User-Agent: oload\\\\r\\\\n${INSTR_HEADER}\\\\r\\\\n|" "$oload_src" > "$work/oload.c"
  grep -q "${INSTR_HEADER:0:20}" "$work/oload.c" || { echo "could not add the header to oload.c"; exit 1; }
  oload_src=$work/oload.c
fi
gcc -O2 -o "$work/oload" "$oload_src" -lm
# Valgrind 3.19 cannot read the DWARF 5 that Swift 6 emits; the symbol table is enough.
strip --strip-debug -o "$work/sluice" "$binary"
source bench/lib.sh
up=$(free_port)
port=$(free_port)
admin=$(free_port)
start_upstream "$work" "$up"
# INSTR_CONFIG=bench/sluice-features.yaml.tmpl counts the features configuration instead.
sed -e "s/{{PORT}}/$port/g" -e "s/{{UPSTREAM}}/127.0.0.1:$up/g" -e "s/{{WORKERS}}/1/g" \
  -e "s/{{ADMIN_PORT}}/$admin/g" -e "s|{{RUNDIR}}|$work|g" "${INSTR_CONFIG:-bench/sluice.yaml.tmpl}" > "$work/sluice.yaml"
valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$work/sluice" serve --config "$work/sluice.yaml" \
  --log-level error >/dev/null 2>&1 &
pid=$!
"$work/oload" ready 127.0.0.1 "$port" / 60 "${EPOCHREALTIME/./}" >/dev/null
taskset -c 1 "$work/oload" rate 127.0.0.1 "$port" / 500 4 0 16 >/dev/null 2>&1  # warm-up
callgrind_control -z "$pid" >/dev/null 2>&1
taskset -c 1 "$work/oload" rate 127.0.0.1 "$port" / $((requests / 5)) 5 0 16 | grep '^OLOAD' | cut -c1-100
callgrind_control -d "$pid" >/dev/null 2>&1
kill "$pid"
wait "$pid" 2>/dev/null || true
[[ -n ${INSTR_DUMP:-} ]] && cp "$work/cg.$pid.1" "$INSTR_DUMP"  # keep the dump for callgrind tools
python3 bench/tools/callgrind_self.py "$work/cg.$pid.1" "$requests" 25 | (swift demangle --simplified 2>/dev/null || cat)
