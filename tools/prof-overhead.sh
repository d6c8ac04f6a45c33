#!/usr/bin/env bash
# prof-overhead.sh [ROUNDS]: what profiling costs, profiling off against on at the default rate, both under
# build/libmemkit.so.  First the instruction counts (callgrind, deterministic): per malloc/free pair of
# build/bench/instr as `make bench-instr` counts them, and the whole churn and larson workloads at a small
# size.  Then the CPU time (user + system) of the benchmark workloads, off and on interleaved in each round,
# medians (noisy on a shared machine: compare ratios).  Needs `make build/libmemkit.so bench-workloads`
# and valgrind.
set -u
cd "$(dirname "$0")/.."
rounds=${1:-5}
lib=${LIB:-$PWD/build/libmemkit.so}
on=(MEMKIT_PROF=1 MEMKIT_PROF_AT_EXIT=0 MEMKIT_PROF_LEAKS=0)
count() {   # count OUTFILE ENV... -- ARGV...: total instructions
	local out=$1; shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
	env "${envs[@]}" LD_PRELOAD=$lib valgrind --tool=callgrind "${CG[@]}" --callgrind-out-file=$out "$@" >/dev/null 2>&1
	grep -E '^(summary|totals):' $out | head -1 | awk '{print $2}'
}
t=$(mktemp -d); trap 'rm -rf $t' EXIT
CG=(--collect-atstart=no --toggle-collect=measure)
a=$(count $t/a X=1 -- build/bench/instr 20000); b=$(count $t/b "${on[@]}" -- build/bench/instr 20000)
python3 -c "print('instr: %.2f instructions per pair off, %.2f on' % ($a / 1280000.0, $b / 1280000.0))"
CG=()
for w in "churn 200 1" "larson 400 2"; do
	set -- $w
	a=$(count $t/a X=1 -- build/bench/$1 $2 $3); b=$(count $t/b "${on[@]}" -- build/bench/$1 $2 $3)
	python3 -c "print('%s: %d instructions off, %d on: %+.1f%%' % ('$1', $a, $b, 100.0 * ($b - $a) / $a))"
done
python3 - "$lib" "$rounds" <<'PY'
import os, resource, statistics, subprocess, sys
lib, rounds = sys.argv[1], int(sys.argv[2])
on = dict(MEMKIT_PROF="1", MEMKIT_PROF_AT_EXIT="0", MEMKIT_PROF_LEAKS="0")
def run(argv, prof):
    env = dict(os.environ, LD_PRELOAD=lib, **(on if prof else {}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
for w in ["binarytrees 15 2", "churn 2000 1", "pareto 3000 1", "larson 4000 2", "larson 4000 1", "prodcons 2000 2",
          "realloc 40 1"]:
    argv = ["build/bench/" + w.split()[0]] + w.split()[1:]
    cpu = {False: [], True: []}
    for r in range(rounds):           # off and on interleaved, so that load changes hit both
        for prof in (False, True):
            cpu[prof].append(run(argv, prof))
    off, onv = statistics.median(cpu[False]), statistics.median(cpu[True])
    print("%-18s CPU off %.3f s  on %.3f s  on/off %.3f" % (w, off, onv, onv / off))
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
