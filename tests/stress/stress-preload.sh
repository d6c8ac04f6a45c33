#!/bin/sh
# The stress tests through the interposed names: the plain build under LD_PRELOAD=build/libmemkit.so
# (or $MK_TEST_LIB: tests/misuse/secure-preload.sh runs it against build/libmemkit-secure.so).
# MK_EXPECT_MEMKIT=1 adds the cases that check memkit (not the C library) answers every name.
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
MK_EXPECT_MEMKIT=1 LD_PRELOAD="${MK_TEST_LIB:-$build/libmemkit.so}" exec "$build/tests/stress-plain" "$@"
