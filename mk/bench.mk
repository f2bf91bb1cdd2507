# `make bench`: the collector's figures, measured on local services and written to BENCHMARKS.md.
# Included from the top Makefile (which provides `venv`); bench/src/main.rs says what is measured
# and how. About ten minutes after the build; BENCH_QUICK=1 makes every backlog ten times smaller.

CARGO ?= cargo
BENCH_QUICK ?=
# One build of the three binaries, run straight from the target directory: `cargo run -p bench`
# would resolve features for bench alone and compile the AWS SDKs a second time.
BENCH_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

.PHONY: bench

bench: venv ## Measure memory, CPU, start-up, requests, wall time, binary size and cost; write BENCHMARKS.md (BENCH_QUICK=1: 10x smaller)
	$(CARGO) build --release --locked --workspace --bin anthropic-compliance-collector --bin compliance-sim --bin bench
	BENCH_QUICK=$(BENCH_QUICK) $(BENCH_TARGET_DIR)/release/bench
