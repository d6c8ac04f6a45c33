#!/usr/bin/env bash
# make install / make uninstall into a temporary DESTDIR with a non-default PREFIX, LIBDIR and
# PRELOADDIR: the files installed are exactly the expected list (written out here, not taken from the
# Makefile), the links and sonames are right, a C program builds against the staged tree through
# pkg-config and through CMake's find_package(memkit) and runs on the installed libraries, and uninstall
# leaves no file behind.
set -u
cd "$(dirname "$0")/../.."
echo "PLAN 11"
root=$(mktemp -d /tmp/memkit-install.XXXXXX)
trap "${KEEP:+:} rm -rf \"\$root\"" EXIT
# The test runs inside `make test` without its jobserver: a make of its own, with no inherited flags.
unset MAKEFLAGS MFLAGS MAKELEVEL
prefix=/opt/memkit-test
libdir=$prefix/lib64
dest=$root/dest
preloaddir=$libdir/memkit
vars=(DESTDIR="$dest" PREFIX="$prefix" LIBDIR="$libdir" PRELOADDIR="$preloaddir")
part() { sed -n "s/^#define MEMKIT_VERSION_$1 *\([0-9]*\).*/\1/p" include/memkit.h; }
major=$(part MAJOR)
version=$major.$(part MINOR).$(part PATCH)

# result NAME STATUS [DETAIL]: one case.
result() {
	if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1${3:+ ($3)}"; fi
}

make -s --no-print-directory install "${vars[@]}" >"$root/install.log" 2>&1
result install $? "$(tail -3 "$root/install.log" | tr '\n' ' ')"

# Every file and link, with what each link points to.  The secure and profiling builds are installed when
# they are built.
expected() {
	local l
	for l in libmemkit libmemkit-region; do
		printf '%s\n' "$libdir/$l.so -> $l.so.$major" "$libdir/$l.so.$major -> $l.so.$version" "$libdir/$l.so.$version"
	done
	printf '%s\n' $libdir/libmemkit.a $libdir/libmemkit-mk.a $libdir/libmemkit-region.a $preloaddir/libmemkit-sbrk.so \
		$libdir/pkgconfig/memkit.pc $libdir/pkgconfig/memkit-region.pc \
		$libdir/cmake/memkit/memkit-config.cmake $libdir/cmake/memkit/memkit-config-version.cmake \
		$prefix/include/memkit.h $prefix/include/memkit_region.h $prefix/bin/memkit $prefix/bin/mkprof \
		$prefix/share/man/man1/memkit.1 $prefix/share/man/man1/mkprof.1 $prefix/share/man/man3/memkit.3 $prefix/share/man/man3/memkit_region.3
	[ -e build/libmemkit-secure.so ] && echo "$preloaddir/libmemkit-secure.so"
	[ -e build/libmemkit-prof.so ] && echo "$preloaddir/libmemkit-prof.so"
	return 0
}
present() {
	(cd "$dest" && find . \( -type f -o -type l \) -printf '/%P\n' | while read -r f; do
		if [ -L ".$f" ]; then echo "$f -> $(readlink ".$f")"; else echo "$f"; fi
	done)
}
diff <(expected | sort) <(present | sort) >"$root/list.diff"
result file-list $? "$(head -6 "$root/list.diff" | tr '\n' ' ')"

soname=$(readelf -d "$dest$libdir/libmemkit.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
rsoname=$(readelf -d "$dest$libdir/libmemkit-region.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libmemkit.so.$major" ] && [ "$rsoname" = "libmemkit-region.so.$major" ]
result sonames $? "libmemkit: '$soname', region: '$rsoname'"

# The installed wrapper names the installed LIBDIR and PRELOADDIR, and the version.
w=$dest$prefix/bin/memkit
[ "$("$w" --version)" = "memkit $version" ] && grep -qx "libdir='$libdir'" "$w" && grep -qx "preloaddir='$preloaddir'" "$w"
result wrapper-installed $?

# The consumer (tests/install/consumer.c) prints "memkit VERSION 0" when it ran on memkit.
want="memkit $version 0"
export PKG_CONFIG_PATH=$dest$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
pcversion=$(pkg-config --modversion memkit 2>&1)
[ "$pcversion" = "$version" ] && [ "$(pkg-config --modversion memkit-region 2>&1)" = "$version" ]
result pkg-config-version $? "memkit.pc says '$pcversion'"

# shellcheck disable=SC2046
cc -o "$root/app-pc" tests/install/consumer.c $(pkg-config --cflags --libs memkit memkit-region) >"$root/pc.log" 2>&1
result pkg-config-build $? "$(head -3 "$root/pc.log" | tr '\n' ' ')"
needed=$(readelf -d "$root/app-pc" 2>/dev/null | grep -c "NEEDED.*\[libmemkit\(-region\)\?\.so\.$major\]")
out=$(LD_LIBRARY_PATH=$dest$libdir "$root/app-pc" 2>&1)
[ "$out" = "$want" ] && [ "$needed" -eq 2 ]
result pkg-config-run $? "output '$out', $needed of 2 sonames needed"

# CMake: find_package with the version, the imported targets, shared and static.  CMake on Debian does
# not search lib64 under a prefix: memkit_DIR names the package directory, as a user of such a LIBDIR would.
mkdir -p "$root/cmake-src"
cp tests/install/consumer.c "$root/cmake-src/app.c"
cat >"$root/cmake-src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.13)
project(memkit_consumer C)
find_package(memkit ${WANT_VERSION} REQUIRED)
add_executable(app app.c)
target_link_libraries(app memkit::memkit memkit::region)
add_executable(app-static app.c)
target_link_libraries(app-static memkit::memkit-static memkit::region-static)
EOF
if cmake -S "$root/cmake-src" -B "$root/cmake-build" -Dmemkit_DIR="$dest$libdir/cmake/memkit" -DWANT_VERSION="$major.0" \
	>"$root/cmake.log" 2>&1 && cmake --build "$root/cmake-build" >>"$root/cmake.log" 2>&1; then
	out=$(LD_LIBRARY_PATH=$dest$libdir "$root/cmake-build/app" 2>&1)
	sout=$("$root/cmake-build/app-static" 2>&1)
	[ "$out" = "$want" ] && [ "$sout" = "$want" ]
	result cmake-run $? "shared: '$out', static: '$sout'"
else
	result cmake-run 1 "$(grep -m3 -i 'error' "$root/cmake.log" | tr '\n' ' ')"
fi
# A version the package does not satisfy is refused (another major version).
cmake -S "$root/cmake-src" -B "$root/cmake-build2" -Dmemkit_DIR="$dest$libdir/cmake/memkit" -DWANT_VERSION="$((major + 1)).0" \
	>"$root/cmake2.log" 2>&1
[ $? -ne 0 ] && grep -q "version: $version" "$root/cmake2.log"
result cmake-version-refused $?

make -s --no-print-directory uninstall "${vars[@]}" >"$root/uninstall.log" 2>&1
result uninstall $? "$(tail -3 "$root/uninstall.log" | tr '\n' ' ')"
left=$(present)
[ -z "$left" ]
result nothing-left $? "$(echo "$left" | head -3 | tr '\n' ' ')"
