# memkit: `make` builds the libraries, `make test` runs every test, `make bench` compares allocators.
# Each part of the project adds its targets in its own fragment under mk/ (engine first), so that the
# parts stay independent: ALL collects what `make` builds, TESTS what `make test` runs (in order).
CC       ?= gcc
BUILD    := build
OPT      ?= -O2
CPPFLAGS := -Iinclude -Isrc
CFLAGS   := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -pthread -fPIC -MMD -MP
LDLIBS   := -pthread
PREFIX   ?= /usr/local

ALL   :=
TESTS :=

.PHONY: all test run-tests deps bench install clean
all: build-all

include mk/engine.mk
include $(sort $(filter-out mk/engine.mk,$(wildcard mk/*.mk)))

build-all: $(ALL)

test: deps
	$(MAKE) --no-print-directory run-tests
run-tests: $(ALL) $(TESTS)
	tests/run-all.sh $(TESTS)
# The Debian packages the tests use (real programs, sanitizer runtimes): installed when run as root.
deps:
	@tools/deps.sh .ci/packages

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
