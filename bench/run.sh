#!/usr/bin/env bash
# Issue 3's whole check in one run: builds the release binary, runs the shared harness
# (../shared/bench/run.sh) for Sluice beside nginx, then the same-minute features vs bare A/B
# (bench/features-ab.sh), the allocation check (bench/alloc-check.sh) and, with BENCH_SOAK=1,
# the 10-minute soak (bench/soak.sh); bench/targets.py then prints every target, met or not,
# into results/DATE-LABEL-targets.md. Not part of CI.
#
#   bench/run.sh                                   # the full check (~15 min; +10 with BENCH_SOAK=1)
#   bench/run.sh --runs 5                          # more runs per scenario (medians of 5)
#   BENCH_TARGETS="nginx haproxy caddy" bench/run.sh
#   BENCH_CONFIG=bench/sluice-features.yaml.tmpl BENCH_LABEL=features bench/run.sh
#   bench/run.sh --quick --scenarios small         # extra arguments go to the harness; a run
#                                                  # with --scenarios or BENCH_CONFIG is the
#                                                  # harness only (BENCH_EXTRAS=1 forces the rest)
#
# Needs: bench/setup.sh (apt-get install nginx haproxy caddy wrk nghttp2-client gcc).
set -euo pipefail
cd "$(dirname "$0")/.."
harness=${BENCH_HARNESS:-../shared/bench/run.sh}
[[ -x $harness || -f $harness ]] || { echo "bench: harness not found at $harness" >&2; exit 2; }
[[ ${BENCH_BUILD:-1} == 0 && -x .build/release/sluice ]] || make release >/dev/null
export SLUICE_CONF_TMPL=${BENCH_CONFIG:-bench/sluice.yaml.tmpl}
export SLUICE_VERSION="sluice $(git rev-parse --short HEAD 2>/dev/null || echo dev)"
export RESULTS_DIR=${RESULTS_DIR:-bench/results}
mkdir -p "$RESULTS_DIR"
label=${BENCH_LABEL:-sluice}-$(date +%H%M%S)
extras=${BENCH_EXTRAS:-1}
[[ -n ${BENCH_CONFIG:-} ]] && extras=${BENCH_EXTRAS:-0}
# Sluice speaks HTTP/1.1 only so far: without --scenarios, run the harness's HTTP/1 scenarios
# with one event loop (the issue 3 targets) instead of its default list, which has h2c.
if [[ " $* " != *" --scenarios "* ]]; then
  set -- --scenarios "${BENCH_SCENARIOS:-small,16k,c1,rate5k,rate10k,idle1000}" "$@"
else
  extras=${BENCH_EXTRAS:-0}
fi
if [[ " $* " != *" --workers "* ]]; then
  set -- --workers 1 "$@"
fi
# shellcheck disable=SC2086
bash "$harness" --label "$label" "$@" ${BENCH_TARGETS:-nginx} sluice -- \
  .build/release/sluice serve --config {CONFIG} --log-level warning
[[ $extras == 1 ]] || exit 0

base="$RESULTS_DIR/$(date +%F)-$label"
args=("$base.csv")
echo "== features vs bare, same minute (bench/features-ab.sh)"
bench/features-ab.sh | tee "$base-features-ab.txt"
args+=(--features "$base-features-ab.txt")
echo "== allocations per request (bench/alloc-check.sh)"
bench/alloc-check.sh | tee "$base-alloc.txt" || true
args+=(--alloc "$base-alloc.txt")
if [[ ${BENCH_SOAK:-0} == 1 ]]; then
  echo "== soak (bench/soak.sh)"
  bench/soak.sh | tee "$base-soak.txt"
  args+=(--soak "$base-soak.txt")
fi
echo "== targets"
status=0
python3 bench/targets.py "${args[@]}" | tee "$base-targets.md" || status=$?
echo "wrote ${base}-targets.md"
exit "$status"
