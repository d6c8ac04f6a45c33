#!/usr/bin/env bash
# Smoke test of the benchmark: builds the workloads, runs each once at a tiny size under the C library and
# once under memkit (LD_PRELOAD=build/libmemkit.so, MEMKIT_STATS=1), and checks each run's self-check
# passed ("ok N"); under memkit also that memkit served it (its statistics report at exit, with segments
# mapped) and, for the workloads whose result does not depend on addresses or timing, that N is what the C
# library run printed.  Then runs the runner end to end (tiny profile, glibc only, into a scratch directory)
# and checks its reports.  No timing is asserted.
set -u
cd "$(dirname "$0")/../.."
lib=$PWD/build/libmemkit.so
# build-workloads, 17 workloads x (glibc, memkit), workload-rejects-bad-argument, 3 runner cases
echo "PLAN 39"
fail=0
pass() { echo "PASS $1"; }
failed() { echo "FAIL $1${2:+: $2}"; fail=1; }

if make --no-print-directory -s bench-workloads >/tmp/bench-smoke-build.$$ 2>&1; then
	pass build-workloads
else
	failed build-workloads "$(tail -5 /tmp/bench-smoke-build.$$)"
	rm -f /tmp/bench-smoke-build.$$
	exit 1
fi
rm -f /tmp/bench-smoke-build.$$

# name, same (the result is the same under every allocator) or any, arguments (tiny sizes, two threads
# where the workload takes them)
while read -r name same args; do
	out=$(LD_PRELOAD= timeout 60 "build/bench/$name" $args 2>&1)
	rc=$?
	ref=$(grep '^ok [0-9]' <<<"$out")
	if [ "$rc" -eq 0 ] && [ -n "$ref" ]; then
		pass "workload-$name"
	else
		failed "workload-$name" "exit $rc: $(tail -2 <<<"$out" | tr '\n' ' ')"
	fi
	out=$(LD_PRELOAD=$lib MEMKIT_STATS=1 timeout 60 "build/bench/$name" $args 2>&1)
	rc=$?
	got=$(grep '^ok [0-9]' <<<"$out")
	if [ "$rc" -ne 0 ] || [ -z "$got" ]; then
		failed "workload-$name-memkit" "exit $rc: $(tail -2 <<<"$out" | tr '\n' ' ')"
	elif ! grep -Eq '^memkit\[[0-9]+\]: statistics' <<<"$out" || ! grep -Eq '^memkit\[[0-9]+\]: segments.current +[1-9][0-9]* segments$' <<<"$out"; then
		failed "workload-$name-memkit" "no memkit statistics report with segments: memkit did not serve it"
	elif [ "$same" = same ] && [ "$got" != "$ref" ]; then
		failed "workload-$name-memkit" "'$got' under memkit, '$ref' under the C library"
	else
		pass "workload-$name-memkit"
	fi
done <<'LIST'
binarytrees same 8 2
churn same 20 2
pareto same 20 2
larson same 20 2
prodcons same 10 2
realloc same 2 2
large same 10 2
frag any 4
threadchurn same 1 2
xthread same 20 2
mstress any 20 4
alloctest same 20 2
larsonsrv same 50 2
instr same 100
heapscale same 16 1 200
largepair same 1000
huge same 10
LIST

# The self-check must be able to fail: a workload given impossible work reports FAIL, not ok.
out=$(build/bench/churn -1 2>&1)
if [ $? -ne 0 ] && grep -q '^FAIL' <<<"$out"; then pass workload-rejects-bad-argument; else failed workload-rejects-bad-argument; fi

# The runner, end to end: every workload (python3 and sqlite3 included) under glibc, all sections.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if python3 bench/run.py --profile tiny --allocators glibc --no-install --out "$tmp" >"$tmp/log" 2>&1; then
	pass runner
else
	failed runner "$(tail -5 "$tmp/log" | tr '\n' ' ')"
fi
if python3 - "$tmp" <<'PY'
import json, sys, os
import xml.etree.ElementTree as ET
d = sys.argv[1]
res = json.load(open(os.path.join(d, "latest.json")))
names = [w["name"] for w in res["workloads"]]
assert len(names) >= 14, names
for w in names:
    s = res["main"]["table"][w]["glibc"]
    assert s["status"] == "ok", (w, s)
    assert s["time_median"] > 0 and s["rss_median"] > 0.5, (w, s)
for w, rows in res["scaling"].items():
    assert all(p["status"] == "ok" for p in rows["glibc"].values()), (w, rows)
assert "## Time" in open(os.path.join(d, "latest.md")).read()
hs = res["heapscale"]
assert all(hs["ns"]["glibc"][str(h)] > 0 for h in hs["heaps"]) and hs["pair_ns"]["glibc"] > 0, hs
for svg in ("bench-time-tiny.svg", "bench-rss-tiny.svg", "bench-scaling-tiny.svg", "bench-heapscale-tiny.svg"):
    ET.parse(os.path.join(d, svg))  # well-formed
PY
then pass runner-reports; else failed runner-reports; fi
# --report renders the same report again from the JSON alone
mkdir "$tmp/again"
if python3 bench/run.py --report "$tmp/latest.json" --out "$tmp/again" >/dev/null 2>&1 &&
	cmp -s "$tmp/latest.md" "$tmp/again/latest.md" && cmp -s "$tmp/bench-scaling-tiny.svg" "$tmp/again/bench-scaling-tiny.svg"; then
	pass runner-report-from-json
else
	failed runner-report-from-json
fi
exit $fail
