# Hardening (docs/hardening.md): the misuse suite, tests/misuse/ (programs, runner, expected catches).
#   make misuse        the table of caught cases for glibc, memkit, memkit-secure and the peers present
#   make misuse-doc    the same, written into docs/hardening.md (never by make test)
MISUSE_PROGS := overflow free uaf zero cxx
MISUSE_BINS  := $(MISUSE_PROGS:%=$(BUILD)/tests/misuse/%)
# The programs misuse the heap on purpose: gcc's warnings about exactly that are off, and -fno-builtin keeps
# every malloc, free and memcpy a real call.
MISUSE_CFLAGS := -O1 -g -Wall -Wextra -Werror -fno-builtin -Wno-use-after-free -Wno-free-nonheap-object \
                 -Wno-alloc-size-larger-than -Wno-array-bounds -Wno-stringop-overflow
CXX ?= g++

$(BUILD)/tests/misuse/%: tests/misuse/%.c tests/misuse/misuse.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -Iinclude -I. $(MISUSE_CFLAGS) -o $@ $<
$(BUILD)/tests/misuse/cxx: tests/misuse/cxx.cc tests/misuse/misuse.h
	@mkdir -p $(@D)
	$(CXX) -std=gnu++17 -I. $(MISUSE_CFLAGS) -fsized-deallocation -Wno-mismatched-new-delete -o $@ $<

misuse-bins: $(MISUSE_BINS)
misuse: $(MISUSE_BINS) $(BUILD)/libmemkit.so
	python3 tests/misuse/misuse.py --runs 5
misuse-doc: $(MISUSE_BINS) $(BUILD)/libmemkit.so
	python3 tests/misuse/misuse.py --runs 5 --doc docs/hardening.md
.PHONY: misuse misuse-doc misuse-bins
