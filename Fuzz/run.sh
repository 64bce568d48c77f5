#!/usr/bin/env bash
# Builds the libFuzzer targets with address sanitizer and runs each for FUZZ_SECONDS (60).
#   Fuzz/run.sh                 # all targets
#   Fuzz/run.sh FuzzPath        # one
# Crashes land in fuzz-out/<target>/; replay one with .build/debug/<target> FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWIFT_BACKTRACE=enable=no
seconds=${FUZZ_SECONDS:-60}
targets=("${@:-FuzzConfig FuzzPath FuzzHTTP1 FuzzJWT FuzzRESP FuzzClientHello}")
targets=(${targets[@]})
for target in "${targets[@]}"; do
  swift build -c debug --scratch-path .build-fuzz --product "$target" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DSLUICE_FUZZ -Xswiftc -parse-as-library 2>&1 | tail -n 2
  corpus=fuzz-out/$target/corpus
  mkdir -p "$corpus" "fuzz-out/$target/crashes"
  case $target in
    FuzzConfig) seeds=(Fixtures/valid Fixtures/invalid examples) ;;
    FuzzPath) seeds=(Fuzz/corpus/path) ;;
    FuzzHTTP1) seeds=(Fuzz/corpus/http1) ;;
    FuzzJWT) seeds=(Fuzz/corpus/jwt) ;;
    FuzzRESP) seeds=(Fuzz/corpus/resp) ;;
    FuzzClientHello) seeds=(Fuzz/corpus/clienthello) ;;
  esac
  ".build-fuzz/debug/$target" "$corpus" "${seeds[@]}" -max_total_time="$seconds" -max_len=8192 \
    -artifact_prefix="fuzz-out/$target/crashes/" -print_final_stats=1 2>&1 | tail -n 12
done
