#!/usr/bin/env bash
# Runs build/mem-tester (scripted, 8-thread random and fragmenting workloads over build/libmem.so) on
# several heap and slab sizes, checks that its SVG is well-formed XML, and that bad arguments are refused.
set -u
tester=${MEM_TESTER:-build/mem-tester}
fail=0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cfgs=("4096 16" "16k 100" "128k 64" "1m 48" "4m 1000" "10000 33" "64k 4000")
bads=("" "1m" "0 16" "-5 16" "1m 0" "1m x" "1m 64 --threads 0" "1m 64 --bogus 1" "4096 2000")
# per configuration: mem-tester's 3 workloads and the SVG check; one case per bad argument list
echo "PLAN $(( ${#cfgs[@]} * 4 + ${#bads[@]} ))"
for cfg in "${cfgs[@]}"; do
	set -- $cfg
	if "$tester" "$1" "$2" --ops 5000 --svg "$out/heap.svg" >"$out/log" 2>&1; then rc=0; else rc=$?; fi
	sed -n "s/^\(PASS\|FAIL\) /\1 heap=$1 slab=$2: /p" "$out/log"
	if [ "$rc" -ne 0 ]; then
		echo "FAIL heap=$1 slab=$2: exit status $rc"; grep -v '^\(PASS\|#\)' "$out/log" | head -5; fail=1
	fi
	if python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$out/heap.svg" 2>/dev/null; then
		echo "PASS heap=$1 slab=$2: svg is well-formed"
	else
		echo "FAIL heap=$1 slab=$2: svg is not well-formed"; fail=1
	fi
done
for bad in "${bads[@]}"; do
	if "$tester" $bad >/dev/null 2>&1; then
		echo "FAIL mem-tester refuses '$bad'"; fail=1
	else
		echo "PASS mem-tester refuses '$bad'"
	fi
done
exit $fail
