# classic: the seed allocators.
#  - lab (seed 001): build/lab/binarytrees-v0 .. -v4, one per LAB_VERSION; tests per version.
#    `make lab` builds and runs each once at depth LAB_DEPTH (default 10) and prints a line each;
#    `make lab-table` measures them into build/lab-table.md (a run of yours never touches the tree);
#    `make lab-table-update` rewrites the committed bench/results/lab-table.md the same way.
#  - slabfit (seed 002): build/libmem.so, build/mem-tester, tests.
CLASSIC_LAB_SRC := src/classic/mmap.c src/classic/bump.c src/classic/cells.c src/classic/lab_ref.c
CLASSIC_LAB_VERSIONS := 0 1 2 3 4
# Tests use small pools so that growing past the first pool is quick to reach.
CLASSIC_LAB_TEST_POOL := 65536

# $(call classic_lab_rules,N): objects, benchmark and test for LAB_VERSION=N.
define classic_lab_rules
$(BUILD)/obj/lab-v$(1)/%.o: %.c
	@mkdir -p $$(@D)
	$$(CC) $$(MK_CPPFLAGS) $$(CPPFLAGS) $$(MK_CFLAGS) $$(CFLAGS) -DLAB_VERSION=$(1) -c $$< -o $$@
$(BUILD)/obj/lab-test-v$(1)/%.o: %.c
	@mkdir -p $$(@D)
	$$(CC) $$(MK_CPPFLAGS) $$(CPPFLAGS) $$(MK_CFLAGS) $$(CFLAGS) -DLAB_VERSION=$(1) -DLAB_POOL_BYTES=$(CLASSIC_LAB_TEST_POOL) -c $$< -o $$@
CLASSIC_LAB_OBJ_$(1) := $$(CLASSIC_LAB_SRC:%.c=$(BUILD)/obj/lab-v$(1)/%.o) \
	$$(if $$(filter 4,$(1)),$(BUILD)/libmemkit-mk.a,$(BUILD)/obj/src/os/os.o)
CLASSIC_LAB_TOBJ_$(1) := $$(CLASSIC_LAB_SRC:%.c=$(BUILD)/obj/lab-test-v$(1)/%.o) \
	$$(if $$(filter 4,$(1)),$(BUILD)/libmemkit-mk.a,$(BUILD)/obj/src/os/os.o)
$(BUILD)/lab/binarytrees-v$(1): $(BUILD)/obj/lab-v$(1)/bench/lab/binarytrees.o $$(CLASSIC_LAB_OBJ_$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(MK_CFLAGS) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$(MK_LDLIBS) $$(LDLIBS)
$(BUILD)/tests/classic-lab-v$(1): $(BUILD)/obj/lab-test-v$(1)/tests/classic/lab-test.o $$(CLASSIC_LAB_TOBJ_$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(MK_CFLAGS) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$(MK_LDLIBS) $$(LDLIBS)
endef
$(foreach v,$(CLASSIC_LAB_VERSIONS),$(eval $(call classic_lab_rules,$(v))))

CLASSIC_LAB_BINS := $(CLASSIC_LAB_VERSIONS:%=$(BUILD)/lab/binarytrees-v%)
CLASSIC_LAB_TESTS := $(CLASSIC_LAB_VERSIONS:%=$(BUILD)/tests/classic-lab-v%)

.PHONY: lab lab-table lab-table-update
LAB_DEPTH ?= 10
lab: $(CLASSIC_LAB_BINS) $(BUILD)/bench/measure
	@python3 bench/lab/table.py --once --depth $(LAB_DEPTH)
lab-table: $(CLASSIC_LAB_BINS) $(BUILD)/bench/measure
	python3 bench/lab/table.py --out $(BUILD)/lab-table.md $(LAB_TABLE_ARGS)
lab-table-update: $(CLASSIC_LAB_BINS) $(BUILD)/bench/measure
	python3 bench/lab/table.py --out bench/results/lab-table.md --target lab-table-update $(LAB_TABLE_ARGS)

# slabfit: the P3A heap as a shared object, its tester and its unit test.
CLASSIC_MEM_OBJ := $(BUILD)/obj/src/classic/slabfit.o $(BUILD)/obj/src/os/os.o
$(BUILD)/libmem.so: $(CLASSIC_MEM_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS) -Wl,-soname,libmem.so
$(BUILD)/mem-tester: $(BUILD)/obj/tests/classic/mem-tester.o $(BUILD)/obj/tools/heapsvg.o $(BUILD)/libmem.so
	$(CC) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) -L$(BUILD) -lmem -Wl,-rpath,'$$ORIGIN' $(MK_LDLIBS) $(LDLIBS)
$(BUILD)/tests/classic-slabfit: $(BUILD)/obj/tests/classic/slabfit-test.o $(CLASSIC_MEM_OBJ)
	@mkdir -p $(@D)
	$(CC) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS)

ALL += $(CLASSIC_LAB_BINS) $(BUILD)/libmem.so $(BUILD)/mem-tester
TESTS += $(CLASSIC_LAB_TESTS) $(BUILD)/tests/classic-slabfit tests/classic/mem-tester.sh tests/classic/lab-binarytrees.sh

# The same fragmenting workload through slabfit's next fit and the sbrk allocator's first fit.
$(BUILD)/tests/classic-fragment-compare: $(BUILD)/obj/tests/classic/fragment-compare.o $(BUILD)/obj/tools/heapsvg.o \
		$(BUILD)/obj/src/classic/slabfit.o $(BUILD)/libmemkit-sbrk.a
	@mkdir -p $(@D)
	$(CC) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS)
TESTS += $(BUILD)/tests/classic-fragment-compare
