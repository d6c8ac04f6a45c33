#!/bin/sh
# The contract tests through the interposed names: the plain build under LD_PRELOAD=build/libmemkit.so.
# MK_EXPECT_MEMKIT=1 adds the cases that check memkit (not the C library) answers every name.
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
MK_EXPECT_MEMKIT=1 LD_PRELOAD="$build/libmemkit.so" exec "$build/tests/contract-plain" "$@"
