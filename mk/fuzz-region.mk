# A coverage-guided fuzzer for region heaps (libFuzzer, clang): build/fuzz/region_fuzz reads an input as a
# region file followed by a short program of API calls (tests/fuzz/region_fuzz.c).  `make fuzz-region`
# builds it; tests/fuzz/region-fuzz.sh runs it briefly over the seed corpus in tests/fuzz/corpus/region/,
# which `make fuzz-region-corpus` regenerates (tests/fuzz/region_corpus.c).  Not part of `make`: it needs
# clang (in .ci/packages).
FUZZ_CC ?= clang
FUZZ_REGION_SRC := $(sort $(wildcard src/region/*.c)) src/os/os.c
FUZZ_REGION_FLAGS := -std=gnu11 -g -O1 -Wall -Wextra $(MK_WERROR) -pthread \
                     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

$(BUILD)/fuzz/region_fuzz: tests/fuzz/region_fuzz.c $(FUZZ_REGION_SRC) $(wildcard src/region/*.h) include/memkit_region.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(FUZZ_REGION_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/region_fuzz.c $(FUZZ_REGION_SRC) $(MK_LDLIBS) $(LDLIBS)

$(BUILD)/fuzz/region_corpus: tests/fuzz/region_corpus.c $(BUILD)/libmemkit-region.a
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) -MF $(BUILD)/fuzz/region_corpus.d $(LDFLAGS) -o $@ $< $(BUILD)/libmemkit-region.a $(MK_LDLIBS) $(LDLIBS)

fuzz-region: $(BUILD)/fuzz/region_fuzz
fuzz-region-corpus: $(BUILD)/fuzz/region_corpus
	rm -f tests/fuzz/corpus/region/*
	$(BUILD)/fuzz/region_corpus tests/fuzz/corpus/region
.PHONY: fuzz-region fuzz-region-corpus

tests/fuzz/region-fuzz.sh: $(BUILD)/fuzz/region_fuzz
TESTS += tests/fuzz/region-fuzz.sh
