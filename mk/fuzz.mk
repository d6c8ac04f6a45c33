# The fuzz tier (tests/fuzz/, docs/TESTS.md):
#   build/tests/fuzz-mk, fuzz-plain   the differential fuzzer of the malloc family (tests/fuzz/fuzz.c), built
#                                     like the contract tests: mk_ API, and plain for LD_PRELOAD
#   build/{asan,ubsan,tsan}/tests/fuzz  the same against the sanitizer builds of libmemkit-mk.a
#   build/fuzz/api_fuzz               the libFuzzer harness (tests/fuzz/api_fuzz.c) over the engine compiled
#                                     with clang, -fsanitize=fuzzer-no-link,address,undefined
# `make fuzz SECONDS=600 SEED=42` runs the fuzzer that long (FUZZ_PRELOAD=1: the plain build under
# LD_PRELOAD; FUZZ_ARGS: more options, see the top of fuzz.c); `make fuzz-api SECONDS=600` runs libFuzzer.
# This file comes before mk/tests.mk: the variables that mk/tests.mk defines appear in recipes only.
SECONDS ?= 60
SEED    ?=
FUZZ_ARGS ?=

$(BUILD)/tests/fuzz-mk: tests/fuzz/fuzz.c $(BUILD)/libmemkit-mk.a
	@mkdir -p $(@D)
	$(CC) $(TESTS_CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(TESTS_CFLAGS) -DMK_TEST_PREFIXED $< $(BUILD)/libmemkit-mk.a $(LDFLAGS) -o $@ $(TESTS_LDLIBS)
$(BUILD)/tests/fuzz-plain: tests/fuzz/fuzz.c
	@mkdir -p $(@D)
	$(CC) $(TESTS_CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(TESTS_CFLAGS) $< $(LDFLAGS) -o $@ $(TESTS_LDLIBS)

# Against the sanitizer builds: only the object is ours; mk/tests.mk's rule links
# build/<sanitizer>/tests/% from build/<sanitizer>/tests/%.o and build/<sanitizer>/libmemkit-mk.a.
# Like the other test programs there, the fuzzer itself is not instrumented (the engine is under test).
FUZZ_SANITIZERS := asan ubsan tsan
$(FUZZ_SANITIZERS:%=$(BUILD)/%/tests/fuzz.o): tests/fuzz/fuzz.c
	@mkdir -p $(@D)
	$(CC) $(TESTS_CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(TESTS_CFLAGS) -DMK_TEST_PREFIXED -DMK_TEST_SANITIZE \
	    $(if $(findstring /tsan/,$@),-DMK_TEST_NO_FORK) -c $< -o $@
FUZZ_SANITIZED_PROGRAMS := $(FUZZ_SANITIZERS:%=$(BUILD)/%/tests/fuzz)

# libFuzzer: the engine and api.c compiled as for libmemkit-mk.a (mk/engine.mk), with clang and the
# fuzzer's coverage, ASan and UBSan; the harness links libFuzzer's main.
FUZZ_CLANG ?= clang
FUZZ_SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_API_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/fuzz/obj/%.o) $(BUILD)/fuzz/obj/api-mk.o
$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CLANG) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SANFLAGS) -c $< -o $@
$(BUILD)/fuzz/obj/api-mk.o: src/override/api.c
	@mkdir -p $(@D)
	$(FUZZ_CLANG) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(ENGINE_CFLAGS) $(API_ENGINE) -DMK_API_PREFIX=mk_ -DMK_API_PREFIXED \
	    -fsanitize=fuzzer-no-link $(FUZZ_SANFLAGS) -c $< -o $@
$(BUILD)/fuzz/api_fuzz: tests/fuzz/api_fuzz.c $(FUZZ_API_OBJ)
	@mkdir -p $(@D)
	$(FUZZ_CLANG) $(MK_CPPFLAGS) $(CPPFLAGS) -I. $(MK_CFLAGS) $(CFLAGS) -fsanitize=fuzzer $(FUZZ_SANFLAGS) $< $(FUZZ_API_OBJ) $(LDFLAGS) -o $@ $(MK_LDLIBS) $(LDLIBS)

# Scripts are tests too; these rules only make sure what they run is built first.
tests/fuzz/fuzz-preload.sh: $(BUILD)/tests/fuzz-plain $(BUILD)/libmemkit.so
tests/fuzz/fuzz-sanitize.sh: $(FUZZ_SANITIZED_PROGRAMS)
tests/fuzz/api-fuzz.sh: $(BUILD)/fuzz/api_fuzz

.PHONY: fuzz fuzz-api
fuzz: $(BUILD)/tests/fuzz-mk $(BUILD)/tests/fuzz-plain $(BUILD)/libmemkit.so
	$(if $(FUZZ_PRELOAD),LD_PRELOAD=$(abspath $(BUILD))/libmemkit.so $(BUILD)/tests/fuzz-plain,$(BUILD)/tests/fuzz-mk) \
	    -t $(SECONDS) $(if $(SEED),-s $(SEED)) $(FUZZ_ARGS)
fuzz-api: $(BUILD)/fuzz/api_fuzz
	tests/fuzz/api-fuzz.sh $(SECONDS)

TESTS += $(BUILD)/tests/fuzz-mk tests/fuzz/fuzz-preload.sh tests/fuzz/fuzz-sanitize.sh tests/fuzz/api-fuzz.sh
