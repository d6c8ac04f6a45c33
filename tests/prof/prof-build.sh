#!/usr/bin/env bash
# The profiler's tests again on the profiling build, build/libmemkit-prof.so, whose inlined malloc counts
# the bytes down to the next sample point itself (no proxies; docs/profiling.md): the estimates against
# known sites (prof-sites: a malloc/free loop, interleaved classes, remote frees, fork), the heap maps, the
# stack walker's two tests, and prof.sh end to end.  The test programs are linked with -lmemkit: with
# build/profbuild first in LD_LIBRARY_PATH (its libmemkit.so.MAJOR links to the profiling build), that is
# the library they get; what prof.sh preloads is it too (PROF_SH_LIB).  prof-fork-mk is not run again: it
# links the default build's static libmemkit-mk.a.
set -u
cd "$(dirname "$0")/../.."
B=build
export LD_LIBRARY_PATH=$PWD/$B/profbuild${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
PROGS="prof-sites prof-map prof-reload prof-tables prof-leak"
echo "PLAN 2"
n=0
for t in $PROGS; do
	ldd $B/tests/$t | grep -q "=> $PWD/$B/profbuild/libmemkit.so" && n=$((n + 1))
done
if [ $n = 5 ]; then echo "PASS the test programs load the profiling build"; else echo "FAIL the test programs load the profiling build ($n of 5)"; fi
# The inlined fast paths really count: a block's class size is subtracted from the TLS countdown, in malloc
# and in operator new and new[] (whose slow path runs the fast path once more: counted once all the same,
# as the count is below 0 by then or the span empty).
n=0
for f in __libc_malloc _Znwm _Znam; do
	objdump -d --no-show-raw-insn $B/libmemkit-prof.so | awk "/<$f>:/,/ret/" | grep -q 'sub .*%fs:0x8(' && n=$((n + 1))
done
if [ $n = 3 ]; then echo "PASS malloc, new and new[] count down in the thread's TLS"; else echo "FAIL malloc, new and new[] count down in the thread's TLS ($n of 3)"; fi
rc=0
for t in prof-sites prof-map prof-reload prof-tables; do
	$B/tests/$t || rc=1
done
PROF_SH_LIB=$PWD/$B/libmemkit-prof.so tests/prof/prof.sh || rc=1
exit $rc
