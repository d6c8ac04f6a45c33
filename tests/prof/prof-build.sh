#!/usr/bin/env bash
# The profiler's tests again on the profiling build, build/libmemkit-prof.so, whose inlined malloc counts
# the bytes down to the next sample point itself (no proxies; docs/profiling.md): the estimates against
# known sites (prof-sites: a malloc/free loop, interleaved classes, remote frees, fork), the heap maps, the
# stack walker's two tests, and prof.sh end to end.  The test programs are linked with -lmemkit: with
# build/profbuild first in LD_LIBRARY_PATH (its libmemkit.so.MAJOR links to the profiling build), that is
# the library they get; what prof.sh preloads is it too (PROF_SH_LIB).
set -u
cd "$(dirname "$0")/../.."
B=build
export LD_LIBRARY_PATH=$PWD/$B/profbuild${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "PLAN 2"
ldd $B/tests/prof-sites | grep -q "=> $PWD/$B/profbuild/libmemkit.so"
if [ $? = 0 ]; then echo "PASS the test programs load the profiling build"; else echo "FAIL the test programs load the profiling build"; fi
# The inlined malloc really counts: a block's class size is subtracted from the TLS countdown.
objdump -d --no-show-raw-insn $B/libmemkit-prof.so | awk '/<__libc_malloc>:/,/ret/' | grep -q 'sub .*%fs:0x8('
if [ $? = 0 ]; then echo "PASS its malloc counts down in the thread's TLS"; else echo "FAIL its malloc counts down in the thread's TLS"; fi
rc=0
for t in prof-sites prof-map prof-reload prof-tables; do
	$B/tests/$t || rc=1
done
PROF_SH_LIB=$PWD/$B/libmemkit-prof.so tests/prof/prof.sh || rc=1
exit $rc
