# `make bench`: the collector's figures, measured on local services and written to BENCHMARKS.md.
# Included from the top Makefile (which provides `venv`); bench/src/main.rs says what is measured
# and how. About ten minutes after the build; BENCH_QUICK=1 makes every backlog ten times smaller.

CARGO ?= cargo
BENCH_QUICK ?=
# BENCH_ONLY=drain: only the large drain and the detector over it, their CPU printed (BENCHMARKS.md
# untouched).
BENCH_ONLY ?=
# The collector is built alone, as cargo-lambda builds it for deployment: built together with the
# simulator and testkit, its dependencies get their features too (the binary is 0.7 MB larger).
# The bench then runs straight from the target directory, so the builds go to BENCH_TARGET_DIR too
# (else a BENCH_TARGET_DIR other than the tree's own would run whatever binaries it held before).
BENCH_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

.PHONY: bench

# The CPU-quota table compares the collector with its build before the libdeflate encoder, the
# commit BENCH_BEFORE_REV (empty: skip it). Its tree comes out of git into the target directory and
# is built with the same target directory, so only what changed since is compiled again (a few
# minutes); its binary is copied aside before the current build takes the name back.
# BENCH_ONLY runs no quota table, so it builds no 'before'.
BENCH_BEFORE_REV ?= $(if $(BENCH_ONLY),,587c5dc)
BENCH_BEFORE_DIR := $(abspath $(BENCH_TARGET_DIR))/bench-before
BENCH_BEFORE_BIN := $(BENCH_BEFORE_DIR)/anthropic-compliance-collector

bench: venv ## Measure memory, CPU, start-up, requests, wall time, binary size and cost; write BENCHMARKS.md (BENCH_QUICK=1: 10x smaller)
	@if [ -n "$(BENCH_BEFORE_REV)" ] && git cat-file -e "$(BENCH_BEFORE_REV)^{commit}" 2>/dev/null; then \
		if [ "$$(cat "$(BENCH_BEFORE_DIR)/rev" 2>/dev/null)" != "$(BENCH_BEFORE_REV)" ]; then \
			rm -rf "$(BENCH_BEFORE_DIR)" && mkdir -p "$(BENCH_BEFORE_DIR)/src" && \
			git archive "$(BENCH_BEFORE_REV)" | tar -x -C "$(BENCH_BEFORE_DIR)/src" && \
			echo "$(BENCH_BEFORE_REV)" > "$(BENCH_BEFORE_DIR)/rev"; \
		fi && \
		(cd "$(BENCH_BEFORE_DIR)/src" && CARGO_TARGET_DIR="$(abspath $(BENCH_TARGET_DIR))" \
			$(CARGO) build --release --locked -p anthropic-compliance-collector --bin anthropic-compliance-collector) && \
		cp "$(BENCH_TARGET_DIR)/release/anthropic-compliance-collector" "$(BENCH_BEFORE_BIN)"; \
	else \
		echo "bench: no commit $(BENCH_BEFORE_REV) here; the quota table has no 'before' row"; rm -f "$(BENCH_BEFORE_BIN)"; \
	fi
	CARGO_TARGET_DIR="$(abspath $(BENCH_TARGET_DIR))" $(CARGO) build --release --locked -p anthropic-compliance-collector --bin anthropic-compliance-collector --bin anthropic-compliance-detector
	CARGO_TARGET_DIR="$(abspath $(BENCH_TARGET_DIR))" $(CARGO) build --release --locked -p compliance-sim -p bench --bin compliance-sim --bin bench
	before="$${BENCH_BEFORE_COLLECTOR:-}"; if [ -z "$$before" ] && [ -x "$(BENCH_BEFORE_BIN)" ]; then before="$(BENCH_BEFORE_BIN)"; fi; \
		BENCH_QUICK=$(BENCH_QUICK) BENCH_ONLY=$(BENCH_ONLY) BENCH_BEFORE_COLLECTOR="$$before" $(BENCH_TARGET_DIR)/release/bench
