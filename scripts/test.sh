#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, builds, runs the Swift
# unit tests, then the integration tests against the real binary on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
# A real redis-server for the rate-limit and revocation tests (started by the tests themselves on
# free loopback ports, never the system one).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# openssl s_client checks SNI, ALPN and versions against https listeners.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# PyJWT + cryptography mint tokens for every algorithm; trustme makes the test CA for https JWKS;
# redis-py inspects and pauses the test Redis; websockets is the WebSocket client and upstream.
if ! python3 -c 'import pytest, requests, jwt, cryptography, trustme, redis, websockets' >/dev/null 2>&1; then
  python3 -m pip install -q pytest requests pyjwt cryptography trustme redis websockets \
    || python3 -m pip install -q --break-system-packages pytest requests pyjwt cryptography trustme redis websockets
fi


echo "== build"
swift build --build-tests 2>&1 | tail -n 3

echo "== unit tests (swift test)"
swift test --skip-build 2>&1 | tee /tmp/sluice-unit.log | grep -E "error|failed|Executed [0-9]+ tests" | tail -n 20
if grep -qE "with [1-9][0-9]* failures|error:" /tmp/sluice-unit.log; then
  echo "unit tests failed"
  exit 1
fi

echo "== integration tests (pytest against .build/debug/sluice)"
SLUICE_BIN="$PWD/.build/debug/sluice" python3 -m pytest -q -p no:cacheprovider tests/integration
