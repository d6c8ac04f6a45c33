#!/bin/sh
# tests/misuse/hardening.c under both builds: LD_PRELOAD=build/libmemkit.so, then build/libmemkit-secure.so
# with MK_TEST_SECURE=1 (its secure-only cases); their PLAN and PASS/FAIL lines passed through.
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
status=0
LD_PRELOAD="$build/libmemkit.so" "$build/tests/misuse/hardening" || status=1
MK_TEST_SECURE=1 LD_PRELOAD="$build/libmemkit-secure.so" "$build/tests/misuse/hardening" || status=1
exit $status
