# The classic sbrk allocator (src/classic/sbrk.c):
#   build/libmemkit-sbrk.so  preloadable: exports the malloc family (api.c over the mk__sbrk backend) and
#                            the A2 seed's mymalloc, mycalloc, myrealloc, myfree
#   build/libmemkit-sbrk.a   the same objects, for tests and tools that link it into an executable (which
#                            then runs on this allocator alone, like a preloaded program)
#   build/sbrk-picture       draws the heap after a workload as SVG (docs/img/sbrk-*.svg)
SBRK_API := -DMK_BACKEND=mk__sbrk -DMK_BACKEND_H='"classic/sbrk.h"'
SBRK_OBJ := $(BUILD)/obj/src/classic/sbrk.o $(BUILD)/obj/src/os/os.o \
            $(BUILD)/obj/sbrk-api-override.o $(BUILD)/obj/sbrk-api-my.o

$(BUILD)/obj/sbrk-api-override.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(SBRK_API) -DMK_API_PREFIX= -DMK_API_OVERRIDE -c $< -o $@
$(BUILD)/obj/sbrk-api-my.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(SBRK_API) -DMK_API_PREFIX=my -DMK_API_PREFIXED -c $< -o $@

$(BUILD)/libmemkit-sbrk.so: $(SBRK_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS) -Wl,-z,now -Wl,-soname,libmemkit-sbrk.so
$(BUILD)/libmemkit-sbrk.a: $(SBRK_OBJ)
	rm -f $@ && ar rcs $@ $^

SBRK_TESTS := $(BUILD)/tests/sbrk-unit $(BUILD)/tests/sbrk-threads
$(SBRK_TESTS): $(BUILD)/tests/sbrk-%: $(BUILD)/obj/tests/sbrk/%.o $(SBRK_OBJ)
	@mkdir -p $(@D)
	$(CC) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS)

$(BUILD)/sbrk-picture: $(BUILD)/obj/tools/sbrk-picture.o $(SBRK_OBJ)
	$(CC) $(MK_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS)

ALL   += $(BUILD)/libmemkit-sbrk.so $(BUILD)/libmemkit-sbrk.a $(BUILD)/sbrk-picture
TESTS += $(SBRK_TESTS) tests/sbrk/real-programs.sh
