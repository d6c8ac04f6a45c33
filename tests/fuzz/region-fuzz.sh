#!/usr/bin/env bash
# Runs the region heap fuzzer (build/fuzz/region_fuzz, `make fuzz-region`) briefly over the seed corpus:
# every seed once, then REGION_FUZZ_SECONDS (default 10) of new inputs, in a scratch copy of the corpus so
# the committed one stays as it is.  Prints PASS region-fuzz or FAIL region-fuzz.
set -u
cd "$(dirname "$0")/../.."
bin=${BUILD:-build}/fuzz/region_fuzz
echo "PLAN 1"
if [ ! -x "$bin" ]; then
	echo "FAIL region-fuzz ($bin is missing: make fuzz-region)"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp tests/fuzz/corpus/region/* "$work/"
if "$bin" -max_total_time="${REGION_FUZZ_SECONDS:-10}" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
	-artifact_prefix="$work/" -print_final_stats=1 "$work" >"$work/log" 2>&1; then
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$work/log" | tail -2
	echo "PASS region-fuzz"
else
	tail -40 "$work/log"
	for a in "$work"/crash-* "$work"/timeout-* "$work"/leak-* "$work"/oom-*; do
		[ -e "$a" ] && echo "input: $(basename "$a") ($(stat -c %s "$a") bytes), kept in build/fuzz/" &&
			mkdir -p "${BUILD:-build}/fuzz" && cp "$a" "${BUILD:-build}/fuzz/"
	done
	echo "FAIL region-fuzz"
	exit 1
fi
