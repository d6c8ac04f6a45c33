#!/usr/bin/env bash
# The GNU flag conventions, read from what make would run (`make -n -B`, nothing is built): CPPFLAGS,
# CFLAGS and LDFLAGS from the command line are added to every compile and link of every fragment, after
# the project's own flags (which stay: -Iinclude, -fPIC, the engine's visibility); -Werror only for the
# test goals unless WERROR says otherwise; and build/'s versioned library with its links and soname.
set -u
cd "$(dirname "$0")/../.."
echo "PLAN 7"
unset MAKEFLAGS MFLAGS MAKELEVEL CFLAGS CPPFLAGS LDFLAGS WERROR
tmp=$(mktemp -d /tmp/memkit-flags.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# commands GOAL [VARIABLES...]: the compiler invocations make -n -B prints, one a line (continuations joined).
commands() {
	make -n -B --no-print-directory "$@" 2>/dev/null | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -E '^(cc|gcc|clang|g\+\+) '
}
user=(CFLAGS=-O3 CXXFLAGS=-O3 CPPFLAGS=-DMK_USER_FLAG LDFLAGS=-Wl,-z,relro)
commands run-tests "${user[@]}" >"$tmp/all"
grep -E ' -c ' "$tmp/all" >"$tmp/compile"
grep -vE ' -c ' "$tmp/all" >"$tmp/link"
# Lines that both compile and link (cc ... file.c -o prog) count as both.
grep -vE ' -c ' "$tmp/all" | grep -E '\.(c|cc|cpp)( |$)' >>"$tmp/compile"

# report NAME FILE: passes when FILE (the offending lines) is empty and at least one line was examined.
report() {
	if [ ! -s "$tmp/all" ]; then
		echo "FAIL $1 (make -n printed no compiler command)"
	elif [ -s "$2" ]; then
		echo "FAIL $1 ($(wc -l <"$2") lines, e.g.: $(head -c 300 "$2"))"
	else
		echo "PASS $1"
	fi
}

grep -v -- '-DMK_USER_FLAG' "$tmp/compile" >"$tmp/bad1"
report compile-lines-take-cppflags "$tmp/bad1"
# The project's own flags stay, and the user's -O3 comes after the project's -O2 (so it wins).
# C sources only (C++ has flags of its own); the region fuzzer too has its own, -O1 and no -fPIC.
grep -E '\.c( |$)' "$tmp/compile" | grep -v 'region_fuzz\.c' | grep -vE -- '-Iinclude .*-O2 .*-O3' >"$tmp/bad2"
grep -E '\.c( |$)' "$tmp/compile" | grep -v 'region_fuzz\.c' | grep -v -- '-fPIC' >>"$tmp/bad2"
grep 'region_fuzz\.c' "$tmp/compile" | grep -vE -- '-Iinclude .*-O1 .*-O3' >>"$tmp/bad2"
report compile-lines-keep-project-flags "$tmp/bad2"
grep -v -- '-Wl,-z,relro' "$tmp/link" >"$tmp/bad3"
report link-lines-take-ldflags "$tmp/bad3"
grep -E 'src/engine/[a-z]+\.c' "$tmp/compile" | grep -v -- '-fvisibility=hidden -ftls-model=initial-exec' >"$tmp/bad4"
grep -qE 'src/engine/heap\.c' "$tmp/compile" || echo "no engine compile line seen" >>"$tmp/bad4"
report engine-flags-kept "$tmp/bad4"

# -Werror: on for the test goal, off for `make`, WERROR decides for any goal.
w_test=$(grep -c -- '-Werror' "$tmp/compile")
w_all=$(commands build-all | grep -c -- '-Werror')
w_forced=$(commands build-all WERROR=1 | grep -E ' -c ' | grep -vc -- '-Werror')
w_off=$(commands run-tests WERROR=0 | grep -c -- '-Werror')
n_compile=$(wc -l <"$tmp/compile")
if [ "$w_test" -eq "$n_compile" ] && [ "$w_all" -eq 0 ] && [ "$w_forced" -eq 0 ] && [ "$w_off" -eq 0 ]; then
	echo "PASS werror-in-tests-only"
else
	echo "FAIL werror-in-tests-only (test goal: $w_test of $n_compile compiles; make: $w_all; WERROR=1 without: $w_forced; WERROR=0 with: $w_off)"
fi

# build/: libmemkit.so -> libmemkit.so.MAJOR -> libmemkit.so.VERSION (the file), soname libmemkit.so.MAJOR.
part() { sed -n "s/^#define MEMKIT_VERSION_$1 *\([0-9]*\).*/\1/p" include/memkit.h; }
major=$(part MAJOR)
version=$major.$(part MINOR).$(part PATCH)
chain=""
for l in libmemkit libmemkit-region; do
	chain="$chain $(readlink "build/$l.so")>$(readlink "build/$l.so.$major")"
	[ -f "build/$l.so.$version" ] && [ ! -L "build/$l.so.$version" ] || chain="$chain (no file $l.so.$version)"
	chain="$chain:$(readelf -d "build/$l.so.$version" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
done
want=" libmemkit.so.$major>libmemkit.so.$version:libmemkit.so.$major libmemkit-region.so.$major>libmemkit-region.so.$version:libmemkit-region.so.$major"
if [ "$chain" = "$want" ]; then echo "PASS build-soname-links"; else echo "FAIL build-soname-links (got '$chain', wanted '$want')"; fi

# The wrapper and the man pages take the same version (memkit.pc: tests/install/install.sh).
if [ "$(build/memkit --version 2>&1)" = "memkit $version" ] && grep -q "^\.TH MEMKIT 3 .*\"memkit $version\"" build/man/memkit.3; then
	echo "PASS one-version"
else
	echo "FAIL one-version (build/memkit --version: '$(build/memkit --version 2>&1)', memkit.3: '$(head -1 build/man/memkit.3)', header $version)"
fi
