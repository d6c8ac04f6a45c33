#!/bin/sh
# Runs the producer/consumer example (examples/run-region-demo.sh) from another directory and checks what
# the consumer reports; a count that is not a number is refused (status 2) before anything runs.
echo "PLAN 2"
cd "$(dirname "$0")/../.." || exit 1
demo=$PWD/examples/run-region-demo.sh
out=$(cd / && "$demo" 3000 2>&1)
rc=$?
echo "$out"
if [ "$rc" -eq 0 ] && echo "$out" | grep -q 'received 3000 of 3000 messages from process [1-9][0-9]*, 0 bad' &&
	echo "$out" | grep -q 'heap checked, 0 blocks left'; then
	echo "PASS region-demo"
else
	echo "FAIL region-demo (exit $rc)"
fi
out=$("$demo" abc 2>&1)
rc=$?
if [ "$rc" -eq 2 ] && echo "$out" | grep -q "COUNT is a number of messages from 1 to 4294967295, not 'abc'"; then
	echo "PASS region-demo-bad-count"
else
	echo "FAIL region-demo-bad-count (exit $rc: $out)"
fi
