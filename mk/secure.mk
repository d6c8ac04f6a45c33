# Hardening (docs/hardening.md): the misuse suite, tests/misuse/ (programs, runner, expected catches).
#   make misuse        the table of caught cases for glibc, memkit, memkit-secure and the peers present
#   make misuse-doc    the same, written into docs/hardening.md (never by make test)
MISUSE_PROGS := overflow free uaf zero cxx
MISUSE_BINS  := $(MISUSE_PROGS:%=$(BUILD)/tests/misuse/%)
# The programs misuse the heap on purpose: gcc's warnings about exactly that are off, and -fno-builtin keeps
# every malloc, free and memcpy a real call.
MISUSE_CFLAGS := -fno-builtin -Wno-use-after-free -Wno-free-nonheap-object -Wno-alloc-size-larger-than \
                 -Wno-array-bounds -Wno-stringop-overflow
CXX ?= g++

$(BUILD)/tests/misuse/%: tests/misuse/%.c tests/misuse/misuse.h
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) -I. $(CPPFLAGS) $(MK_CFLAGS) $(MISUSE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<
$(BUILD)/tests/misuse/cxx: tests/misuse/cxx.cc tests/misuse/misuse.h
	@mkdir -p $(@D)
	$(CXX) -std=gnu++17 -I. $(CPPFLAGS) $(OPT) -g -Wall -Wextra $(MK_WERROR) $(MISUSE_CFLAGS) -fsized-deallocation \
	    -Wno-mismatched-new-delete $(CXXFLAGS) $(LDFLAGS) -o $@ $<

# The measures one by one (tests/misuse/hardening.sh runs it under both builds).
$(BUILD)/tests/misuse/hardening: tests/misuse/hardening.c tests/common/test.h tests/contract/abort.h
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) -I. $(CPPFLAGS) $(MK_CFLAGS) $(MISUSE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -ldl

misuse-bins: $(MISUSE_BINS)
misuse: $(MISUSE_BINS) $(BUILD)/libmemkit.so $(BUILD)/libmemkit-secure.so
	python3 tests/misuse/misuse.py --runs 5
misuse-doc: $(MISUSE_BINS) $(BUILD)/libmemkit.so $(BUILD)/libmemkit-secure.so
	python3 tests/misuse/misuse.py --runs 5 --doc docs/hardening.md
.PHONY: misuse misuse-doc misuse-bins

# The secure build: build/libmemkit-secure.so, the same sources as libmemkit.so compiled with -DMK_SECURE=1
# in their own tree (build/secure/obj/), api.c over the secure backend (src/engine/secure.c: header, canary,
# quarantine, zero-on-free) and the checked memcpy family (src/override/checked.c).
SECURE_DIR := $(BUILD)/secure/obj
SECURE_ENGINE_OBJ := $(ENGINE_SRC:%.c=$(SECURE_DIR)/%.o) $(SECURE_DIR)/src/override/checked.o
API_SECURE := -DMK_BACKEND=mk__secure -DMK_BACKEND_H='"engine/secure.h"'
# -fno-builtin: gcc would turn the __*_chk calls given no bound back into memcpy & co, that is into calls
# of the checked functions themselves.
$(SECURE_DIR)/src/override/checked.o $(SECURE_DIR)/src/engine/secure.o: MK_CFLAGS += -fno-builtin
$(SECURE_DIR)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) -DMK_SECURE=1 -c $< -o $@
$(SECURE_DIR)/api-override.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) -DMK_SECURE=1 $(API_SECURE) -DMK_API_PREFIX= -DMK_API_OVERRIDE -c $< -o $@
$(SECURE_DIR)/api-mk.o: src/override/api.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) -DMK_SECURE=1 $(API_SECURE) -DMK_API_PREFIX=mk_ -DMK_API_PREFIXED -c $< -o $@
# The C++ operators over the secure backend: every new and delete records and checks its kind (kind.h).
$(SECURE_DIR)/cxx-override.o: src/override/cxx.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(CXX_OVERRIDE_CFLAGS) -DMK_SECURE=1 $(API_SECURE) -c $< -o $@
SECURE_OBJ := $(SECURE_ENGINE_OBJ) $(SECURE_DIR)/api-override.o $(SECURE_DIR)/api-mk.o $(SECURE_DIR)/cxx-override.o \
              $(BUILD)/obj/cxx-runtime.o
# Versioned like libmemkit.so: the file is libmemkit-secure.so.VERSION, the other two names links to it.
$(BUILD)/libmemkit-secure.so.$(VERSION): $(SECURE_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS) -Wl,-z,now -Wl,-soname,libmemkit-secure.so.$(VERSION_MAJOR)
$(eval $(call mk_shared_links,$(BUILD)/libmemkit-secure.so))
ALL += $(BUILD)/libmemkit-secure.so

# In make test: the suite's floors and expected catches, and the secure build under the preload tests.
tests/misuse/misuse-check.sh: $(MISUSE_BINS) $(BUILD)/libmemkit.so $(BUILD)/libmemkit-secure.so
tests/misuse/secure-preload.sh: $(BUILD)/libmemkit-secure.so $(BUILD)/libmemkit.so $(BUILD)/memkit \
	$(BUILD)/tests/contract-plain $(BUILD)/tests/stress-plain $(BUILD)/tests/fuzz-plain \
	$(BUILD)/tests/cxx-plain $(BUILD)/tests/cxx-plugin.so $(BUILD)/tests/cxx-dlopen-host
tests/misuse/hardening.sh: $(BUILD)/tests/misuse/hardening $(BUILD)/libmemkit.so $(BUILD)/libmemkit-secure.so
TESTS += tests/misuse/hardening.sh tests/misuse/misuse-check.sh tests/misuse/secure-preload.sh
