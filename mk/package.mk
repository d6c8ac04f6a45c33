# The Debian packages (debian/: libmemkit0, libmemkit-dev, memkit-tools).  `make deb` builds them from a
# copy of the tree in a temporary directory, as tests/package/package.sh does, and leaves the .debs in
# build/deb/; in a tree of your own, `dpkg-buildpackage -us -uc -b` works too (the .debs go to the parent
# directory).
.PHONY: deb
deb:
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/memkit-$(VERSION)
	git ls-files -co --exclude-standard -z | xargs -0 tar -cf - | tar -xf - -C $(BUILD)/deb/memkit-$(VERSION)
	cd $(BUILD)/deb/memkit-$(VERSION) && DEB_BUILD_OPTIONS="nocheck $(DEB_BUILD_OPTIONS)" dpkg-buildpackage -us -uc -b
	rm -rf $(BUILD)/deb/memkit-$(VERSION)
	@ls $(BUILD)/deb/*.deb

# The test builds what it packages itself, from the sources; it needs nothing built first.
TESTS += tests/package/package.sh
