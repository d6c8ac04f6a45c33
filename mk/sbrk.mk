# The classic sbrk allocator (src/classic/sbrk.c):
#   build/libmemkit-sbrk.so  preloadable: exports the malloc family (api.c over the mk__sbrk backend) and
#                            the A2 seed's mymalloc, mycalloc, myrealloc, myfree
#   build/libmemkit-sbrk.a   the same objects, for tests and tools that link it into an executable (which
#                            then runs on this allocator alone, like a preloaded program)
#   build/sbrk-picture       draws the heap after a workload as SVG (docs/img/sbrk-*.svg)
SBRK_API := -DMK_BACKEND=mk__sbrk -DMK_BACKEND_H='"classic/sbrk.h"'
# gcc 12 rejects api.c's __libc_ aliases (-Wmissing-attributes: the alias lacks malloc's attributes);
# clang has no such warning and no such option.  Probed once; to drop when api.c copies the attributes.
SBRK_NO_ALIAS_WARN := $(shell $(CC) -Werror -Wno-missing-attributes -E -x c /dev/null >/dev/null 2>&1 \
                        && echo -Wno-missing-attributes)
SBRK_OBJ := $(BUILD)/obj/src/classic/sbrk.o $(BUILD)/obj/sbrk-os.o \
            $(BUILD)/obj/sbrk-api-override.o $(BUILD)/obj/sbrk-api-my.o

# Our own copy of the OS layer's object: os.c needs _GNU_SOURCE for mremap (asked for in os.c itself).
$(BUILD)/obj/sbrk-os.o: src/os/os.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -D_GNU_SOURCE -c $< -o $@
$(BUILD)/obj/sbrk-api-override.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SBRK_API) -DMK_API_PREFIX= -DMK_API_OVERRIDE $(SBRK_NO_ALIAS_WARN) -c $< -o $@
$(BUILD)/obj/sbrk-api-my.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SBRK_API) -DMK_API_PREFIX=my -DMK_API_PREFIXED -c $< -o $@

$(BUILD)/libmemkit-sbrk.so: $(SBRK_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS) -Wl,-z,now -Wl,-soname,libmemkit-sbrk.so
$(BUILD)/libmemkit-sbrk.a: $(SBRK_OBJ)
	rm -f $@ && ar rcs $@ $^

SBRK_TESTS := $(BUILD)/tests/sbrk-unit $(BUILD)/tests/sbrk-threads
$(SBRK_TESTS): $(BUILD)/tests/sbrk-%: $(BUILD)/obj/tests/sbrk/%.o $(SBRK_OBJ)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sbrk-picture: $(BUILD)/obj/tools/sbrk-picture.o $(SBRK_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

ALL   += $(BUILD)/libmemkit-sbrk.so $(BUILD)/libmemkit-sbrk.a $(BUILD)/sbrk-picture
TESTS += $(SBRK_TESTS) tests/sbrk/real-programs.sh
