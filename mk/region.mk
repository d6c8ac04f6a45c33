# Region heaps: build/libmemkit-region.so and .a (src/region + the OS layer), their tests and the
# producer/consumer example.
REGION_SRC := $(sort $(wildcard src/region/*.c)) src/os/os.c
REGION_OBJ := $(REGION_SRC:%.c=$(BUILD)/obj/region/%.o)
REGION_TESTS_C := $(sort $(wildcard tests/region/*.c))
REGION_TEST_BIN := $(REGION_TESTS_C:tests/region/%.c=$(BUILD)/tests/region-%)
REGION_EXAMPLES := $(BUILD)/examples/region-producer $(BUILD)/examples/region-consumer \
                   $(BUILD)/examples/region-timing

# Own object directory: os.c is built here with the library's flags, apart from the engine's copy.
$(BUILD)/obj/region/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) -c $< -o $@

# Versioned like libmemkit.so: the file libmemkit-region.so.VERSION, the soname and development links.
$(BUILD)/libmemkit-region.so.$(VERSION): $(REGION_OBJ) src/region/exports.map
	$(CC) -shared $(LDFLAGS) -o $@ $(REGION_OBJ) $(MK_LDLIBS) $(LDLIBS) -Wl,-soname,libmemkit-region.so.$(VERSION_MAJOR) \
	    -Wl,--version-script=src/region/exports.map
$(eval $(call mk_shared_links,$(BUILD)/libmemkit-region.so))
$(BUILD)/libmemkit-region.a: $(REGION_OBJ)
	rm -f $@ && ar rcs $@ $^

# Tests link the static library: they reach the test hook and the OS layer's fault injection.  Their
# dependency files go under obj/, so that build/tests/region-* holds only programs.
REGION_DEP = -MF $(BUILD)/obj/region/tests/$(@F).d
$(BUILD)/tests/region-%: tests/region/%.c $(BUILD)/libmemkit-region.a tests/common/test.h
	@mkdir -p $(@D) $(BUILD)/obj/region/tests
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) -Itests $(MK_CFLAGS) $(CFLAGS) $(REGION_DEP) $(LDFLAGS) -o $@ $< $(BUILD)/libmemkit-region.a $(MK_LDLIBS) $(LDLIBS)

# The persistence test once more, linked to the shared library: proves the .so exports what programs need.
$(BUILD)/tests/region-persist-so: tests/region/persist.c $(BUILD)/libmemkit-region.so tests/common/test.h
	@mkdir -p $(@D) $(BUILD)/obj/region/tests
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) -Itests $(MK_CFLAGS) $(CFLAGS) $(REGION_DEP) $(LDFLAGS) -o $@ $< -L$(BUILD) -lmemkit-region -Wl,-rpath,'$$ORIGIN/..' $(MK_LDLIBS) $(LDLIBS)
REGION_TEST_BIN += $(BUILD)/tests/region-persist-so

$(BUILD)/examples/region-%: examples/region-%.c $(BUILD)/libmemkit-region.a
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmemkit-region.a $(MK_LDLIBS) $(LDLIBS)

region: $(BUILD)/libmemkit-region.so $(BUILD)/libmemkit-region.a $(REGION_EXAMPLES) $(REGION_TEST_BIN)
.PHONY: region

ALL += $(BUILD)/libmemkit-region.so $(BUILD)/libmemkit-region.a $(REGION_EXAMPLES)
TESTS += $(REGION_TEST_BIN) tests/region/demo.sh
