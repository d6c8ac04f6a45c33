#!/usr/bin/env bash
# Runs binary-trees over every lab version at a small depth: each must exit 0 (its own checks pass)
# and print exactly what the C library version prints.  Version 4 is checked when it is built.
set -u
depth=${1:-10}
dir=build/lab
fail=0
# v0..v3, and v4 when it is built
[ -x "$dir/binarytrees-v4" ] && echo "PLAN 5" || echo "PLAN 4"
ref=$("$dir/binarytrees-v0" "$depth") || { echo "FAIL lab-binarytrees-v0 (exit $?)"; exit 1; }
echo "PASS lab-binarytrees-v0"
for v in 1 2 3 4; do
	bin=$dir/binarytrees-v$v
	if [ ! -x "$bin" ]; then
		[ "$v" -eq 4 ] && continue
		echo "FAIL lab-binarytrees-v$v (not built)"; fail=1; continue
	fi
	if out=$("$bin" "$depth") && [ "$out" = "$ref" ]; then
		echo "PASS lab-binarytrees-v$v"
	else
		echo "FAIL lab-binarytrees-v$v"; fail=1
	fi
done
exit $fail
