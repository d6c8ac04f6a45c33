#!/usr/bin/env bash
# The stress of thread exit, parked heaps and remote frees with MEMKIT_PURGE_DELAY=0, where a span that
# empties goes back to its segment and a wholly free segment is unmapped at once: the setting under which
# a freeing thread that touched its span after publishing a block would fault.  Runs the stress program
# under LD_PRELOAD and its ThreadSanitizer build (mk_ names), each case name prefixed with "purge0".
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
export MEMKIT_PURGE_DELAY=0
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
failed=0
. "$root/tests/sanitize/tsan-run.sh"
run() {
	local label=$1
	shift
	local out rc
	out=$(tsan_run "$@")
	rc=$?
	printf '%s\n' "$out" | sed -E "s/^(PASS|FAIL) /\1 purge0 $label: /"
	if [ $rc -ne 0 ]; then
		grep -q '^FAIL' <<<"$out" || echo "FAIL purge0 $label (exit status $rc)"
		failed=1
	fi
}
run preload env MK_EXPECT_MEMKIT=1 LD_PRELOAD="$build/libmemkit.so" "$build/tests/stress-plain"
run tsan "$build/tsan/tests/stress"
exit $failed
