#!/usr/bin/env bash
# The engine under AddressSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer: the contract tests
# (less the RSS ones) and a scaled-down stress run, each linked with build/<sanitizer>/libmemkit-mk.a.
# Passes the programs' PLAN and PASS/FAIL lines through (run-all.sh sums the PLAN lines); a sanitizer
# report makes its program exit non-zero, which counts as a failure here.  A program that is not built,
# prints no PLAN, or exits non-zero without a FAIL line gets a case of its own ("PLAN 1" and a FAIL).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
export ASAN_OPTIONS=abort_on_error=0:detect_leaks=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
failed=0

. "$root/tests/sanitize/tsan-run.sh"

for san in asan ubsan tsan; do
	progs="contract stress"
	[ $san = tsan ] || progs="$progs regress"   # regress forks around threads: not under TSan
	for prog in $progs; do
		bin=$build/$san/tests/$prog
		if [ ! -x "$bin" ]; then
			echo "PLAN 1"
			echo "FAIL $san-$prog (not built: $bin)"
			failed=1
			continue
		fi
		if [ $san = tsan ]; then
			out=$(tsan_run "$bin")
		else
			out=$("$bin" 2>&1)
		fi
		rc=$?
		# prefix the case names with the sanitizer so that run-all.sh's log tells the three apart
		printf '%s\n' "$out" | sed -E "s/^(PASS|FAIL) /\1 $san: /"
		if ! grep -q '^PLAN [0-9]' <<<"$out"; then
			printf 'PLAN 1\nFAIL %s (printed no PLAN; exit status %d)\n' "$san-$prog" $rc
			failed=1
		elif [ $rc -ne 0 ]; then
			grep -q '^FAIL' <<<"$out" || printf 'PLAN 1\nFAIL %s (exit status %d)\n' "$san-$prog" $rc
			failed=1
		fi
	done
done
exit $failed
