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

# The profiling build: build/libmemkit-prof.so, the engine's sources compiled with -DMK_PROF_COUNT=1 in
# their own tree (build/profbuild/obj/): its inlined malloc counts bytes down to the next sample point
# (3 instructions more than libmemkit.so's), so that MEMKIT_PROF=1 samples without the proxies' delayed
# reuse (docs/profiling.md, "two builds").  build/profbuild/libmemkit.so.MAJOR links to it, so that a
# program linked with -lmemkit runs on it with LD_LIBRARY_PATH=build/profbuild (the tests do).
PROFB_DIR := $(BUILD)/profbuild/obj
PROFB_OBJ := $(ENGINE_SRC:%.c=$(PROFB_DIR)/%.o) $(PROFB_DIR)/api-override.o $(PROFB_DIR)/api-mk.o \
             $(PROFB_DIR)/cxx-override.o $(BUILD)/obj/cxx-runtime.o
$(PROFB_DIR)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) -DMK_PROF_COUNT=1 -c $< -o $@
$(PROFB_DIR)/api-override.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) -DMK_PROF_COUNT=1 $(API_ENGINE) -DMK_API_PREFIX= -DMK_API_OVERRIDE -c $< -o $@
$(PROFB_DIR)/api-mk.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) -DMK_PROF_COUNT=1 $(API_ENGINE) -DMK_API_PREFIX=mk_ -DMK_API_PREFIXED -c $< -o $@
$(PROFB_DIR)/cxx-override.o: src/override/cxx.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(CXX_OVERRIDE_CFLAGS) -DMK_PROF_COUNT=1 $(API_ENGINE) -c $< -o $@
$(BUILD)/libmemkit-prof.so.$(VERSION): $(PROFB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS) -Wl,-z,now -Wl,-soname,libmemkit-prof.so.$(VERSION_MAJOR)
$(eval $(call mk_shared_links,$(BUILD)/libmemkit-prof.so))
$(BUILD)/profbuild/libmemkit.so.$(VERSION_MAJOR): $(BUILD)/libmemkit-prof.so.$(VERSION)
	@mkdir -p $(@D)
	ln -sf ../$(<F) $@
ALL += $(BUILD)/libmemkit-prof.so $(BUILD)/profbuild/libmemkit.so.$(VERSION_MAJOR)

PROF_TESTS := $(BUILD)/tests/prof-sites $(BUILD)/tests/prof-map $(BUILD)/tests/prof-fork-mk $(BUILD)/tests/prof-reload \
              $(BUILD)/tests/prof-tables
tests/prof/prof.sh: $(PROF_TESTS) $(BUILD)/tests/prof-leak $(BUILD)/mkprof $(BUILD)/libmemkit.so $(BUILD)/tests/fuzz-plain
tests/prof/prof-build.sh: $(PROF_TESTS) $(BUILD)/tests/prof-leak $(BUILD)/mkprof $(BUILD)/libmemkit-prof.so \
	$(BUILD)/profbuild/libmemkit.so.$(VERSION_MAJOR) $(BUILD)/tests/fuzz-plain
ALL += $(BUILD)/mkprof
TESTS += $(PROF_TESTS) tests/prof/prof.sh tests/prof/prof-build.sh
