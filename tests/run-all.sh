#!/usr/bin/env bash
# Runs every test program given on the command line and prints the tally.
#
# The rule every test program (C or script) follows, in its stdout:
#   PLAN n           how many cases it will report, printed before the first one.  A program that runs
#                    others may pass their PLAN lines through: the plan is the sum of all PLAN lines.
#   PASS name        one line per case that passed,
#   FAIL name ...    one line per case that failed.
# C programs get this from tests/common/test.h: put the RUN lines in a function and return
# test_main(that function) from main; it prints the PLAN (it counts the RUNs first) and runs the cases.
# Scripts print "PLAN n" themselves (n = the PASS/FAIL lines they print when nothing goes wrong).
#
# A program fails (and the tally counts its failures) when:
#   - it prints no PLAN line: one failure;
#   - it reports fewer cases than planned (it crashed, or was killed, before the rest): each missing case
#     is one failure;
#   - it reports more cases than planned: one failure;
#   - it exits non-zero and nothing above counted a failure: one failure;
#   - any FAIL line: one failure each.
# Each program has MK_TEST_TIMEOUT seconds (default 600).  The last line is "N passed, N failed" (CI reads it).
set -u
logdir=${MK_TEST_LOGS:-build/test-logs}
mkdir -p "$logdir"
passed=0 failed=0
failures=()
for t in "$@"; do
	name=$(basename "$t")
	log="$logdir/$name.log"
	start=$(date +%s)
	timeout -k 10 "${MK_TEST_TIMEOUT:-600}" "$t" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^PASS ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	plans=$(grep -c '^PLAN [0-9][0-9]*$' "$log")
	plan=$(sed -n 's/^PLAN \([0-9][0-9]*\)$/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
	if [ "$plans" -eq 0 ]; then
		f=$((f + 1))
		echo "FAIL $name (no PLAN line: the program must say how many cases it runs)" >>"$log"
	elif [ $((p + f)) -lt "$plan" ]; then
		missing=$((plan - p - f))
		f=$((f + missing))
		echo "FAIL $name ($missing of $plan planned cases never reported)" >>"$log"
	elif [ $((p + f)) -gt "$plan" ]; then
		f=$((f + 1))
		echo "FAIL $name ($((p + f - 1)) cases reported, $plan planned)" >>"$log"
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "FAIL $name (exit status $rc$([ "$rc" -eq 124 ] && echo ', timed out'))" >>"$log"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	printf '%-40s %4d passed %3d failed %4s planned %3ss\n' "$name" "$p" "$f" "$plan" "$(( $(date +%s) - start ))"
	if [ "$f" -ne 0 ]; then
		failures+=("$name")
		grep -E '^FAIL |check failed|requirement failed|ERROR' "$log" | head -20 | sed 's/^/    /'
		echo "    (full log: $log)"
	fi
done
echo
[ "${#failures[@]}" -eq 0 ] || echo "failing programs: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
