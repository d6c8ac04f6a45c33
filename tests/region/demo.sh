#!/bin/sh
# Runs the producer/consumer example (examples/run-region-demo.sh) and checks what the consumer reports.
echo "PLAN 1"
cd "$(dirname "$0")/../.." || exit 1
out=$(examples/run-region-demo.sh 3000 2>&1)
rc=$?
echo "$out"
if [ "$rc" -eq 0 ] && echo "$out" | grep -q 'received 3000 of 3000 messages from process [1-9][0-9]*, 0 bad' &&
	echo "$out" | grep -q 'heap checked, 0 blocks left'; then
	echo "PASS region-demo"
else
	echo "FAIL region-demo (exit $rc)"
	exit 1
fi
