# memkit: `make` builds the libraries, `make test` runs every test, `make bench` compares allocators.
# Each part of the project adds its targets in its own fragment under mk/ (engine first), so that the
# parts stay independent: ALL collects what `make` builds, TESTS what `make test` runs (in order).
#
# Flags follow the GNU conventions: the project's own are MK_CPPFLAGS, MK_CFLAGS and MK_LDLIBS, and every
# rule puts the user's CPPFLAGS, CFLAGS, LDFLAGS and LDLIBS (environment or command line) after them, so
# `make CFLAGS=-O3` or `make CPPFLAGS=-DX` adds to the build (a later -O wins) instead of replacing it.
CC       ?= gcc
BUILD    := build
OPT      ?= -O2
# -Werror: on in the project's own test and CI builds (`make test`, `.ci/run`), off for `make`, `make
# install` and the Debian package, so that a newer compiler's new warning cannot stop a user's build.
# WERROR=1 or WERROR=0 on the command line decides for any target.
WERROR   ?= $(if $(filter test run-tests,$(MAKECMDGOALS)),1,0)
MK_WERROR := $(if $(filter 1,$(WERROR)),-Werror)
MK_CPPFLAGS := -Iinclude -Isrc
MK_CFLAGS   := -std=gnu11 $(OPT) -g -Wall -Wextra $(MK_WERROR) -pthread -fPIC -MMD -MP
MK_LDLIBS   := -pthread

# The one version number: include/memkit.h's MEMKIT_VERSION_* macros.  The soname, memkit.pc, the
# wrapper's --version and the CMake package take it from there.
mk_version_part = $(shell sed -n 's/^\#define MEMKIT_VERSION_$(1) *\([0-9][0-9]*\).*/\1/p' include/memkit.h)
VERSION_MAJOR := $(call mk_version_part,MAJOR)
VERSION       := $(VERSION_MAJOR).$(call mk_version_part,MINOR).$(call mk_version_part,PATCH)

# $(call mk_shared_links,DIR/libNAME.so): the soname link libNAME.so.MAJOR and the development link
# libNAME.so, both relative, to libNAME.so.VERSION (the file the linker writes).
define mk_shared_links
$(1).$(VERSION_MAJOR): $(1).$(VERSION)
	ln -sf $$(<F) $$@
$(1): $(1).$(VERSION_MAJOR)
	ln -sf $$(<F) $$@
endef

ALL   :=
TESTS :=

.PHONY: all test run-tests deps bench install uninstall clean
all: build-all

include mk/engine.mk
include $(sort $(filter-out mk/engine.mk,$(wildcard mk/*.mk)))

build-all: $(ALL)
# What needs the complete ALL, known only now that every fragment is read: mk/install.mk's optional files.
install installable: $(addprefix $(BUILD)/,$(INSTALL_OPTIONAL))

test: deps
	$(MAKE) --no-print-directory run-tests
run-tests: $(ALL) $(TESTS)
	tests/run-all.sh $(TESTS)
# The Debian packages the tests use (real programs, sanitizer runtimes): installed when run as root.
deps:
	@tools/deps.sh .ci/packages

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) -c $< -o $@

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
