#!/usr/bin/env python3
"""memkit's benchmark runner: every allocator on every workload, interleaved, with a table as it goes.

    python3 bench/run.py [--profile quick|full] [--only main,scaling,instr,classic,heapscale]
                         [--allocators a,b] [--workloads w,x] [--reps N] [--no-install]

Allocators are compared by preloading them (LD_PRELOAD) under the same workload binaries; glibc is the
run with nothing preloaded.  Writes bench/results/latest.{md,json} (and <profile>.{md,json}) and SVG
charts; see docs/bench.md for what each figure means.  Python 3 standard library only.
"""
import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
BIN = os.path.join(BUILD, "bench")
RESULTS = os.path.join(ROOT, "bench", "results")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import charts  # noqa: E402  (bench/charts.py: the SVG writer)
import sqlwork  # noqa: E402  (bench/sqlwork.py: the generated SQL script and its expected output)
import heapscale  # noqa: E402  (bench/heapscale.py: the heap-size scaling section)

# name, Debian package, library file the package ships (what is preloaded); None = the C library itself.
PEERS = [
    ("glibc", None, None),
    ("jemalloc", "libjemalloc2", "libjemalloc.so.2"),
    ("mimalloc", "libmimalloc2.0", "libmimalloc.so.2"),
    ("tcmalloc", "libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
    ("tbbmalloc", "libtbbmalloc2", "libtbbmalloc_proxy.so.2"),  # the proxy is what replaces malloc
]
# The strongest peers Debian lacks, built from their release tags, in PEERS_DIR (default ../shared/peers
# beside the repository; see its README): measured when their file is there.
PEERS_DIR = os.environ.get("PEERS_DIR") or os.path.join(os.path.dirname(ROOT), "shared", "peers")
SHARED_PEERS = [
    ("mimalloc3", "libmi3.so", "mimalloc 3.4.3"),
    ("snmalloc", "libsnmallocshim.so", "snmalloc 0.7.5"),
    ("rpmalloc", "librpmalloc.so", "rpmalloc 2.0.1"),
]
# memkit's own, preloaded from the build tree when they have been built, with the environment each run
# gets.  memkit-prof is the profiling build (libmemkit-prof.so) with the heap profiler on at its default
# rate, as a user runs it: the profile dumped at exit (into the run's temporary directory: "{tmp}" below)
# and the leak report on stderr (see docs/profiling.md, which also has the default build's figures with
# MEMKIT_PROF=1).
OURS = [("memkit", "libmemkit.so", None), ("memkit-secure", "libmemkit-secure.so", None),
        ("memkit-sbrk", "libmemkit-sbrk.so", None),
        ("memkit-prof", "libmemkit-prof.so", {"MEMKIT_PROF": "1", "MEMKIT_PROF_FILE": "{tmp}/memkit.%p.heap"})]
# Ratios are to this allocator: mimalloc 3 when PEERS_DIR has it (the reference peer), else
# Debian's mimalloc 2.0.9.  Set in main() (and from a results file by --report).
BASELINE = "mimalloc"
SPREAD = 0.10          # (max - min) / median above this marks a figure as noisy
SLOW = 8.0             # an allocator this many times slower than the first one on its first run runs once
ONE_REP = {"frag"}     # its figure is the RSS after a second of sampling: one run in the quick profile

# Workloads: name, program, (quick, full) scale, default threads, threaded (in the scaling runs), summary.
# The scale is the program's first argument; see the comment at the top of each bench/workloads/*.c.
WORKLOADS = [
    ("binarytrees", "binarytrees", (8, 15, 17), 2, True, "perfect binary trees of 16-byte nodes, built and freed"),
    ("churn", "churn", (20, 2000, 8000), 1, False, "small-object churn: mixed 8 B-1 KiB, short-lived temporaries"),
    ("pareto", "pareto", (20, 3000, 10000), 1, False, "Pareto sizes (16 B-256 KiB), Pareto lifetimes"),
    ("larson", "larson", (20, 4000, 15000), 2, True, "server: threads swap blocks through a shared table (remote frees)"),
    ("prodcons", "prodcons", (10, 2000, 6000), 2, True, "producer/consumer pairs: one thread allocates, one frees"),
    ("realloc", "realloc", (2, 40, 120), 1, False, "strings and arrays grown by realloc, interleaved"),
    ("large", "large", (20, 300, 1200), 1, False, "large blocks 64 KiB-32 MiB, touched page by page"),
    ("huge", "huge", (20, 500, 2000), 1, False, "huge blocks 5-25 MiB from calloc, 20 live, replaced at random, written at their ends"),
    ("frag", "frag", (8, 128, 512), 1, False, "allocate, free 90% at random, keep the newest 10% (time of that phase)"),
    ("xthread", "xthread", (20, 3000, 10000), 2, True, "cross-thread: 8 B-16 KiB blocks freed by the next thread in batches"),
    ("mstress", "mstress", (20, 6000, 20000), 4, True, "threads churn mostly small blocks, random lifetimes, some migrate"),
    ("alloctest", "alloctest", (20, 4000, 15000), 2, True, "skewed sizes to 64 KiB, random lifetimes, per thread"),
    ("larsonsrv", "larsonsrv", (50, 10000, 40000), 2, True, "Larson server: threads replaced, each frees its predecessor's"),
    ("threadchurn", "threadchurn", (1, 10, 40), 2, True, "short-lived threads that allocate, hand blocks to the joiner"),
    ("python", "python", (1, 5, 20), 1, False, "python3 with PYTHONMALLOC=malloc on a pure-Python script"),
    ("sqlite", "sqlite", (500, 20000, 80000), 1, False, "sqlite3 (in memory) on a generated SQL script"),
]
SCALE_INDEX = {"tiny": 0, "quick": 1, "full": 2}  # which of the three scales above a profile uses
PROFILES = {
    # tiny: the smoke test's end-to-end run of the runner itself (numbers meaningless).
    "tiny": dict(reps=1, scaling_reps=1, threads=[1, 2], instr_iterations=50, classic_depths=[6],
                 cap_min=30.0, cap_factor=1.0),
    # reps: repetitions of each allocator on each workload; scaling_reps: of each scaling point;
    # cap: a run's time limit, max(cap_min, cap_factor x the first glibc run of that workload).
    "quick": dict(reps=3, scaling_reps=1, threads=[1, 2, 4, 8], instr_iterations=3000, classic_depths=[8, 14],
                  cap_min=2.0, cap_factor=10.0),
    "full": dict(reps=5, scaling_reps=2, threads=[1, 2, 4, 8], instr_iterations=20000, classic_depths=[8, 16],
                 cap_min=20.0, cap_factor=20.0),
}
LAB_VERSIONS = [("v0 libc", 0), ("v1 mmap per call", 1), ("v2 bump", 2), ("v3 cells", 3), ("v4 engine", 4)]

TTY = sys.stdout.isatty()


def say(msg=""):
    if TTY:
        sys.stdout.write("\r\033[K")
    print(msg, flush=True)


def progress(msg):
    if TTY:
        sys.stdout.write("\r\033[K" + msg[:150])
        sys.stdout.flush()


# ---------------------------------------------------------------------------------------------------
# Allocators: find them, install the missing peers (as root, from Debian), report versions.

def package_file(pkg, filename):
    """The path of `filename` among the files the installed package `pkg` ships, or None."""
    try:
        out = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        if os.path.basename(line) == filename and os.path.exists(line):
            return line
    return None


def package_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=False)
        return r.stdout.strip() if r.returncode == 0 else None
    except OSError:
        return None


def install_packages(pkgs, notes):
    """apt-get install each missing package (apt-get update first); failures are notes, never fatal."""
    missing = [p for p in pkgs if not package_version(p)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        notes.append("not installed and not root (run `make bench` as root to install them): " + " ".join(missing))
        return
    say("installing from Debian: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    for p in missing:
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", p],
                           env=env, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            notes.append("could not install %s: %s" % (p, (r.stderr.strip().splitlines() or ["?"])[-1]))


def find_allocators(install, wanted, notes):
    if install:
        install_packages([pkg for _, pkg, _ in PEERS if pkg], notes)
    allocs = []
    for name, pkg, lib in PEERS:
        if pkg is None:
            allocs.append(dict(name=name, preload=None, version=platform.libc_ver()[1] or "?"))
            continue
        path = package_file(pkg, lib)
        if path:
            allocs.append(dict(name=name, preload=path, version=package_version(pkg)))
        else:
            notes.append("%s skipped: package %s is not installed" % (name, pkg))
    for name, lib, version in SHARED_PEERS:
        path = os.path.join(PEERS_DIR, lib)
        if os.path.exists(path):
            allocs.append(dict(name=name, preload=os.path.abspath(path), version=version,
                               shown=os.path.join("$PEERS_DIR", lib)))
        else:
            notes.append("%s skipped: %s not found (PEERS_DIR=%s)" % (name, lib, PEERS_DIR))
    for name, lib, env in OURS:
        path = os.path.join(BUILD, lib)
        if os.path.exists(path):
            shown = os.path.relpath(path, ROOT)
            if env:
                shown = " ".join("%s=%s" % kv for kv in env.items()) + " " + shown
            allocs.append(dict(name=name, preload=path, version="this tree", shown=shown, env=env))
        else:
            notes.append("%s skipped: %s is not built" % (name, os.path.relpath(path, ROOT)))
    # MEMKIT_BASELINE=path/to/libmemkit.so (another build, e.g. of the previous commit): measured as
    # "memkit-base", interleaved with the rest, so a change's before and after come from one run; with
    # MEMKIT_BASELINE_ENV="NAME=value ..." in its environment (e.g. MEMKIT_PROF=1).
    base = os.environ.get("MEMKIT_BASELINE")
    if base:
        if os.path.exists(base):
            env = dict(kv.split("=", 1) for kv in os.environ.get("MEMKIT_BASELINE_ENV", "").split() if "=" in kv)
            shown = " ".join("%s=%s" % kv for kv in env.items()) + (" " if env else "") + base
            allocs.append(dict(name="memkit-base", preload=os.path.abspath(base), version="MEMKIT_BASELINE",
                               shown=shown, env=env or None))
        else:
            notes.append("memkit-base skipped: MEMKIT_BASELINE=%s does not exist" % base)
    if wanted:
        allocs = [a for a in allocs if a["name"] in wanted]
    return allocs


# ---------------------------------------------------------------------------------------------------
# One run: the child's wall time and peak RSS (from wait4's resource usage), its output, its verdict.

def run_once(argv, preload, timeout, extra_env=None, stdin_path=None, limit_as=None):
    """Runs argv under build/bench/measure (which sets LD_PRELOAD in the child alone and reports the wall
    time and the child's peak RSS), kills its process group after `timeout` seconds.  "{tmp}" in a value
    of extra_env is the run's own temporary directory (removed after it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC", "MALLOC_CONF")}

    def limits():
        if limit_as:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))
    with tempfile.TemporaryDirectory() as d:
        env.update({k: v.replace("{tmp}", d) for k, v in (extra_env or {}).items()})
        result = os.path.join(d, "result")
        with open(os.path.join(d, "out"), "w+b") as out, open(os.path.join(d, "err"), "w+b") as err:
            stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
            proc = subprocess.Popen([os.path.join(BIN, "measure"), result, preload or "-"] + argv, stdin=stdin,
                                    stdout=out, stderr=err, env=env, start_new_session=True,
                                    preexec_fn=limits if limit_as else None)
            timed_out = False
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if stdin_path:
                stdin.close()
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
        wall, rss, rc = timeout, 0, proc.returncode
        if not timed_out and os.path.exists(result):
            with open(result) as f:
                w, r, c = f.read().split()[:3]
            wall, rss, rc = float(w), int(r), int(c)
    metrics = {}
    ok_line = False
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "metric":
            metrics[parts[1]] = float(parts[2])
        elif parts[:1] == ["ok"]:
            ok_line = True
    if timed_out:
        verdict = "timeout"
    elif rc != 0 or not ok_line:
        verdict = "FAIL"
    else:
        verdict = "ok"
    return dict(status=verdict, wall=wall, rss_kib=rss, metrics=metrics, rc=rc,
                stdout=stdout, stderr=stderr[-400:])


def python_exe():
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def workload_command(name, program, scale, threads):
    """(argv, extra environment, stdin file, output checker or None) for one workload run."""
    if program == "python":
        return ([python_exe(), os.path.join(ROOT, "bench", "workloads", "pywork.py"), str(scale)],
                {"PYTHONMALLOC": "malloc"}, None, None)
    if program == "sqlite":
        script, expected = sqlwork.prepare(os.path.join(BIN, "sqlite"), scale)
        return ([shutil.which("sqlite3") or "sqlite3", "-batch", ":memory:"], {}, script,
                lambda out: out == expected)
    return [os.path.join(BIN, program), str(scale), str(threads)], {}, None, None


def run_workload(spec, alloc, scale, threads, timeout):
    name, program = spec[0], spec[1]
    argv, extra, stdin, checker = workload_command(name, program, scale, threads)
    r = run_once(argv, alloc["preload"], timeout, dict(extra, **(alloc.get("env") or {})), stdin)
    if checker is not None and r["status"] == "FAIL" and r["rc"] == 0:
        r["status"] = "ok" if checker(r["stdout"]) else "FAIL"
    # frag reports the time of its work phase: its wall time holds a second of sampling
    if "time_s" in r["metrics"] and r["status"] == "ok":
        r["time"] = r["metrics"]["time_s"]
    else:
        r["time"] = r["wall"]
    del r["stdout"]
    return r


# ---------------------------------------------------------------------------------------------------
# Statistics.

def summarise(runs, reps=1):
    ok = [r for r in runs if r["status"] == "ok"]
    bad = [r for r in runs if r["status"] != "ok"]
    if not runs:
        return dict(status="not run", n=0)
    if bad:
        return dict(status=bad[0]["status"], n=len(ok), stderr=bad[0].get("stderr", ""))
    times = [r["time"] for r in ok]
    rss = [r["rss_kib"] / 1024.0 for r in ok]
    med = statistics.median(times)
    out = dict(status="ok", n=len(ok), time_median=med, time_min=min(times), time_max=max(times),
               rss_median=statistics.median(rss), rss_min=min(rss), rss_max=max(rss),
               noisy=len(times) > 1 and med > 0 and (max(times) - min(times)) / med > SPREAD,
               single=len(times) == 1 and reps > 1)
    keys = sorted({k for r in ok for k in r["metrics"]})
    out["metrics"] = {k: statistics.median([r["metrics"][k] for r in ok if k in r["metrics"]]) for k in keys}
    return out


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def add_ratios(table, names, key, ratio_key):
    """Each allocator's `key` relative to the baseline's on the same workload (table[workload][alloc])."""
    for w, row in table.items():
        base = row.get(BASELINE, {})
        for a in names:
            s = row.get(a)
            if s and s["status"] == "ok" and base.get("status") == "ok" and base[key] > 0:
                s[ratio_key] = s[key] / base[key]


# ---------------------------------------------------------------------------------------------------
# The sections of a run.

def best(row):
    """The allocator with the lowest median time on a workload (its table row), or "-"."""
    ok = [(s["time_median"], n) for n, s in row.items() if s.get("status") == "ok"]
    return min(ok)[1] if ok else "-"


def fmt_cell(s, key="time_median", ratio="time_ratio", unit="s"):
    if not s:
        return "-"
    if s["status"] != "ok":
        return s["status"]
    v = s[key]
    text = ("%.3f" % v if unit == "s" else "%.1f" % v)
    if ratio in s:
        text += " (%.2f)" % s[ratio]
    if unit == "s" and s.get("noisy"):
        text += "~"
    if unit == "s" and s.get("single"):
        text += "'"
    return text


def main_matrix(allocs, workloads, prof, reps):
    names = [a["name"] for a in allocs]
    width = 16
    say("== time: median wall seconds (ratio to %s); ~ marks a spread over %d%%, ' a single run ==" % (
        BASELINE, SPREAD * 100))
    say("%-12s" % "workload" + "".join("%*s" % (width, n) for n in names) + "  fastest")
    table = {}
    total = len(workloads) * reps * len(allocs)
    done = 0
    for spec in workloads:
        name, scale, threads = spec[0], spec[2][prof["index"]], spec[3]
        runs = {a["name"]: [] for a in allocs}
        cap = first = None
        for rep in range(reps):
            for a in allocs:
                done += 1
                prev = runs[a["name"]]
                if prev and prev[-1]["status"] != "ok":
                    continue  # a timeout or a failed self-check is not retried
                if prev and (prev[0]["wall"] > SLOW * first or (name in ONE_REP and prof["index"] < 2)):
                    continue  # far slower than the rest (or frag in a short profile): one run tells enough
                progress("[%d/%d] %s rep %d/%d %s" % (done, total, name, rep + 1, reps, a["name"]))
                timeout = cap if cap else prof["cap_min"] * prof["cap_factor"]
                r = run_workload(spec, a, scale, threads, timeout)
                if cap is None and r["status"] == "ok":
                    first = r["wall"]
                    cap = max(prof["cap_min"], prof["cap_factor"] * first)
                prev.append(r)
        table[name] = {n: summarise(runs[n], reps) for n in names}
        add_ratios({name: table[name]}, names, "time_median", "time_ratio")
        add_ratios({name: table[name]}, names, "rss_median", "rss_ratio")
        say("%-12s" % name + "".join("%*s" % (width, fmt_cell(table[name][n])) for n in names)
            + "  " + best(table[name]))
        for n in names:
            if table[name][n]["status"] == "FAIL":
                say("    %s FAILED its self-check: %s" % (n, table[name][n].get("stderr", "").strip()[:200]))
    geo = {n: geomean([table[w][n].get("time_ratio") for w in table]) for n in names}
    counted = {n: sum(1 for w in table if table[w][n].get("time_ratio")) for n in names}
    say("%-12s" % "geomean" + "".join("%*s" % (width, "%.2f" % geo[n] if geo[n] else "-") for n in names))
    say()
    say("== peak RSS: median MiB (ratio to %s) ==" % BASELINE)
    for w in table:
        say("%-12s" % w + "".join("%*s" % (width, fmt_cell(table[w][n], "rss_median", "rss_ratio", "MiB"))
                                  for n in names))
    rgeo = {n: geomean([table[w][n].get("rss_ratio") for w in table]) for n in names}
    say("%-12s" % "geomean" + "".join("%*s" % (width, "%.2f" % rgeo[n] if rgeo[n] else "-") for n in names))
    if "frag" in table:
        say()
        say("== memory release (frag): RSS above baseline / live data, after 0 / 0.25 / 0.5 / 1 s ==")
        for n in names:
            s = table["frag"][n]
            if s["status"] == "ok":
                m = s["metrics"]
                say("%-12s %s" % (n, " ".join("%6.2f" % m.get("rss_ratio_%ss" % t, float("nan"))
                                              for t in ("0", "0.25", "0.5", "1"))))
    say()
    return dict(table=table, geomean_time=geo, geomean_rss=rgeo, geomean_counted=counted)


def scaling(allocs, workloads, prof, reps):
    names = [a["name"] for a in allocs]
    threads = prof["threads"]
    say("== thread scaling: speed-up over 1 thread, same total work (2 cores: ideal is min(threads, 2)) ==")
    out = {}
    for spec in [w for w in workloads if w[4]]:
        name, scale = spec[0], spec[2][prof["index"]]
        res = {n: {} for n in names}
        say("%-12s %-12s" % (name, "threads") + "".join("%10d" % t for t in threads))
        for rep in range(reps):
            for t in threads:
                for a in allocs:
                    cur = res[a["name"]].setdefault(t, [])
                    if cur and cur[-1]["status"] != "ok":
                        continue
                    progress("scaling %s %d threads rep %d/%d %s" % (name, t, rep + 1, reps, a["name"]))
                    cur.append(run_workload(spec, a, scale, t, prof["cap_min"] * prof["cap_factor"]))
        out[name] = {}
        for n in names:
            summ = {t: summarise(res[n][t]) for t in threads}
            one = summ[threads[0]]
            row = {}
            for t in threads:
                s = summ[t]
                row[t] = dict(status=s["status"], time=s.get("time_median"), rss=s.get("rss_median"),
                              speedup=(one["time_median"] / s["time_median"]
                                       if s["status"] == "ok" and one["status"] == "ok" else None))
            out[name][n] = row
            say("%-12s %-12s" % ("", n) + "".join(
                "%10s" % ("%.2f" % row[t]["speedup"] if row[t]["speedup"] else row[t]["status"]) for t in threads))
    say()
    return out


def callgrind_totals(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    return None


def instructions(allocs, prof):
    say("== instructions per malloc/free pair (callgrind, loop included, start-up excluded) ==")
    vg = shutil.which("valgrind")
    if not vg:
        say("valgrind is not installed: skipped (apt-get install valgrind)")
        say()
        return {"skipped": "valgrind not installed"}
    iters = prof["instr_iterations"]
    out = {}
    for a in allocs:
        progress("callgrind %s" % a["name"])
        with tempfile.TemporaryDirectory() as d:
            cg = os.path.join(d, "cg.out")
            argv = [vg, "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=measure",
                    "--callgrind-out-file=" + cg, os.path.join(BIN, "instr"), str(iters)]
            r = run_once(argv, a["preload"], 300, a.get("env"))
            total = callgrind_totals(cg) if r["status"] == "ok" and os.path.exists(cg) else None
        if total:
            out[a["name"]] = dict(status="ok", per_pair=total / (64.0 * iters), instructions=total)
            say("%-12s %8.1f" % (a["name"], out[a["name"]]["per_pair"]))
        else:
            out[a["name"]] = dict(status=r["status"] if r["status"] != "ok" else "no count",
                                  stderr=r["stderr"][-200:])
            say("%-12s %8s" % (a["name"], out[a["name"]]["status"]))
    say()
    return out


def classic(allocs, prof, reps):
    """binary-trees under the lab versions (built by the classic part) beside the preloaded allocators, at
    a small depth every version finishes and at the profile's depth (where one far slower than the
    fastest at the small depth is not run)."""
    cols = []
    for label, v in LAB_VERSIONS:
        path = os.path.join(BUILD, "lab", "binarytrees-v%d" % v)
        if os.path.exists(path):
            cols.append((label, lambda d, path=path: [path, str(d)], None))
    for a in allocs:
        if a["name"] in ("glibc", "memkit", "memkit-sbrk", BASELINE):
            cols.append((a["name"], lambda d: [os.path.join(BIN, "binarytrees"), str(d), "1"], a["preload"]))
    out = {}
    for depth in prof["classic_depths"]:
        say("== classic: binary-trees depth %d, one thread: median seconds, peak RSS MiB ==" % depth)
        runs = {c[0]: [] for c in cols}
        first = out[min(out)] if out else {}
        fastest = min([s["time_median"] for s in first.values() if s["status"] == "ok"] or [0])
        for rep in range(reps):
            for label, argv, preload in cols:
                prev = runs[label]
                if prev and prev[-1]["status"] != "ok":
                    continue
                small = first.get(label)
                if small and (small["status"] != "ok" or small["time_median"] > SLOW * 4 * fastest):
                    prev.append(dict(status="not run (slow)"))
                    continue
                progress("classic depth %d %s rep %d/%d" % (depth, label, rep + 1, reps))
                # lab versions 1 and 2 may never give memory back: cap their address space, fail fast
                r = run_once(argv(depth), preload, prof["cap_min"] * 2, limit_as=None if preload else 16 << 30)
                if r["status"] == "FAIL" and r["rc"] == 0 and not preload:
                    r["status"] = "ok"  # the lab programs print the benchmark's own lines, not "ok"
                r["time"] = r["wall"]
                prev.append(r)
        out[depth] = {}
        for label, _, _ in cols:
            s = summarise(runs[label], reps)
            out[depth][label] = s
            if s["status"] == "ok":
                say("%-18s %8.3f%s %8.1f" % (label, s["time_median"], "~" if s["noisy"] else " ", s["rss_median"]))
            else:
                say("%-18s %8s" % (label, s["status"]))
        say()
    return dict(depths=prof["classic_depths"], results=out)


# ---------------------------------------------------------------------------------------------------
# Reports.

def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), kernel=platform.release())


def markdown(res):
    L = []
    p = L.append
    m = res["machine"]
    p("# memkit benchmark results (%s profile)" % res["profile"])
    p("")
    p("Measured %s on %s, %d cores, Linux %s. Reproduce with `%s`." % (
        res["date"], m["cpu"], m["cores"], m["kernel"], res["command"]))
    p("")
    p("| allocator | version | preloaded |")
    p("|---|---|---|")
    for a in res["allocators"]:
        p("| %s | %s | %s |" % (a["name"], a["version"],
                                "`%s`" % a.get("shown", a["preload"]) if a["preload"] else "(none)"))
    for n in res["notes"]:
        p("")
        p("Note: %s." % n)
    names = [a["name"] for a in res["allocators"]]
    if "main" in res:
        t = res["main"]["table"]
        p("")
        p("## Time")
        p("")
        p("Median wall time in seconds over %d interleaved runs, and in brackets the ratio to %s "
          "(below 1 is faster). `~` marks a spread (max - min) over %d%% of the median, `'` a single run "
          "(an allocator over %g times slower than the first on its first run, and frag outside the full "
          "profile, run once). "
          "Chart: `bench/results/%s`." % (res["reps"], BASELINE, SPREAD * 100, SLOW, chart_name("time", res["profile"])))
        p("")
        p("| workload | " + " | ".join(names) + " | fastest |")
        p("|---|" + "---:|" * len(names) + "---|")
        for w in t:
            p("| %s | " % w + " | ".join(fmt_cell(t[w].get(n)) for n in names) + " | %s |" % best(t[w]))
        g = res["main"]["geomean_time"]
        cnt = res["main"]["geomean_counted"]
        p("| **geomean ratio** | " + " | ".join(("**%.2f**" % g[n] + ("" if cnt[n] == len(t) else " (%d of %d)" % (cnt[n], len(t))))
                                               if g.get(n) else "-" for n in names) + " | %s |"
          % min(((v, n) for n, v in g.items() if v and cnt[n] == len(t)), default=(0, "-"))[1])
        p("")
        p("![time ratio per workload](%s)" % chart_name("time", res["profile"]))
        p("")
        p("## Peak RSS")
        p("")
        p("Median peak resident set (MiB, the child's `ru_maxrss`), ratio to %s in brackets. "
          "Chart: `bench/results/%s`." % (BASELINE, chart_name("rss", res["profile"])))
        p("")
        p("| workload | " + " | ".join(names) + " |")
        p("|---|" + "---:|" * len(names))
        for w in t:
            p("| %s | " % w + " | ".join(fmt_cell(t[w].get(n), "rss_median", "rss_ratio", "MiB") for n in names) + " |")
        g = res["main"]["geomean_rss"]
        p("| **geomean ratio** | " + " | ".join("**%.2f**" % g[n] if g.get(n) else "-" for n in names) + " |")
        p("")
        p("![peak RSS ratio per workload](%s)" % chart_name("rss", res["profile"]))
        if "frag" in t:
            p("")
            p("## Memory given back (frag)")
            p("")
            p("RSS above the starting baseline divided by the live data, after the program freed 90% of "
              "what it allocated (target: 1.10 or less after 1 s).")
            p("")
            p("| allocator | 0 s | 0.25 s | 0.5 s | 1 s | live MiB |")
            p("|---|---:|---:|---:|---:|---:|")
            for n in names:
                s = t["frag"].get(n)
                if s and s["status"] == "ok":
                    mm = s["metrics"]
                    p("| %s | %s | %.1f |" % (n, " | ".join("%.2f" % mm.get("rss_ratio_%ss" % k, float("nan"))
                                                           for k in ("0", "0.25", "0.5", "1")), mm.get("live_mib", 0)))
        p("")
        p("## Spread")
        p("")
        p("| workload | allocator | time median | min | max | RSS median | min | max |")
        p("|---|---|---:|---:|---:|---:|---:|---:|")
        for w in t:
            for n in names:
                s = t[w].get(n)
                if s and s["status"] == "ok":
                    p("| %s | %s | %.4f | %.4f | %.4f | %.1f | %.1f | %.1f |" % (
                        w, n, s["time_median"], s["time_min"], s["time_max"], s["rss_median"], s["rss_min"],
                        s["rss_max"]))
                elif s:
                    p("| %s | %s | %s | | | | | |" % (w, n, s["status"]))
    if "scaling" in res:
        p("")
        p("## Thread scaling")
        p("")
        p("Speed-up over the same allocator on 1 thread, same total work (the machine has %d cores, so the "
          "ideal is min(threads, %d); more threads than cores is oversubscription). prodcons runs "
          "threads/2 producer/consumer pairs; on 1 thread, one thread plays both parts. Chart: `bench/results/%s`."
          % (m["cores"], m["cores"], chart_name("scaling", res["profile"])))
        for w, rows in res["scaling"].items():
            th = list(next(iter(rows.values())).keys())
            p("")
            p("| %s | " % w + " | ".join("%s thr" % x for x in th) + " | time at %s thr (s) |" % th[-1])
            p("|---|" + "---:|" * (len(th) + 1))
            for n, row in rows.items():
                last = row[th[-1]]
                p("| %s | " % n + " | ".join("%.2f" % row[x]["speedup"] if row[x]["speedup"] else row[x]["status"]
                                             for x in th) + " | %s |" % ("%.3f" % last["time"] if last["time"] else "-"))
        p("")
        p("![thread scaling](%s)" % chart_name("scaling", res["profile"]))
    if "instr" in res:
        p("")
        p("## Instructions per malloc/free pair")
        p("")
        ins = res["instr"]
        if "skipped" in ins:
            p("Skipped: %s." % ins["skipped"])
        else:
            p("`valgrind --tool=callgrind` on `build/bench/instr %d` (64 blocks of 8-512 bytes, freed in reverse "
              "order); instructions of `measure()` and all it calls, divided by the pairs; a warm-up loop "
              "before it is not counted." % res["instr_iterations"])
            p("")
            p("| allocator | instructions per pair |")
            p("|---|---:|")
            for n, s in ins.items():
                p("| %s | %s |" % (n, "%.1f" % s["per_pair"] if s["status"] == "ok" else s["status"]))
    if "heapscale" in res:
        L += heapscale.markdown(res["heapscale"], chart_name("heapscale", res["profile"]))
    if "classic" in res:
        c = res["classic"]
        p("")
        p("## Classic: binary-trees")
        p("")
        p("binary-trees, one thread: the lab versions (one binary each, `build/lab/binarytrees-vN DEPTH`: v0 the "
          "C library, v1 one `mmap` per call, v2 a bump pointer, v3 a free list of 32-byte cells, v4 the engine) "
          "beside the same program (`build/bench/binarytrees DEPTH 1`) under preloaded allocators. A version "
          "far slower than the fastest at the small depth is not run at the large one.")
        for depth in c["depths"]:
            p("")
            p("| depth %s | median s | min | max | peak RSS MiB |" % depth)
            p("|---|---:|---:|---:|---:|")
            for label, s in c["results"][depth].items():
                if s["status"] == "ok":
                    p("| %s | %.3f | %.3f | %.3f | %.1f |" % (label, s["time_median"], s["time_min"],
                                                             s["time_max"], s["rss_median"]))
                else:
                    p("| %s | %s | | | |" % (label, s["status"]))
    p("")
    return "\n".join(L)


def chart_name(kind, profile):
    return "bench-%s-%s.svg" % (kind, profile)


def write_results(res, outdir, docs):
    os.makedirs(outdir, exist_ok=True)
    prof = res["profile"]
    svgs = {}
    if "main" in res:
        names = [a["name"] for a in res["allocators"]]
        t = res["main"]["table"]
        svgs["time"] = charts.grouped_bars(
            "Wall time relative to %s (lower is better)" % BASELINE, list(t), names,
            lambda w, n: t[w][n].get("time_ratio"), BASELINE, res["command"])
        svgs["rss"] = charts.grouped_bars(
            "Peak RSS relative to %s (lower is better)" % BASELINE, list(t), names,
            lambda w, n: t[w][n].get("rss_ratio"), BASELINE, res["command"])
    if "scaling" in res:
        svgs["scaling"] = charts.scaling_lines(
            "Speed-up over 1 thread, same total work (%d cores)" % res["machine"]["cores"], res["scaling"],
            res["command"], res["machine"]["cores"])
    if "heapscale" in res:
        svgs["heapscale"] = heapscale.chart_svg(res["heapscale"], res["command"])
    # bench/results/bench-<kind>-<profile>.svg; the full profile's also as docs/img/bench-<kind>.svg
    for kind, text in svgs.items():
        with open(os.path.join(outdir, chart_name(kind, prof)), "w") as f:
            f.write(text)
        if docs:
            os.makedirs(os.path.join(ROOT, "docs", "img"), exist_ok=True)
            with open(os.path.join(ROOT, "docs", "img", "bench-%s.svg" % kind), "w") as f:
                f.write(text)
    md = markdown(res)
    js = json.dumps(res, indent=1, sort_keys=False, default=str)
    for base in ("latest", prof):
        with open(os.path.join(outdir, base + ".md"), "w") as f:
            f.write(md)
        with open(os.path.join(outdir, base + ".json"), "w") as f:
            f.write(js + "\n")
    say("results: %s (and .json, charts: %s)" % (os.path.relpath(os.path.join(outdir, "latest.md"), ROOT),
                                                 ", ".join(chart_name(k, prof) for k in svgs)))


def load_results(path):
    """A results file as run() made it: JSON turned the integer keys (threads, depths) into strings."""
    with open(path) as f:
        res = json.load(f)
    for w, rows in res.get("scaling", {}).items():
        for n, row in rows.items():
            rows[n] = {int(t): p for t, p in row.items()}
    if "classic" in res:
        res["classic"]["results"] = {int(d): r for d, r in res["classic"]["results"].items()}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    ap.add_argument("--only", default="main,scaling,instr,classic,heapscale",
                    help="comma-separated sections: main, scaling, instr, classic, heapscale")
    ap.add_argument("--allocators", default="", help="comma-separated names (default: all found)")
    ap.add_argument("--workloads", default="", help="comma-separated names (default: all)")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default: the profile's)")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install missing peers")
    ap.add_argument("--docs", action="store_true", help="also copy the charts to docs/img (default with full)")
    ap.add_argument("--out", default=RESULTS, help="directory for the reports and charts (default bench/results)")
    ap.add_argument("--report", metavar="JSON", help="run nothing: write the report and charts again from a "
                    "results file (e.g. bench/results/full.json)")
    args = ap.parse_args()
    global BASELINE
    if args.report:
        res = load_results(args.report)
        BASELINE = res.get("baseline", "mimalloc")
        write_results(res, args.out, args.docs or (res["profile"] == "full" and args.out == RESULTS))
        return
    prof = dict(PROFILES[args.profile], index=SCALE_INDEX[args.profile])
    sections = [s for s in args.only.split(",") if s]
    notes = []
    start = time.time()
    allocs = find_allocators(not args.no_install, set(filter(None, args.allocators.split(","))), notes)
    if "instr" in sections and not shutil.which("valgrind") and not args.no_install:
        install_packages(["valgrind"], notes)
    for n in notes:
        say("note: " + n)
    if any(a["name"] == "mimalloc3" for a in allocs):
        BASELINE = "mimalloc3"
    if not any(a["name"] == BASELINE for a in allocs):
        say("note: %s is missing: ratios are left out" % BASELINE)
    wanted = set(filter(None, args.workloads.split(",")))
    workloads = [w for w in WORKLOADS if not wanted or w[0] in wanted]
    missing = [w[1] for w in workloads if w[1] not in ("python", "sqlite") and not os.path.exists(os.path.join(BIN, w[1]))]
    if missing:
        sys.exit("run.py: workloads not built (run `make bench-workloads`): " + " ".join(missing))
    if any(w[1] == "sqlite" for w in workloads) and not shutil.which("sqlite3"):
        notes.append("sqlite skipped: sqlite3 is not installed")
        workloads = [w for w in workloads if w[1] != "sqlite"]
    reps = args.reps or prof["reps"]
    command = "make bench" + ("" if args.profile == "quick" else " PROFILE=" + args.profile)
    extra = [a for a in sys.argv[1:] if not a.startswith("--profile") and a != args.profile]
    if extra:
        command = "python3 bench/run.py --profile %s %s" % (args.profile, " ".join(extra))
    res = dict(profile=args.profile, command=command, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               machine=machine(), allocators=allocs, notes=notes, reps=reps, baseline=BASELINE,
               instr_iterations=prof["instr_iterations"],
               workloads=[dict(name=w[0], scale=w[2][prof["index"]], threads=w[3], summary=w[5]) for w in workloads])
    say("memkit bench, %s profile: %d allocators (%s), %d workloads, %d reps" % (
        args.profile, len(allocs), ", ".join(a["name"] for a in allocs), len(workloads), reps))
    say()
    res["section_s"] = {}
    for sec, fn in (("main", lambda: main_matrix(allocs, workloads, prof, reps)),
                    ("scaling", lambda: scaling(allocs, workloads, prof, args.reps or prof["scaling_reps"])),
                    ("instr", lambda: instructions(allocs, prof)),
                    ("classic", lambda: classic(allocs, prof, reps)),
                    ("heapscale", lambda: heapscale.section(allocs, prof["index"], reps, BIN, run_once, say, progress))):
        if sec in sections:
            t0 = time.time()
            res[sec] = fn()
            res["section_s"][sec] = round(time.time() - t0, 1)
    res["elapsed_s"] = round(time.time() - start, 1)
    write_results(res, args.out, args.docs or (args.profile == "full" and args.out == RESULTS))
    say("elapsed %.0f s (%s)" % (res["elapsed_s"], ", ".join("%s %.0f s" % kv for kv in res["section_s"].items())))
    failed = [(w, n) for w, row in res.get("main", {}).get("table", {}).items()
              for n, s in row.items() if s["status"] == "FAIL"]
    if failed:
        say("self-check failures: " + ", ".join("%s under %s" % f for f in failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
