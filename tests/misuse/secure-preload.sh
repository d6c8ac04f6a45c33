#!/bin/sh
# The secure build against the engine's preload tests: the contract, stress, fuzz and C++ tests and the real
# programs, each run as in make test but under LD_PRELOAD=build/libmemkit-secure.so (MK_TEST_LIB), their
# PLAN and PASS/FAIL lines passed through.  MK_TEST_SECURE=1 tells the contract and C++ tests which of
# their checks depend on the default build's block layout or reuse order.
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
export MK_TEST_LIB="$build/libmemkit-secure.so" MK_TEST_SECURE=1
status=0
for t in tests/contract/contract-preload.sh tests/stress/stress-preload.sh tests/fuzz/fuzz-preload.sh \
         tests/cxx/cxx-preload.sh \
         tests/programs/programs.sh; do
	echo "# secure: $t"
	"$root/$t" || status=1
done
exit $status
