#!/usr/bin/env bash
# What the benchmark needs (as root): the shared harness's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash ../shared/bench/setup.sh
