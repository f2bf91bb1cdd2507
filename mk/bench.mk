# `make bench`: the collector's figures, measured on local services and written to BENCHMARKS.md.
# Included from the top Makefile (which provides `venv`); bench/src/main.rs says what is measured
# and how. It takes about a quarter of an hour; BENCH_QUICK=1 makes every backlog ten times smaller.

CARGO ?= cargo
BENCH_QUICK ?=

.PHONY: bench

bench: venv ## Measure memory, CPU, start-up, requests, wall time, binary size and cost; write BENCHMARKS.md (BENCH_QUICK=1: 10x smaller)
	$(CARGO) build --release --locked --workspace --bin anthropic-compliance-collector --bin compliance-sim --bin bench
	BENCH_QUICK=$(BENCH_QUICK) $(CARGO) run --release --locked --quiet -p bench
