# Unit tests of the engine's internals (they include src/engine headers and link the prefixed archive).
UNIT_TESTS := $(BUILD)/tests/engine-unit
$(BUILD)/tests/engine-unit: $(BUILD)/obj/tests/unit/engine_unit.o $(BUILD)/libmemkit-mk.a
	@mkdir -p $(@D)
	$(CC) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS)
TESTS += $(UNIT_TESTS)

# segment.c's indexes (src/engine/runs.h) and the large-block cache.
$(BUILD)/tests/runs-unit: $(BUILD)/obj/tests/unit/runs_unit.o $(BUILD)/libmemkit-mk.a
	@mkdir -p $(@D)
	$(CC) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS)
TESTS += $(BUILD)/tests/runs-unit
