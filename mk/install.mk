# make install / make uninstall: GNU directory variables, each derived from PREFIX unless given, and
# DESTDIR (prepended to every path, for staging and packaging).  What is installed:
#   LIBDIR      libmemkit.so.VERSION + libmemkit.so.MAJOR + libmemkit.so, libmemkit.a, libmemkit-mk.a,
#               libmemkit-region.so.VERSION + its two links, libmemkit-region.a
#   PRELOADDIR  the libraries only for LD_PRELOAD (no versioned soname: nothing links them):
#               libmemkit-sbrk.so and, when their build rules exist (mk/secure.mk, mk/prof.mk),
#               libmemkit-secure.so and libmemkit-prof.so
#   PKGCONFIGDIR memkit.pc, memkit-region.pc        CMAKEDIR  the CMake package (find_package(memkit))
#   INCLUDEDIR  memkit.h, memkit_region.h           BINDIR    the wrapper memkit, the profile reader mkprof
#   MANDIR      man1/memkit.1, man1/mkprof.1, man3/memkit.3, man3/memkit_region.3
# `make uninstall` (same variables) removes exactly these files and the package's own CMAKEDIR (and
# PRELOADDIR when it is not LIBDIR, if empty); the standard directories (LIBDIR, MANDIR/man3, ...) are
# left, as they may hold other files.
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
DATAROOTDIR  ?= $(PREFIX)/share
MANDIR       ?= $(DATAROOTDIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PRELOADDIR   ?= $(LIBDIR)
CMAKEDIR     ?= $(LIBDIR)/cmake/memkit
INSTALL      ?= install

# The versioned shared libraries (file + soname link + development link) and the plain files by directory.
INSTALL_SHARED := libmemkit libmemkit-region
INSTALL_LIBS   := libmemkit.a libmemkit-mk.a libmemkit-region.a
INSTALL_PRELOAD := libmemkit-sbrk.so
# The secure and profiling builds are installed once a fragment (mk/secure.mk, mk/prof.mk) adds them to ALL.  Recursive: ALL is complete
# only after every fragment is read; the Makefile adds it to install's prerequisites then.
INSTALL_OPTIONAL = $(notdir $(filter $(BUILD)/libmemkit-secure.so $(BUILD)/libmemkit-prof.so,$(ALL)))
INSTALL_HEADERS := memkit.h memkit_region.h
INSTALL_PC     := memkit.pc memkit-region.pc
INSTALL_CMAKE  := memkit-config.cmake memkit-config-version.cmake
INSTALL_MAN1   := memkit.1 mkprof.1
INSTALL_MAN3   := memkit.3 memkit_region.3

# Every path install writes, without DESTDIR: what uninstall removes.
INSTALL_FILES = $(foreach l,$(INSTALL_SHARED),$(LIBDIR)/$(l).so.$(VERSION) $(LIBDIR)/$(l).so.$(VERSION_MAJOR) $(LIBDIR)/$(l).so) \
                $(addprefix $(LIBDIR)/,$(INSTALL_LIBS)) $(addprefix $(PRELOADDIR)/,$(INSTALL_PRELOAD) $(INSTALL_OPTIONAL)) \
                $(addprefix $(INCLUDEDIR)/,$(INSTALL_HEADERS)) $(addprefix $(PKGCONFIGDIR)/,$(INSTALL_PC)) \
                $(addprefix $(CMAKEDIR)/,$(INSTALL_CMAKE)) $(BINDIR)/memkit $(BINDIR)/mkprof \
                $(addprefix $(MANDIR)/man1/,$(INSTALL_MAN1)) $(addprefix $(MANDIR)/man3/,$(INSTALL_MAN3))

# Substitutions for the installed .pc files, wrapper and CMake package.  The CMake package finds the
# libraries and headers relative to itself, so it works under DESTDIR and after the tree is moved.
INSTALL_SED = -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@PRELOADDIR@|$(PRELOADDIR)|g' \
              -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
              -e 's|@VERSION@|$(VERSION)|g' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
              -e "s|@CMAKE_TO_LIBDIR@|$$(realpath -m --relative-to='$(CMAKEDIR)' '$(LIBDIR)')|g" \
              -e "s|@CMAKE_TO_INCLUDEDIR@|$$(realpath -m --relative-to='$(CMAKEDIR)' '$(INCLUDEDIR)')|g"

INSTALL_PREREQS := $(foreach l,$(INSTALL_SHARED),$(BUILD)/$(l).so) $(addprefix $(BUILD)/,$(INSTALL_LIBS) $(INSTALL_PRELOAD)) \
                   $(addprefix $(BUILD)/man/,$(INSTALL_MAN1) $(INSTALL_MAN3)) $(BUILD)/mkprof
# What install installs, built (for packagers who build and install in two steps: debian/rules).
.PHONY: installable
installable: $(INSTALL_PREREQS)
install: $(INSTALL_PREREQS)
	$(INSTALL) -d '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(PRELOADDIR)' '$(DESTDIR)$(PKGCONFIGDIR)' '$(DESTDIR)$(CMAKEDIR)' \
	    '$(DESTDIR)$(INCLUDEDIR)' '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(MANDIR)/man1' '$(DESTDIR)$(MANDIR)/man3'
	for l in $(INSTALL_SHARED); do \
	    $(INSTALL) -m 755 $(BUILD)/$$l.so.$(VERSION) '$(DESTDIR)$(LIBDIR)/' && \
	    ln -sf $$l.so.$(VERSION) '$(DESTDIR)$(LIBDIR)/'$$l.so.$(VERSION_MAJOR) && \
	    ln -sf $$l.so.$(VERSION_MAJOR) '$(DESTDIR)$(LIBDIR)/'$$l.so || exit 1; \
	done
	$(INSTALL) -m 644 $(addprefix $(BUILD)/,$(INSTALL_LIBS)) '$(DESTDIR)$(LIBDIR)/'
	$(INSTALL) -m 755 $(addprefix $(BUILD)/,$(INSTALL_PRELOAD) $(INSTALL_OPTIONAL)) '$(DESTDIR)$(PRELOADDIR)/'
	$(INSTALL) -m 644 $(addprefix include/,$(INSTALL_HEADERS)) '$(DESTDIR)$(INCLUDEDIR)/'
	for f in $(INSTALL_PC:.pc=); do sed $(INSTALL_SED) tools/$$f.pc.in >'$(DESTDIR)$(PKGCONFIGDIR)/'$$f.pc || exit 1; done
	for f in $(INSTALL_CMAKE); do sed $(INSTALL_SED) cmake/$$f.in >'$(DESTDIR)$(CMAKEDIR)/'$$f || exit 1; done
	sed $(INSTALL_SED) tools/memkit.in >'$(DESTDIR)$(BINDIR)/memkit' && chmod 755 '$(DESTDIR)$(BINDIR)/memkit'
	$(INSTALL) -m 755 $(BUILD)/mkprof '$(DESTDIR)$(BINDIR)/'
	$(INSTALL) -m 644 $(addprefix $(BUILD)/man/,$(INSTALL_MAN1)) '$(DESTDIR)$(MANDIR)/man1/'
	$(INSTALL) -m 644 $(addprefix $(BUILD)/man/,$(INSTALL_MAN3)) '$(DESTDIR)$(MANDIR)/man3/'

uninstall:
	rm -f $(foreach f,$(INSTALL_FILES),'$(DESTDIR)$(f)')
	-rmdir '$(DESTDIR)$(CMAKEDIR)' $(if $(filter-out $(LIBDIR),$(PRELOADDIR)),'$(DESTDIR)$(PRELOADDIR)') 2>/dev/null

# The tests (tests/install/): the flag conventions (make -n); install and uninstall into a temporary
# DESTDIR, with pkg-config and CMake consumers; the wrapper's flags; the man pages.  Each rule only makes sure what the script uses is built.
tests/install/install.sh: $(INSTALL_PREREQS)
tests/install/wrapper.sh: $(BUILD)/memkit $(BUILD)/libmemkit.so $(BUILD)/libmemkit-prof.so
tests/install/man.sh: $(addprefix $(BUILD)/man/,$(INSTALL_MAN1) $(INSTALL_MAN3))
tests/install/flags.sh: $(BUILD)/memkit $(BUILD)/man/memkit.3 $(BUILD)/libmemkit.so $(BUILD)/libmemkit-region.so
TESTS += tests/install/flags.sh tests/install/man.sh tests/install/wrapper.sh tests/install/install.sh
