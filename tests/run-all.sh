#!/usr/bin/env bash
# Runs every test program given on the command line and prints the tally.
# A test program prints one line per case, "PASS name" or "FAIL name ..." (tests/common/test.h does this);
# one that exits non-zero without a FAIL line counts as one failure, one that exits 0 and prints no
# PASS line counts as one pass.  Each program has MK_TEST_TIMEOUT seconds (default 600).
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
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "FAIL $name (exit status $rc$([ "$rc" -eq 124 ] && echo ', timed out'))" >>"$log"
	fi
	[ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && p=1
	passed=$((passed + p))
	failed=$((failed + f))
	printf '%-40s %4d passed %3d failed  %3ss\n' "$name" "$p" "$f" "$(( $(date +%s) - start ))"
	if [ "$f" -ne 0 ]; then
		failures+=("$name")
		grep -E '^FAIL |check failed|ERROR' "$log" | head -20 | sed 's/^/    /'
		echo "    (full log: $log)"
	fi
done
echo
[ "${#failures[@]}" -eq 0 ] || echo "failing programs: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
