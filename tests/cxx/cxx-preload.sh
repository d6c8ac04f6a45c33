#!/usr/bin/env bash
# memkit's C++ operators under LD_PRELOAD=build/libmemkit.so:
#   - the library still depends on libc alone, and a C program that preloads it loads no C++ runtime;
#   - a C program that loads a C++ plugin with dlopen: memkit's operators find the late C++ runtime; one
#     with no C++ runtime at all gets NULL from nothrow new, and one line and an abort from new;
#   - build/tests/cxx-plain (tests/cxx/cxx.cpp: every operator, its semantics, proof that it is memkit's);
#   - g++ and clang++ compile tests/cxx/stl_heavy.cpp with and without memkit: identical objects (by their
#     disassembly), and the program (built by g++) gives identical output run with and without it.
#     cc1plus carries its own copy of libstdc++'s operator new (it is linked -static-libstdc++), which
#     calls malloc: memkit serves it through malloc.  clang++ uses the shared libstdc++, so its LLVM
#     allocations, and the program's, go through memkit's operators: the dynamic linker's bindings say so.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
lib=${MK_TEST_LIB:-$build/libmemkit.so}   # tests/misuse/secure-preload.sh: the secure build
work=$(mktemp -d "${TMPDIR:-/tmp}/memkit-cxx.XXXXXX")
trap 'rm -rf "$work"' EXIT
export LC_ALL=C

echo "PLAN 6"
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# 1. No dependency beyond libc, and every C++ or unwinder name it refers to is weak.
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
strong=$(nm -D --undefined-only "$lib" | awk '$1 == "U" && $2 ~ /^(_Z|__cxa|__gxx|_Unwind)/ { print $2 }' | tr '\n' ' ')
if [ "$needed" = "libc.so.6 " ] && [ -z "$strong" ]; then
	pass libc-only-dependency
else
	fail libc-only-dependency "NEEDED: $needed; strong C++ references: $strong"
fi

# 2. A C program under the preload maps memkit and no C++ runtime.
maps=$(LD_PRELOAD=$lib cat /proc/self/maps)
if grep -Eq 'libmemkit(-secure)?\.so' <<<"$maps" && ! grep -Eq 'libstdc\+\+|libgcc_s' <<<"$maps" &&
	[ "$(LD_PRELOAD=$lib ls -la "$root")" = "$(ls -la "$root")" ]; then
	pass c-program-loads-no-cxx-runtime
else
	fail c-program-loads-no-cxx-runtime "$(grep -E 'memkit|stdc|gcc_s' <<<"$maps" | awk '{ print $6 }' | sort -u | tr '\n' ' ')"
fi

# 3. A C program that dlopens a C++ plugin (RTLD_LOCAL): memkit finds the late runtime's new-handler and
#    std::bad_alloc, and catches for nothrow new (tests/cxx/plugin.cpp).
out=$(LD_PRELOAD=$lib "$build/tests/cxx-dlopen-host" "$build/tests/cxx-plugin.so" 2>&1)
if [ $? -eq 0 ] && [ "$out" = "runtime before dlopen 0, after 1, plugin result 0" ]; then
	pass late-cxx-runtime
else
	fail late-cxx-runtime "$out"
fi

# 4. No C++ runtime at all: nothrow new returns NULL, new aborts with one line (nothing to throw with).
out=$(LD_PRELOAD=$lib "$build/tests/cxx-dlopen-host" --no-runtime 2>&1)
rc=$?
want="nothrow NULL
memkit: operator new: out of memory for 9223372036854775808 bytes, and no C++ runtime to throw std::bad_alloc"
if [ $rc -eq 134 ] && [ "$out" = "$want" ]; then
	pass no-cxx-runtime-abort
else
	fail no-cxx-runtime-abort "status $rc, output: $out"
fi

# 5. The operators' own tests (their PLAN and cases pass through).
LD_PRELOAD=$lib "$build/tests/cxx-plain" || echo "  cxx-plain exited with status $?" >&2

# Compiles stl_heavy.cpp with compiler $2 into $work/$1-{plain,memkit}.o and compares the disassemblies;
# the dynamic linker's bindings of the run under memkit go to $work/bind-$1.*.
src=$root/tests/cxx/stl_heavy.cpp
compile_both() {
	local name=$1 cxx=$2 flags="-std=gnu++17 -O2 -g0 -Wall -Wextra -Werror"
	if ! command -v "$cxx" >/dev/null; then
		fail "$name-stl-identical" "$cxx is not installed (make test installs it)"
		return 1
	fi
	if ! $cxx $flags -c "$src" -o "$work/$name-plain.o" 2>"$work/$name-plain.err"; then
		fail "$name-stl-identical" "$cxx fails without memkit: $(head -c 300 "$work/$name-plain.err")"
		return 1
	fi
	LD_PRELOAD=$lib LD_DEBUG=bindings LD_DEBUG_OUTPUT=$work/bind-$name $cxx $flags -c "$src" \
		-o "$work/$name-memkit.o" 2>"$work/$name-memkit.err"
	local rc=$?
	objdump -d "$work/$name-plain.o" | tail -n +3 >"$work/$name-plain.dis"
	objdump -d "$work/$name-memkit.o" 2>/dev/null | tail -n +3 >"$work/$name-memkit.dis"
	if [ $rc -ne 0 ] || [ -s "$work/$name-memkit.err" ] || ! cmp -s "$work/$name-plain.dis" "$work/$name-memkit.dis" ||
		[ "$(wc -l <"$work/$name-plain.dis")" -lt 1000 ]; then
		fail "$name-stl-identical" "status $rc, $(head -c 300 "$work/$name-memkit.err"), disassembly $(cmp "$work/$name-plain.dis" "$work/$name-memkit.dis" 2>&1)"
		return 1
	fi
	return 0
}

# 6. g++, and the program it built: the same output with and without memkit, and memkit's operators in it.
if compile_both g++ g++; then
	if g++ -pthread "$work/g++-plain.o" -o "$work/stl" 2>"$work/link.err"; then
		"$work/stl" >"$work/out-plain" 2>&1
		rc_plain=$?
		LD_PRELOAD=$lib LD_DEBUG=bindings LD_DEBUG_OUTPUT=$work/bind-stl "$work/stl" >"$work/out-memkit" 2>&1
		rc_memkit=$?
		if [ $rc_plain -eq 0 ] && [ $rc_memkit -eq 0 ] && cmp -s "$work/out-plain" "$work/out-memkit" &&
			[ "$(wc -l <"$work/out-plain")" -eq 7 ] &&
			grep -q "binding file $work/stl \[0\] to $lib \[0\]: normal symbol \`_Znwm'" "$work"/bind-stl.*; then
			pass g++-stl-identical
		else
			fail g++-stl-identical "program status $rc_plain / $rc_memkit, output: $(diff "$work/out-plain" "$work/out-memkit" | head -5), _Znwm bound: $(grep -h "\`_Znwm'" "$work"/bind-stl.* | head -1)"
		fi
	else
		fail g++-stl-identical "link: $(head -c 300 "$work/link.err")"
	fi
fi

# 7. clang++: identical objects, with LLVM's and clang's allocations through memkit's operator new and delete.
if compile_both clang++ clang++; then
	if grep -Eq "binding file [^ ]*libLLVM[^ ]* \[0\] to $lib \[0\]: normal symbol \`_Znwm'" "$work"/bind-clang++.* &&
		grep -Eq "binding file [^ ]*libLLVM[^ ]* \[0\] to $lib \[0\]: normal symbol \`_ZdlPv'" "$work"/bind-clang++.* &&
		grep -Eq "binding file [^ ]*libclang-cpp[^ ]* \[0\] to $lib \[0\]: normal symbol \`_Znwm'" "$work"/bind-clang++.*; then
		pass clang++-stl-identical
	else
		fail clang++-stl-identical "libLLVM's operators not bound to memkit: $(grep -h "libLLVM.*\`_Znwm'" "$work"/bind-clang++.* | head -1)"
	fi
fi
