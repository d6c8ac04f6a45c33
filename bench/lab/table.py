#!/usr/bin/env python3
"""Measures binary-trees over every lab allocator version and prints a Markdown table.

    python3 bench/lab/table.py [--depth D] [--v1-depth D] [--repeat N] [--out FILE] [--target NAME]
    python3 bench/lab/table.py --once [--depth D]      (`make lab`: each version once, no strace)

Wall, user and system time and peak RSS come from the child's rusage, read by the small wrapper
build/bench/measure (bench/tools/measure.c, the benchmark runner's launcher), median of --repeat runs.  System calls are counted in a separate run under `strace -f -c -e trace=memory`
(strace slows the run, so its time is not used).  The depth is the smallest from 16 up at which
version 0 (the C library) takes at least 1 s of CPU time (median of 3 runs), unless --depth is given.  Version 1 (one mmap per
node) cannot finish that depth in reasonable time, so it runs at the largest depth, from 8 up, that it
finishes in under 3 s; the table says which depth each row used.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import run as bench_run  # noqa: E402  (bench/run.py: the runner's description of the machine)

MEASURE = None
NAMES = {0: "C library malloc/free", 1: "mmap per call", 2: "bump pointer pool",
         3: "32-byte cell free list", 4: "memkit engine"}


def allocations(depth):
    """my_malloc calls binary-trees makes at this depth (stretch, long-lived and iterated trees)."""
    total = (2 ** (depth + 2) - 1) + (2 ** (depth + 1) - 1)
    for d in range(4, depth + 1, 2):
        total += 2 ** (depth - d + 4) * (2 ** (d + 1) - 1)
    return total


def run_once(binary, depth, output=None):
    """Runs the binary under bench/tools/measure.c's launcher (no preload); returns (wall s, user s,
    sys s, peak RSS KiB).  Raises on a non-zero exit.  output: a list that gets the program's stdout."""
    with tempfile.NamedTemporaryFile("r", suffix=".measure") as out:
        run = subprocess.run([MEASURE, out.name, "-", binary, str(depth)], check=True,
                             stdout=subprocess.PIPE if output is not None else subprocess.DEVNULL, text=True)
        wall, rss, status, user, system = out.read().split()
    if int(status) != 0:
        raise RuntimeError(f"{binary} {depth} exited with status {status}")
    if output is not None:
        output.append(run.stdout)
    return float(wall), float(user), float(system), int(rss)


def once(bins, depth):
    """`make lab`: each version once at one small depth; what it printed last, its time and peak RSS."""
    print(f"binary-trees at depth {depth}, one run each (the measured table: make lab-table)")
    print(f"{'version':8} {'allocator':24} {'wall s':>7} {'user s':>7} {'sys s':>7} {'RSS MiB':>8}  last line printed")
    for v, b in sorted(bins.items()):
        out = []
        wall, user, system, rss = run_once(b, depth, out)
        last = (out[0].strip().splitlines() or [""])[-1].expandtabs(1)
        print(f"v{v:<7} {NAMES[v]:24} {wall:7.3f} {user:7.3f} {system:7.3f} {rss / 1024:8.1f}  {last}")


def measure(binary, depth, repeat):
    runs = [run_once(binary, depth) for _ in range(repeat)]
    return {"wall": statistics.median(r[0] for r in runs), "user": statistics.median(r[1] for r in runs),
            "sys": statistics.median(r[2] for r in runs), "rss_kib": max(r[3] for r in runs)}


def count_syscalls(binary, depth):
    """Memory-management system calls of one run, by name, from strace's summary."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        cmd = ["strace", "-f", "-c", "-e", "trace=memory", "-o", out.name, binary, str(depth)]
        if subprocess.run(["strace", "--seccomp-bpf", "-f", "-e", "trace=none", "true"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            cmd.insert(1, "--seccomp-bpf")  # only the traced calls stop the child
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        counts = {}
        for line in out.read().splitlines():
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] = int(m.group(1))
        return counts


def pick_depth(binary, start, limit_s, upper):
    """Largest depth from `start` up (at most `upper`) that runs in under limit_s seconds."""
    best = None
    for depth in range(start, upper + 1):
        if run_once(binary, depth)[0] >= limit_s:
            break
        best = depth
    return best


def command_args():
    """The arguments as the table's Command line shows them (--target names the make target instead)."""
    shown, skip = [], False
    for a in sys.argv[1:]:
        if skip or a.startswith("--target"):
            skip = a == "--target"
            continue
        shown.append(a)
    return "".join(" " + a for a in shown)


def machine():
    m = bench_run.machine()
    return f"{m['cpu']}, {m['cores']} CPUs, Linux {m['kernel']}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bindir", default="build/lab")
    ap.add_argument("--depth", type=int)
    ap.add_argument("--v1-depth", type=int)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--target", default="lab-table", help="the make target the table's Command line names")
    ap.add_argument("--once", action="store_true", help="each version once at --depth (default 10), no strace")
    args = ap.parse_args()
    if not args.once and not shutil.which("strace"):
        sys.exit("table.py: strace is needed to count system calls (apt-get install strace)")
    global MEASURE
    MEASURE = os.path.join(os.path.dirname(os.path.abspath(args.bindir)), "bench", "measure")
    if not os.access(MEASURE, os.X_OK):
        sys.exit(f"table.py: {MEASURE} is missing (make lab)")
    bins = {v: os.path.join(args.bindir, f"binarytrees-v{v}") for v in NAMES}
    bins = {v: b for v, b in bins.items() if os.access(b, os.X_OK)}
    if 0 not in bins:
        sys.exit("table.py: build/lab/binarytrees-v0 is missing (make lab)")

    if args.once:
        once(bins, max(args.depth or 10, 6))
        return
    depth = args.depth
    if depth is None:
        depth = 16
        # CPU time, not wall time: it is what the depth decides, and other load on the machine
        # does not move it.
        while depth < 22 and statistics.median(sum(run_once(bins[0], depth)[1:3]) for _ in range(3)) < 1.0:
            depth += 1
    depth = max(depth, 6)  # binarytrees.c runs at least depth 6 (min depth 4 + 2)
    depths = {v: depth for v in bins}
    notes = {}
    if 1 in bins:
        if args.v1_depth:
            args.v1_depth = max(args.v1_depth, 6)
            depths[1] = args.v1_depth
            notes[1] = f"run at depth {args.v1_depth} (--v1-depth)"
        else:
            v1 = pick_depth(bins[1], 8, 3.0, depth)
            if v1 is None:
                del bins[1]
                notes[1] = "left out: it did not finish depth 8 in 3 s"
            elif v1 < depth:
                depths[1] = v1
                notes[1] = (f"run at depth {v1}, not {depth}: one mmap and one munmap per node; "
                            f"at depth {v1 + 1} it already took over 3 s")

    rows = []
    for v, b in sorted(bins.items()):
        m = measure(b, depths[v], args.repeat)
        calls = count_syscalls(b, depths[v])
        other = sum(n for name, n in calls.items() if name not in ("mmap", "munmap", "brk"))
        rows.append((v, m, calls, other))
        print(f"table.py: v{v} depth {depths[v]}: {m['wall']:.3f} s", file=sys.stderr)

    lines = [
        f"# binary-trees over the lab allocators",
        "",
        f"Machine: {machine()}.  Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Command: `make {args.target}` (`python3 bench/lab/table.py{command_args()}`).",
        f"Times are the median of {args.repeat} runs (wall, user, system); peak RSS is the largest of them;",
        "system calls come from one more run under `strace -f -c -e trace=memory` (not timed).",
        "",
        "| version | allocator | depth | my_malloc calls | wall s | user s | sys s | peak RSS MiB | mmap | munmap | brk | other memory calls |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v, m, calls, other in rows:
        lines.append(f"| v{v} | {NAMES[v]} | {depths[v]} | {allocations(depths[v])} | {m['wall']:.3f} | {m['user']:.3f} | {m['sys']:.3f} | "
                     f"{m['rss_kib'] / 1024:.1f} | {calls.get('mmap', 0)} | {calls.get('munmap', 0)} | "
                     f"{calls.get('brk', 0)} | {other} |")
    missing = [v for v in NAMES if v not in bins and v not in notes]
    if notes or missing:
        lines.append("")
    for v, note in sorted(notes.items()):
        lines.append(f"- v{v}: {note}.")
    for v in missing:
        lines.append(f"- v{v}: left out: {os.path.join(args.bindir, f'binarytrees-v{v}')} is not built.")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
