# Options and statistics (src/engine/options.c, stats.c): the generator of their docs and man entries,
# and their tests.
$(BUILD)/options-doc: $(BUILD)/obj/tests/options/options-doc.o $(BUILD)/libmemkit-mk.a
	$(CC) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS)

# The ENVIRONMENT entries of memkit(3): the page has a line @OPTIONS@ that this file replaces.
$(BUILD)/man/options.man: $(BUILD)/options-doc
	@mkdir -p $(@D)
	$< man >$@

# Rewrites the docs generated from the tables (tests/options/ and tests/stats/ fail while they are stale):
# docs/options.md whole, docs/stats.md between its "counters" markers.
docs: $(BUILD)/options-doc
	$< markdown >docs/options.md
	{ sed '/<!-- counters -->/q' docs/stats.md; $< stats; sed -n '/<!-- \/counters -->/,$$p' docs/stats.md; } >$(BUILD)/stats.md
	mv $(BUILD)/stats.md docs/stats.md
.PHONY: docs

# The tests (the flags are tests.mk's, read when the recipes run).
$(BUILD)/tests/options-mk: tests/options/options.c $(BUILD)/libmemkit-mk.a
$(BUILD)/tests/stats-mk: tests/stats/stats.c $(BUILD)/libmemkit-mk.a
$(BUILD)/tests/options-mk $(BUILD)/tests/stats-mk:
	@mkdir -p $(@D)
	$(CC) $(TESTS_CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(TESTS_CFLAGS) -DMK_TEST_PREFIXED $< $(BUILD)/libmemkit-mk.a $(LDFLAGS) -o $@ $(TESTS_LDLIBS)
# malloc_info and the rest of glibc's malloc.h, linked -static against libmemkit.a.
$(BUILD)/tests/stats-static: tests/stats/static-malloc-h.c $(BUILD)/libmemkit.a
	@mkdir -p $(@D)
	$(CC) $(TESTS_CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(TESTS_CFLAGS) -static $< $(BUILD)/libmemkit.a $(LDFLAGS) -o $@ $(MK_LDLIBS) $(LDLIBS)
tests/options/preload.sh: $(BUILD)/libmemkit.so $(BUILD)/man/options.man

TESTS += $(BUILD)/tests/options-mk $(BUILD)/tests/stats-mk $(BUILD)/tests/stats-static tests/options/preload.sh
