# Sluice — build, test and measure. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
SWIFT ?= swift

.PHONY: build release test unit integration check format-lint import-check bench bench-check fuzz clean

build:
	$(SWIFT) build

# A release binary with version, git revision, build date and compiler baked in; no Swift
# runtime needed on the target machine. Dynamic exclusivity checks are off in release builds
# (the compile-time checks stay, and debug builds and tests keep the dynamic ones): they were
# ~2 % of the proxy's CPU per request in the profile (swift_beginAccess, AccessSet::insert).
# Linked by lld with packed relative relocations (DT_RELR, glibc >= 2.36) and without the
# --export-dynamic that -static-stdlib adds: the dynamic loader then no longer reads 1.6 MiB of
# RELA entries and 25,000 exported symbols at start-up, and idle RSS drops by about 2.5 MiB
# (16.5 -> 13.9 MiB, bench/RESULTS.md). The binary stays position-independent (ASLR kept).
# scripts/link-order.txt (made by scripts/link-order.sh) lists the functions a running gateway
# uses; lld lays them out together, so fewer code pages are touched (another ~1.9 MiB).
release:
	@printf '// swift-format-ignore-file\n#if SLUICE_GENERATED_BUILD_INFO\nenum GeneratedBuildInfo {\n  static let revision = "%s"\n  static let date = "%s"\n  static let swift = "%s"\n}\n#endif\n' \
	  "$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	  "$$($(SWIFT) --version 2>&1 | head -1 | sed 's/.*Swift version \([^ ]*\).*/\1/')" > Sources/SluiceCore/GeneratedBuildInfo.swift
	$(SWIFT) build -c release --product sluice --static-swift-stdlib -Xswiftc -DSLUICE_GENERATED_BUILD_INFO -Xswiftc -enforce-exclusivity=unchecked \
	  -Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic \
	  -Xlinker --symbol-ordering-file=$(CURDIR)/scripts/link-order.txt -Xlinker --no-warn-symbol-ordering

test:
	scripts/test.sh

unit:
	$(SWIFT) test

integration: build
	SLUICE_BIN=$$PWD/.build/debug/sluice python3 -m pytest -q tests/integration

format-lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Fuzz Benchmarks

import-check:
	$(SWIFT) build --explicit-target-dependency-import-check error

check: format-lint import-check test

bench: release
	bench/run.sh

bench-check: release
	bench/alloc-check.sh

fuzz:
	Fuzz/run.sh

clean:
	rm -rf .build
