# `make bench`: the collector's figures, measured on local services and written to BENCHMARKS.md.
# Included from the top Makefile (which provides `venv`); bench/src/main.rs says what is measured
# and how. About ten minutes after the build; BENCH_QUICK=1 makes every backlog ten times smaller.

CARGO ?= cargo
BENCH_QUICK ?=
# The collector is built alone, as cargo-lambda builds it for deployment: built together with the
# simulator and testkit, its dependencies get their features too (the binary is 0.7 MB larger).
# The bench then runs straight from the target directory.
BENCH_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

.PHONY: bench

bench: venv ## Measure memory, CPU, start-up, requests, wall time, binary size and cost; write BENCHMARKS.md (BENCH_QUICK=1: 10x smaller)
	$(CARGO) build --release --locked -p anthropic-compliance-collector --bin anthropic-compliance-collector --bin anthropic-compliance-detector
	$(CARGO) build --release --locked -p compliance-sim -p bench --bin compliance-sim --bin bench
	BENCH_QUICK=$(BENCH_QUICK) $(BENCH_TARGET_DIR)/release/bench
