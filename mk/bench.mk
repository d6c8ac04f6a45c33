# bench: the workloads (bench/workloads/*.c, one program each, plain malloc/free so any allocator can be
# preloaded), the runner (bench/run.py) and its smoke test.  `make bench` runs the quick profile,
# `make bench PROFILE=full` the full one, `make bench-instr` the callgrind instruction counts alone.
BENCH_NAMES := $(basename $(notdir $(wildcard bench/workloads/*.c)))
BENCH_BINS  := $(BENCH_NAMES:%=$(BUILD)/bench/%)
PROFILE     ?= quick
BENCH_ARGS  ?=

# Workloads are built without -fPIC's cost in mind but with the project's flags; -lm for Pareto and exp2.
$(BUILD)/bench/%: $(BUILD)/obj/bench/workloads/%.o
	@mkdir -p $(@D)
	$(CC) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(MK_LDLIBS) $(LDLIBS) -lm

bench-workloads: $(BENCH_BINS)
.SECONDARY: $(BENCH_NAMES:%=$(BUILD)/obj/bench/workloads/%.o)

# What the runner compares besides the peers, built when its rule exists (the engine, the classic sbrk
# allocator, the lab binary-trees): a part that does not build yet is left out of the run, not fatal.
BENCH_OPTIONAL := $(BUILD)/libmemkit.so $(BUILD)/libmemkit-prof.so $(BUILD)/libmemkit-secure.so $(BUILD)/libmemkit-sbrk.so \
                  $(foreach v,0 1 2 3 4,$(BUILD)/lab/binarytrees-v$(v))

bench: bench-workloads
	@tools/deps.sh bench/packages
	@for t in $(BENCH_OPTIONAL); do $(MAKE) --no-print-directory -s $$t >/dev/null 2>&1 || echo "bench: $$t does not build here; left out"; done
	python3 bench/run.py --profile $(PROFILE) $(BENCH_ARGS)

bench-instr: bench-workloads
	@tools/deps.sh bench/packages
	@for t in $(BENCH_OPTIONAL); do $(MAKE) --no-print-directory -s $$t >/dev/null 2>&1 || true; done
	python3 bench/run.py --profile $(PROFILE) --only instr $(BENCH_ARGS)

.PHONY: bench-workloads bench-instr
TESTS += tests/bench/smoke.sh

# The launcher that measures each run (see the comment at its top).
$(BUILD)/bench/measure: bench/tools/measure.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<
bench-workloads: $(BUILD)/bench/measure
