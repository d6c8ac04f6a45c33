#!/usr/bin/env bash
# Smoke test of the benchmark: builds the workloads, runs each once at a tiny size under the C library and
# checks its self-check passed, then runs the runner end to end (tiny profile, glibc only, into a scratch
# directory) and checks its reports.  No timing is asserted.
set -u
cd "$(dirname "$0")/../.."
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

# name, arguments (tiny sizes, two threads where the workload takes them)
while read -r name args; do
	out=$(LD_PRELOAD= timeout 60 "build/bench/$name" $args 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q '^ok [0-9]' <<<"$out"; then
		pass "workload-$name"
	else
		failed "workload-$name" "exit $rc: $(tail -2 <<<"$out" | tr '\n' ' ')"
	fi
done <<'LIST'
binarytrees 8 2
churn 20 2
pareto 20 2
larson 20 2
prodcons 10 2
realloc 2 2
large 10 2
frag 4
threadchurn 1 2
instr 100
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
assert len(names) >= 10, names
for w in names:
    s = res["main"]["table"][w]["glibc"]
    assert s["status"] == "ok", (w, s)
    assert s["time_median"] > 0 and s["rss_median"] > 0.5, (w, s)
for w, rows in res["scaling"].items():
    assert all(p["status"] == "ok" for p in rows["glibc"].values()), (w, rows)
assert "## Time" in open(os.path.join(d, "latest.md")).read()
for svg in ("bench-time-tiny.svg", "bench-rss-tiny.svg", "bench-scaling-tiny.svg"):
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
