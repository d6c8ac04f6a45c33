# The engine: build/libmemkit.so (preloadable, exports the malloc family and the mk_ API),
# build/libmemkit.a (the same, for static linking) and build/libmemkit-mk.a (mk_ names only: no
# interposition, the build that runs under sanitizers and in unit tests).
ENGINE_SRC := $(sort $(wildcard src/engine/*.c)) src/os/os.c
ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
# -fno-semantic-interposition: calls between exported functions (aligned allocation with a small
# alignment is malloc, realloc(NULL) is malloc) go straight to our own definition, not through the PLT.
ENGINE_CFLAGS := -fvisibility=hidden -ftls-model=initial-exec -fno-semantic-interposition
$(ENGINE_OBJ): MK_CFLAGS += $(ENGINE_CFLAGS)

API_ENGINE := -DMK_BACKEND=mk__engine -DMK_BACKEND_H='"engine/engine.h"'
$(BUILD)/obj/api-override.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) $(API_ENGINE) -DMK_API_PREFIX= -DMK_API_OVERRIDE -c $< -o $@
$(BUILD)/obj/api-mk.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) $(API_ENGINE) -DMK_API_PREFIX=mk_ -DMK_API_PREFIXED -c $< -o $@

# The C++ operators (mk/cxx.mk builds them; libmemkit.a has its own build of cxx-runtime.o).
LIBMEMKIT_CXX_OBJ := $(BUILD)/obj/cxx-override.o $(BUILD)/obj/cxx-runtime.o
LIBMEMKIT_OBJ := $(ENGINE_OBJ) $(BUILD)/obj/api-override.o $(BUILD)/obj/api-mk.o $(LIBMEMKIT_CXX_OBJ)

# The file is libmemkit.so.VERSION; build/libmemkit.so (what tests, the wrapper and LD_PRELOAD use) and
# the soname libmemkit.so.MAJOR are links to it (Makefile's mk_shared_links).
$(BUILD)/libmemkit.so.$(VERSION): $(LIBMEMKIT_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS) -Wl,-z,now -Wl,-soname,libmemkit.so.$(VERSION_MAJOR)
$(eval $(call mk_shared_links,$(BUILD)/libmemkit.so))
$(BUILD)/libmemkit.a: $(LIBMEMKIT_OBJ:cxx-runtime.o=cxx-runtime-static.o)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libmemkit-mk.a: $(ENGINE_OBJ) $(BUILD)/obj/api-mk.o
	rm -f $@ && ar rcs $@ $^

# The wrapper: no LIBDIR here, so it uses the libraries beside it (tools/memkit.in).
$(BUILD)/memkit: tools/memkit.in include/memkit.h
	@mkdir -p $(@D)
	sed -e 's|@LIBDIR@||' -e 's|@PRELOADDIR@||' -e 's|@VERSION@|$(VERSION)|' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|' $< >$@ && chmod +x $@

# The same library without the fast free's double-free and interior-pointer checks: only to measure
# what they cost (make bench-instr reports both).  Not for use.
NOCHECKS_SRC := $(ENGINE_SRC) src/override/api.c
$(BUILD)/libmemkit-nochecks.so: $(NOCHECKS_SRC) $(wildcard src/engine/*.h)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) -DMK_FREE_CHECKS=0 $(API_ENGINE) -DMK_API_PREFIX= -DMK_API_OVERRIDE \
	    -shared $(LDFLAGS) -o $@ $(NOCHECKS_SRC) $(MK_LDLIBS) $(LDLIBS) -Wl,-z,now

ALL += $(BUILD)/libmemkit.so $(BUILD)/libmemkit.a $(BUILD)/libmemkit-mk.a $(BUILD)/memkit
