# The observability part (src/prof/, compiled into the engine's libraries: see ENGINE_SRC in mk/engine.mk):
#   build/tests/prof-sites   the profiler's estimates against known allocation sites (tests/prof/sites.c)
#   build/tests/prof-map     heap maps against mallinfo2 (tests/prof/map.c)
#   build/tests/prof-fork-mk the profiler across fork: dump thread in the child, a fork mid-sample
#                            (tests/prof/fork.c, on libmemkit-mk.a for the OS layer's named points)
#   build/tests/prof-reload  the stack walker across dlclose and dlopen of two plugins at one address
#                            (tests/prof/reload.c, the plugins from tests/prof/reload-lib.S)
#   build/tests/prof-tables  the stack walker on a plugin whose .eh_frame_hdr points out of the object
#                            (tests/prof/tables.c, the plugin from tests/prof/tables-lib.c)
#   tests/prof/prof.sh       end to end: google-pprof, the leak report, signals, the flame graph, Chromium
#   build/mkprof             reads a profile: top-N text and a flame graph SVG (tools/mkprof.c)
# Test programs link build/libmemkit.so (so malloc is memkit's) with -rdynamic (so sites have names).
PROF_TEST_FLAGS = $(TESTS_CFLAGS) -rdynamic
$(BUILD)/tests/prof-%: tests/prof/%.c tests/prof/profile.h $(BUILD)/libmemkit.so
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) -I. $(MK_CFLAGS) $(CFLAGS) $(PROF_TEST_FLAGS) $(LDFLAGS) -o $@ $< $(PROF_EXTRA) \
	    -L$(BUILD) -lmemkit -Wl,-rpath,'$$ORIGIN/..' $(MK_LDLIBS) $(LDLIBS) -lm
# The map test draws a region heap too (mkr_map).
$(BUILD)/tests/prof-map: PROF_EXTRA := $(BUILD)/libmemkit-region.a
$(BUILD)/tests/prof-map: $(BUILD)/libmemkit-region.a

$(BUILD)/tests/prof-fork-mk: tests/prof/fork.c tests/prof/profile.h $(BUILD)/libmemkit-mk.a
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) -I. $(MK_CFLAGS) $(CFLAGS) $(PROF_TEST_FLAGS) -DMK_TEST_PREFIXED $(LDFLAGS) -o $@ $< \
	    $(BUILD)/libmemkit-mk.a $(MK_LDLIBS) $(LDLIBS) -lm

# Two plugins from one source: the same code, frames of 1 MiB and of 24 bytes.
$(BUILD)/tests/prof-reload-a.so: FRAME := 0x100008
$(BUILD)/tests/prof-reload-b.so: FRAME := 0x18
$(BUILD)/tests/prof-reload-%.so: tests/prof/reload-lib.S
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DFRAME=$(FRAME) -shared -fPIC $(LDFLAGS) -o $@ $<
$(BUILD)/tests/prof-reload: $(BUILD)/tests/prof-reload-a.so $(BUILD)/tests/prof-reload-b.so

$(BUILD)/tests/prof-tables-lib.so: tests/prof/tables-lib.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(TESTS_CFLAGS) -shared -fPIC $(LDFLAGS) -o $@ $<
$(BUILD)/tests/prof-tables: $(BUILD)/tests/prof-tables-lib.so

$(BUILD)/mkprof: tools/mkprof.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -lm $(MK_LDLIBS) $(LDLIBS)

PROF_TESTS := $(BUILD)/tests/prof-sites $(BUILD)/tests/prof-map $(BUILD)/tests/prof-fork-mk $(BUILD)/tests/prof-reload \
              $(BUILD)/tests/prof-tables
tests/prof/prof.sh: $(PROF_TESTS) $(BUILD)/tests/prof-leak $(BUILD)/mkprof $(BUILD)/libmemkit.so $(BUILD)/tests/fuzz-plain
ALL += $(BUILD)/mkprof
TESTS += $(PROF_TESTS) tests/prof/prof.sh
