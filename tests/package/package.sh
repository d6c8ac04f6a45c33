#!/usr/bin/env bash
# The Debian packages (debian/): the tree's files are copied to a temporary directory (the build writes
# only there: the .debs go to the copy's parent), `dpkg-buildpackage -us -uc -b` builds libmemkit0,
# libmemkit-dev and memkit-tools, lintian finds no error, each package holds its files, and, unpacked
# with `dpkg -x` into a temporary root, a C program builds against libmemkit-dev (pkg-config and CMake)
# and runs on libmemkit0, and memkit-tools' wrapper runs `ls` with the preload.
# Skipped, with one line and no case, where dpkg-buildpackage is not installed (CI installs it:
# .ci/packages).
set -u
cd "$(dirname "$0")/../.."
if ! command -v dpkg-buildpackage >/dev/null 2>&1; then
	echo "PLAN 0"
	echo "SKIP package: dpkg-buildpackage is not installed (apt-get install dpkg-dev debhelper fakeroot lintian)"
	exit 0
fi
echo "PLAN 8"
part() { sed -n "s/^#define MEMKIT_VERSION_$1 *\([0-9]*\).*/\1/p" include/memkit.h; }
version=$(part MAJOR).$(part MINOR).$(part PATCH)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
tmp=$(mktemp -d /tmp/memkit-package.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset MAKEFLAGS MFLAGS MAKELEVEL

result() {
	if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1${3:+ ($3)}"; fi
}

# debian/changelog repeats the version (dpkg needs it there): it must be the header's.
clv=$(dpkg-parsechangelog -l debian/changelog -S Version 2>&1)
[ "$clv" = "$version" ]
result changelog-version $? "debian/changelog says '$clv', include/memkit.h $version"

# The tree as git knows it (tracked and new files, not build/), else everything but build/.
src=$tmp/src/memkit-$version
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -co --exclude-standard -z | xargs -0 tar -cf - | tar -xf - -C "$src"
else
	tar -cf - --exclude=./build . | tar -xf - -C "$src"
fi
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1
rc=$?
# Everything is compiled in the build step (make installable), nothing while installing.
late=$(sed -n '/dh_auto_install/,/override_dh_install\|dh_install$/p' "$tmp/build.log" | grep -cE '^(cc|gcc) ')
[ "$rc" -eq 0 ] && [ "$late" -eq 0 ]
result build $? "status $rc, $late compiles while installing; $(grep -m3 -iE 'error|fail' "$tmp/build.log" | cut -c1-160 | tr '\n' ' ')"

debs=0
for p in libmemkit0 libmemkit-dev memkit-tools; do
	[ -f "$tmp/src/${p}_${version}_$arch.deb" ] && debs=$((debs + 1))
done
[ "$debs" -eq 3 ]
result debs $? "$debs of the 3 packages built"

if command -v lintian >/dev/null 2>&1; then
	lintian --fail-on error "$tmp/src/memkit_${version}_$arch.changes" >"$tmp/lintian.log" 2>&1
	result lintian $? "$(grep -m5 '^E:' "$tmp/lintian.log" | tr '\n' ' ')"
else
	result lintian 1 "lintian is not installed"
fi

# What each package must hold (paths in dpkg -c's form).
holds() {
	local deb=$tmp/src/${1}_${version}_$arch.deb f
	shift
	for f in "$@"; do
		dpkg -c "$deb" 2>/dev/null | grep -q " \./$f\( ->.*\)\?$" || echo "$(basename "$deb"): no $f"
	done
}
lib=usr/lib/$ma
gone=$( { holds libmemkit0 "$lib/libmemkit.so.$version" "$lib/libmemkit.so.${version%%.*}" \
		"$lib/libmemkit-region.so.$version" "$lib/libmemkit-region.so.${version%%.*}"
	holds libmemkit-dev usr/include/memkit.h usr/include/memkit_region.h "$lib/libmemkit.so" "$lib/libmemkit.a" \
		"$lib/libmemkit-mk.a" "$lib/libmemkit-region.so" "$lib/libmemkit-region.a" "$lib/pkgconfig/memkit.pc" \
		"$lib/pkgconfig/memkit-region.pc" "$lib/cmake/memkit/memkit-config.cmake" usr/share/man/man3/memkit.3.gz
	holds memkit-tools usr/bin/memkit usr/bin/mkprof usr/share/man/man1/memkit.1.gz usr/share/man/man1/mkprof.1.gz
	# The secure and profiling builds, when the tree builds them, go with the wrapper, in the private
	# PRELOADDIR.
	[ -e "$src/build/libmemkit-prof.so" ] && holds memkit-tools "$lib/memkit/libmemkit-prof.so"
	[ -e "$src/build/libmemkit-secure.so" ] && holds memkit-tools "$lib/memkit/libmemkit-secure.so"; } )
[ -z "$gone" ]
result contents $? "$(echo "$gone" | head -3 | tr '\n' ' ')"

root=$tmp/root
for p in libmemkit0 libmemkit-dev memkit-tools; do
	dpkg -x "$tmp/src/${p}_${version}_$arch.deb" "$root" 2>/dev/null
done
want="memkit $version 0"
# pkg-config would drop /usr/include and /usr/lib as system directories before the sysroot goes on.
# shellcheck disable=SC2046
out=$(export PKG_CONFIG_PATH=$root/$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 \
		PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
	cc -o "$tmp/app" tests/install/consumer.c $(pkg-config --cflags --libs memkit memkit-region) 2>&1 &&
	LD_LIBRARY_PATH=$root/$lib "$tmp/app" 2>&1)
[ "$out" = "$want" ]
result program $? "output '$out'"

mkdir -p "$tmp/cmake-src"
cp tests/install/consumer.c "$tmp/cmake-src/app.c"
printf '%s\n' 'cmake_minimum_required(VERSION 3.13)' 'project(memkit_consumer C)' 'find_package(memkit REQUIRED)' \
	'add_executable(app app.c)' 'target_link_libraries(app memkit::memkit memkit::region)' >"$tmp/cmake-src/CMakeLists.txt"
out=$( { cmake -S "$tmp/cmake-src" -B "$tmp/cmake-build" -Dmemkit_DIR="$root/$lib/cmake/memkit" &&
	cmake --build "$tmp/cmake-build"; } >"$tmp/cmake.log" 2>&1 && LD_LIBRARY_PATH=$root/$lib "$tmp/cmake-build/app" 2>&1)
[ "$out" = "$want" ]
result cmake-program $? "output '$out' $(grep -m2 -i error "$tmp/cmake.log" | tr '\n' ' ')"

# The packaged wrapper names the system's LIBDIR; --libdir points it at the unpacked one.
wrapper=$root/usr/bin/memkit
plain=$(ls -l /usr/bin 2>&1)
with=$("$wrapper" --libdir="$root/$lib" ls -l /usr/bin 2>&1)
maps=$("$wrapper" --libdir="$root/$lib" cat /proc/self/maps 2>&1)
# --secure looks in PRELOADDIR, moved with --libdir: it preloads the secure build or says it is missing.
if [ -e "$src/build/libmemkit-secure.so" ]; then
	"$wrapper" --libdir="$root/$lib" --secure cat /proc/self/maps 2>&1 | grep -q "$root/$lib/memkit/libmemkit-secure.so"
else
	"$wrapper" --libdir="$root/$lib" --secure true 2>&1 | grep -q "^memkit: --secure: $root/$lib/memkit/libmemkit-secure.so is not there"
fi
secure=$?
grep -qx "libdir='/$lib'" "$wrapper" && grep -qx "preloaddir='/$lib/memkit'" "$wrapper" && [ "$plain" = "$with" ] &&
	grep -q "$root/$lib/libmemkit.so.$version" <<<"$maps" && [ "$secure" -eq 0 ]
result wrapper-ls $? "$(head -2 <<<"$with" | tr '\n' ' ') (--secure: $secure)"
