#!/bin/sh
# The differential fuzzer through the interposed names: the plain build under LD_PRELOAD=build/libmemkit.so
# (or $MK_TEST_LIB: tests/misuse/secure-preload.sh runs it against build/libmemkit-secure.so).
# Without arguments it does what `make test` wants (a fixed seed, then a random one); any arguments go to
# the fuzzer (see the top of tests/fuzz/fuzz.c).
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
LD_PRELOAD="${MK_TEST_LIB:-$build/libmemkit.so}" exec "$build/tests/fuzz-plain" "$@"
