#!/usr/bin/env bash
# Instructions per new/delete pair (callgrind; loop included, start-up excluded), plain and sized delete,
# with malloc/free beside them: under glibc and libstdc++ alone, under memkit without its C++ operators
# (build/libmemkit-nocxx.so: libstdc++'s operator new calling memkit's malloc), and under memkit.
# Usage: tests/cxx/instr.sh [ITERATIONS] (default 20000).  `make bench-instr-cxx` builds what it needs.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
iterations=${1:-20000}
prog=$build/bench/instr-new
work=$(mktemp -d "${TMPDIR:-/tmp}/memkit-instr.XXXXXX")
trap 'rm -rf "$work"' EXIT

per_pair() {   # $1 = preload ('' for none), $2 = mode
	local out=$work/cg.out
	LD_PRELOAD=$1 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=measure \
		--callgrind-out-file="$out" "$prog" "$2" "$iterations" >/dev/null 2>"$work/err" ||
		{ echo "valgrind failed: $(tail -3 "$work/err")" >&2; exit 1; }
	awk -v pairs=$((64 * iterations)) '/^(summary|totals):/ { t = $2 } END { printf "%.1f", t / pairs }' "$out"
}

printf '%-44s %8s %8s %8s\n' "allocator (instructions per pair)" "new+del" "sized" "malloc"
for a in "glibc + libstdc++:" "memkit malloc + libstdc++ operators:$build/libmemkit-nocxx.so" \
	"memkit operators:$build/libmemkit.so"; do
	name=${a%%:*} lib=${a#*:}
	printf '%-44s %8s %8s %8s\n' "$name" "$(per_pair "$lib" plain)" "$(per_pair "$lib" sized)" "$(per_pair "$lib" malloc)"
done
