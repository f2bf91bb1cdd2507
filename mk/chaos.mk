# The chaos test on its own (tests/chaos.rs): seeded fault schedules over the simulator and moto,
# each checked for loss and duplicates. `make test` runs it too, with the defaults.
#
#   make chaos                      # the default 200 schedules
#   make chaos SEED=12886171 RUNS=1 # replay the schedule a failure printed
#   make chaos SEED=1000 RUNS=1000  # explore further
#
# CHAOS_PARALLEL (default 32) bounds the schedules in flight; CHAOS_VERBOSE=1 prints each one
# with its steps and outcomes. A replay meets the same faults in the same order; its timing is
# real, so a schedule with two invocations at once may not race the same way twice.

SEED ?=
RUNS ?=

.PHONY: chaos

chaos: venv ## Run the chaos test: make chaos [SEED=n] [RUNS=n] replays or extends seeded fault schedules
	CHAOS_SEED=$(SEED) CHAOS_RUNS=$(RUNS) $(CARGO) test --locked --test tests chaos -- --nocapture
