#!/usr/bin/env bash
# Builds the release binary and runs the shared harness (../shared/bench/run.sh) for Sluice
# beside nginx, in one run. Not part of CI.
#
#   bench/run.sh                                   # sluice vs nginx, bare config, HTTP/1 scenarios, 1 loop
#   BENCH_TARGETS="nginx haproxy caddy" bench/run.sh
#   BENCH_CONFIG=bench/sluice-features.yaml.tmpl BENCH_LABEL=features bench/run.sh
#   bench/run.sh --quick --scenarios small         # extra arguments go to the harness
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
label=${BENCH_LABEL:-sluice}
# Sluice speaks HTTP/1.1 only so far: without --scenarios, run the harness's HTTP/1 scenarios
# with one event loop (the issue 3 targets) instead of its default list, which has h2c.
if [[ " $* " != *" --scenarios "* ]]; then
  set -- --scenarios "${BENCH_SCENARIOS:-small,16k,c1,rate5k,rate10k,idle1000}" "$@"
fi
if [[ " $* " != *" --workers "* ]]; then
  set -- --workers 1 "$@"
fi
# shellcheck disable=SC2086
exec bash "$harness" --label "$label" "$@" ${BENCH_TARGETS:-nginx} sluice -- \
  .build/release/sluice serve --config {CONFIG} --log-level warning
