# The engine's tests: contract, stress, exhaustion, real programs, sanitizers, static linking.
#
# Contract and stress sources build twice: "-mk" links build/libmemkit-mk.a and calls the mk_ names,
# "-plain" calls malloc & co and runs under LD_PRELOAD=build/libmemkit.so (tests/*/*-preload.sh).
# Test programs never let the compiler reason about malloc (-fno-builtin), and they do on purpose what
# gcc's allocation warnings are about (huge sizes, use after a failed realloc, freeing a static array).
TESTS_CFLAGS := -fno-builtin -Wno-alloc-size-larger-than -Wno-use-after-free -Wno-free-nonheap-object
TESTS_CPPFLAGS := $(MK_CPPFLAGS) $(CPPFLAGS) -I.
TESTS_LDLIBS := $(MK_LDLIBS) -ldl $(LDLIBS)
TESTS_DIR := $(BUILD)/tests

# $(1) = program name, $(2) = source.
define TESTS_MK_BUILD
$(TESTS_DIR)/$(1)-mk: $(2) $(BUILD)/libmemkit-mk.a
	@mkdir -p $$(@D)
	$$(CC) $$(TESTS_CPPFLAGS) $$(MK_CFLAGS) $$(CFLAGS) $$(TESTS_CFLAGS) -DMK_TEST_PREFIXED $$< $(BUILD)/libmemkit-mk.a $$(LDFLAGS) -o $$@ $$(TESTS_LDLIBS)
endef
define TESTS_PLAIN_BUILD
$(TESTS_DIR)/$(1)-plain: $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(TESTS_CPPFLAGS) $$(MK_CFLAGS) $$(CFLAGS) $$(TESTS_CFLAGS) $$< $$(LDFLAGS) -o $$@ $$(TESTS_LDLIBS)
endef
$(eval $(call TESTS_MK_BUILD,contract,tests/contract/contract.c))
$(eval $(call TESTS_PLAIN_BUILD,contract,tests/contract/contract.c))
$(eval $(call TESTS_MK_BUILD,stress,tests/stress/stress.c))
$(eval $(call TESTS_PLAIN_BUILD,stress,tests/stress/stress.c))
$(eval $(call TESTS_MK_BUILD,fault,tests/fault/fault.c))
$(eval $(call TESTS_PLAIN_BUILD,rlimit,tests/fault/rlimit.c))

# Fully static: libmemkit.a must replace libc.a's malloc without a clash.
$(TESTS_DIR)/static-memkit: tests/static/static.c $(BUILD)/libmemkit.a
	@mkdir -p $(@D)
	$(CC) $(TESTS_CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(TESTS_CFLAGS) -static $< $(BUILD)/libmemkit.a $(LDFLAGS) -o $@ $(MK_LDLIBS) $(LDLIBS)

# Sanitizer builds: the engine and the prefixed API compiled exactly as mk/engine.mk does for
# libmemkit-mk.a, plus the sanitizer (and -O1), each in its own tree build/<name>/.
# $(1) = name, $(2) = flags for compiling and linking, $(3) = extra flags for the test programs.
define TESTS_SANITIZED
TESTS_$(1)_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/$(1)/obj/%.o) $(BUILD)/$(1)/obj/api-mk.o
$(BUILD)/$(1)/obj/%.o: %.c
	@mkdir -p $$(@D)
	$$(CC) $$(MK_CPPFLAGS) $$(CPPFLAGS) $$(MK_CFLAGS) $$(CFLAGS) $$(ENGINE_CFLAGS) $(2) -c $$< -o $$@
$(BUILD)/$(1)/obj/api-mk.o: src/override/api.c
	@mkdir -p $$(@D)
	$$(CC) $$(MK_CPPFLAGS) $$(CPPFLAGS) $$(MK_CFLAGS) $$(CFLAGS) $$(ENGINE_CFLAGS) $$(API_ENGINE) -DMK_API_PREFIX=mk_ -DMK_API_PREFIXED $(2) -c $$< -o $$@
$(BUILD)/$(1)/libmemkit-mk.a: $$(TESTS_$(1)_OBJ)
	rm -f $$@ && ar rcs $$@ $$^
# Under ASan and UBSan the test programs are instrumented too ($(3)): the engine poisons free blocks for
# ASan, so a test's write into a freed block is caught where it happens.  Under TSan they only link with
# its runtime: instrumented byte loops over 100 MiB blocks would take most of a minute.
$(BUILD)/$(1)/tests/contract.o: tests/contract/contract.c
	@mkdir -p $$(@D)
	$$(CC) $$(TESTS_CPPFLAGS) $$(MK_CFLAGS) $$(CFLAGS) $$(TESTS_CFLAGS) -DMK_TEST_PREFIXED -DMK_TEST_SANITIZE $(3) -c $$< -o $$@
$(BUILD)/$(1)/tests/stress.o: tests/stress/stress.c
	@mkdir -p $$(@D)
	$$(CC) $$(TESTS_CPPFLAGS) $$(MK_CFLAGS) $$(CFLAGS) $$(TESTS_CFLAGS) -DMK_TEST_PREFIXED -DMK_TEST_SANITIZE $(3) -c $$< -o $$@
$(BUILD)/$(1)/tests/regress.o: tests/regress/regress.c
	@mkdir -p $$(@D)
	$$(CC) $$(TESTS_CPPFLAGS) $$(MK_CFLAGS) $$(CFLAGS) $$(TESTS_CFLAGS) -DMK_TEST_PREFIXED -DMK_TEST_SANITIZE $(3) -c $$< -o $$@
$(BUILD)/$(1)/tests/%: $(BUILD)/$(1)/tests/%.o $(BUILD)/$(1)/libmemkit-mk.a
	$$(CC) $(2) $$^ $$(LDFLAGS) -o $$@ $$(TESTS_LDLIBS)
TESTS_SANITIZED_PROGRAMS += $(BUILD)/$(1)/tests/contract $(BUILD)/$(1)/tests/stress
endef
TESTS_SAN_COMMON := -O1 -fno-omit-frame-pointer
$(eval $(call TESTS_SANITIZED,asan,$(TESTS_SAN_COMMON) -fsanitize=address,$(TESTS_SAN_COMMON) -fsanitize=address))
$(eval $(call TESTS_SANITIZED,ubsan,$(TESTS_SAN_COMMON) -fsanitize=undefined -fno-sanitize-recover=all,$(TESTS_SAN_COMMON) -fsanitize=undefined -fno-sanitize-recover=all))
# The regression tests fork around threads on purpose: ASan and UBSan only.
TESTS_SANITIZED_PROGRAMS += $(BUILD)/asan/tests/regress $(BUILD)/ubsan/tests/regress
$(eval $(call TESTS_SANITIZED,tsan,$(TESTS_SAN_COMMON) -fsanitize=thread,-DMK_TEST_NO_FORK))

# Scripts are tests too; these rules only make sure what they run is built first.
tests/contract/contract-preload.sh: $(TESTS_DIR)/contract-plain $(BUILD)/libmemkit.so
tests/stress/stress-preload.sh: $(TESTS_DIR)/stress-plain $(BUILD)/libmemkit.so
tests/fault/rlimit-preload.sh: $(TESTS_DIR)/rlimit-plain $(BUILD)/libmemkit.so
tests/programs/programs.sh: $(BUILD)/libmemkit.so $(BUILD)/memkit
tests/sanitize/sanitize.sh: $(TESTS_SANITIZED_PROGRAMS)

TESTS += $(TESTS_DIR)/contract-mk tests/contract/contract-preload.sh \
         $(TESTS_DIR)/stress-mk tests/stress/stress-preload.sh \
         $(TESTS_DIR)/fault-mk tests/fault/rlimit-preload.sh \
         $(TESTS_DIR)/static-memkit tests/programs/programs.sh tests/sanitize/sanitize.sh

# Regression tests of the engine's correctness defects: mk_ build, with the OS layer's points and injectors.
$(eval $(call TESTS_MK_BUILD,regress,tests/regress/regress.c))
TESTS += $(TESTS_DIR)/regress-mk
tests/stress/purge0.sh: $(TESTS_DIR)/stress-plain $(BUILD)/libmemkit.so $(BUILD)/tsan/tests/stress
TESTS += tests/stress/purge0.sh
