#!/usr/bin/env bash
# api-fuzz.sh [SECONDS]: runs the libFuzzer harness (build/fuzz/api_fuzz, tests/fuzz/api_fuzz.c) for
# SECONDS (default 10) starting from the committed corpus tests/fuzz/corpus/api/.  New inputs go to
# build/fuzz/corpus-new/ (the committed corpus is only read), a failing input to build/fuzz/crash-*.
# Prints one PASS or FAIL line; exits non-zero on failure.  FUZZ_API_ARGS: more libFuzzer options
# (-seed=N replays libFuzzer's choices; a saved input replays with build/fuzz/api_fuzz FILE).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
seconds=${1:-10}
bin=$build/fuzz/api_fuzz
echo "PLAN 1"
if [ ! -x "$bin" ]; then
	echo "FAIL api-fuzz (not built: $bin)"
	exit 1
fi
new=$build/fuzz/corpus-new
mkdir -p "$new"
log=$build/fuzz/api-fuzz.log
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 \
	-artifact_prefix="$build/fuzz/" ${FUZZ_API_ARGS:-} "$new" "$root/tests/fuzz/corpus/api" >"$log" 2>&1
rc=$?
seed=$(sed -n 's/^INFO: Seed: \([0-9]*\).*/\1/p' "$log" | head -1)
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
if [ $rc -eq 0 ]; then
	echo "PASS api-fuzz: ${runs:-?} inputs in ${seconds} s, ${cov:-cov: ?} (libFuzzer -seed=${seed:-?})"
	exit 0
fi
tail -40 "$log"
echo "FAIL api-fuzz (exit status $rc, libFuzzer -seed=${seed:-?}; input saved as $(grep -o "$build/fuzz/[a-z]*-[0-9a-f]*" "$log" | tail -1); full log $log)"
exit 1
