#!/usr/bin/env bash
# The differential fuzzer against the engine under AddressSanitizer, UndefinedBehaviorSanitizer and
# ThreadSanitizer: build/<sanitizer>/tests/fuzz, linked with build/<sanitizer>/libmemkit-mk.a (no fork under
# TSan), each run the make-test way (-T: a fixed seed, then a random one), scaled down; arguments replace
# -T.  Under TSan also -X, which keeps an engine race that TSan reports out of the run (found by this
# fuzzer; see docs/TESTS.md, Known issues): mk_check and malloc_trim wait for the end.  Like tests/sanitize/sanitize.sh: PASS/FAIL lines prefixed with the sanitizer, a sanitizer
# report makes its program exit non-zero (a failure here), TSan retried under setarch -R when it cannot map.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
export ASAN_OPTIONS=abort_on_error=0:detect_leaks=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
failed=0
[ $# -eq 0 ] && set -- -T

. "$root/tests/sanitize/tsan-run.sh"

for san in asan ubsan tsan; do
	bin=$build/$san/tests/fuzz
	if [ ! -x "$bin" ]; then
		echo "PLAN 1"
		echo "FAIL $san-fuzz (not built: $bin)"
		failed=1
		continue
	fi
	if [ $san = tsan ]; then
		out=$(tsan_run "$bin" -X "$@")
	else
		out=$("$bin" "$@" 2>&1)
	fi
	rc=$?
	# prefix the case names with the sanitizer so that run-all.sh's log tells the three apart
	printf '%s\n' "$out" | sed -E "s/^(PASS|FAIL) /\1 $san: /"
	if [ $rc -ne 0 ]; then
		grep -q '^FAIL' <<<"$out" || echo "FAIL $san-fuzz (exit status $rc)"
		failed=1
	fi
done
exit $failed
