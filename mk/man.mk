# Man pages: build/man/memkit.1 (the wrapper), mkprof.1 (the profile reader), memkit.3 (the library) and
# memkit_region.3 (region heaps),
# from man/*.in with the version put in; memkit.3's line @OPTIONS@ becomes the options fragment
# $(BUILD)/man/options.man (troff, generated from the one table of options: mk/options.mk).  `make install` installs them;
# tests/install/man.sh checks them with groff's warnings on.
MAN_PAGES := $(BUILD)/man/memkit.1 $(BUILD)/man/mkprof.1 $(BUILD)/man/memkit.3 $(BUILD)/man/memkit_region.3
MAN_SED = -e 's|@VERSION@|$(VERSION)|g' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g'

$(BUILD)/man/%: man/%.in include/memkit.h
	@mkdir -p $(@D)
	sed $(MAN_SED) $< >$@
$(BUILD)/man/memkit.3: man/memkit.3.in $(BUILD)/man/options.man include/memkit.h
	@mkdir -p $(@D)
	sed $(MAN_SED) -e '/^@OPTIONS@$$/{r $(BUILD)/man/options.man' -e 'd' -e '}' $< >$@

ALL += $(MAN_PAGES)
