#!/usr/bin/env python3
"""The misuse suite's runner (docs/hardening.md).

Runs every case of the suite (CASES below: 34 classes at sizes 8, 4096 and 262144, 14 without a size:
116 in all) RUNS times under each allocator given, and calls a case caught when every run was caught (see
misuse.h: killed by a signal, or "harmless: ..."); a case caught in some runs only is shown as "~" and
not counted.

  misuse.py [--runs N] [--lib NAME=PATH ...] [--table]       the table of caught cases on stdout
  misuse.py --doc docs/hardening.md ...                      the same, written between the markers there
  misuse.py --check                                          make test: floors and expected catches

--lib NAME=PATH preloads PATH (PATH "none": the C library's malloc); without --lib: glibc, memkit
(build/libmemkit.so), memkit-secure (build/libmemkit-secure.so) and the peers of PEERS_DIR
(../shared/peers) that are there.  --check runs the default and the secure build only and prints, under
the PLAN rule, one case per build for its floor (FLOORS) and one per case that tests/misuse/expected.txt
says the build catches (a catch lost is a regression)."""
import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(ROOT, "build", "tests", "misuse")
SIZES = (8, 4096, 262144)

SIZED = [("overflow", f"{d}-{k}-{h}") for d in ("over", "under") for k in ("1", "32", "1M")
         for h in ("store", "memcpy")]
SIZED += [("free", c) for c in ("df-immediate", "df-delayed", "df-interleaved", "df-after-reuse",
                                "df-reused-between", "df-realloc", "inv-stack", "inv-alloca",
                                "inv-unaligned", "inv-past", "inv-middle")]
SIZED += [("uaf", c) for c in ("uaf-write", "uaf-write-reused", "uaf-read", "uaf-fresh", "reuse-same",
                               "reuse-smaller", "reuse-realloc", "exec")]
SIZED += [("cxx", c) for c in ("newarr-delete", "new-deletearr", "sized-delete")]
UNSIZED = [("free", c) for c in ("inv-global", "inv-far", "inv-several")]
UNSIZED += [("zero", c) for c in ("zero-read", "zero-write", "zero-read-freed", "zero-write-freed",
                                  "huge-malloc", "huge-calloc", "huge-realloc", "huge-memalign")]
UNSIZED += [("cxx", c) for c in ("strarr-delete", "str-deletearr", "new-huge")]
CASES = [(prog, c, n) for prog, c in SIZED for n in SIZES] + [(prog, c, None) for prog, c in UNSIZED]

# The families of the summary table, by case-name prefix.
FAMILIES = [("overflow/underflow", ("over-", "under-")), ("double free", ("df-",)),
            ("invalid free", ("inv-",)), ("use after free", ("uaf-",)), ("reuse", ("reuse-",)),
            ("zero-size", ("zero-",)), ("impossible requests, exec", ("huge-", "exec", "new-huge")),
            ("C++ new/delete", ("newarr-", "new-deletearr", "sized-delete", "strarr-", "str-deletearr"))]
FLOORS = {"memkit": 68, "memkit-secure": 100}
TIMEOUT = 20


def name(case):
    prog, c, n = case
    return c if n is None else f"{c}/{n}"


def family(case_name):
    for fam, prefixes in FAMILIES:
        if any(case_name.startswith(p) for p in prefixes):
            return fam
    raise ValueError(case_name)


def run_once(case, lib):
    prog, c, n = case
    argv = [os.path.join(BIN, prog), c] + ([str(n)] if n is not None else [])
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib != "none":
        env["LD_PRELOAD"] = lib
    try:
        r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "hang", ""
    out = r.stdout.decode(errors="replace").strip().splitlines()
    err = r.stderr.decode(errors="replace").strip().splitlines()
    last_err = err[-1] if err else ""
    if r.returncode < 0:
        return "caught", last_err or f"signal {-r.returncode}"
    if r.returncode == 0 and out and out[-1].startswith("harmless:"):
        return "caught", out[-1]
    if r.returncode == 0 and out and out[-1] == "got away":
        return "missed", ""
    return "error", f"exit {r.returncode}: {(out or [''])[-1]} {last_err}"


def run_case(case, lib, runs):
    results = [run_once(case, lib) for _ in range(runs)]
    kinds = {k for k, _ in results}
    why = next((w for k, w in results if w), "")
    if kinds == {"caught"}:
        return "caught", why
    if "error" in kinds:
        return "error", next(w for k, w in results if k == "error")
    if "caught" in kinds:
        return "sometimes", why
    return ("hang" if "hang" in kinds else "missed"), why


def run_all(libs, runs, jobs):
    """{lib name: {case name: (verdict, why)}}"""
    table = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for lname, path in libs:
            futures = {name(c): pool.submit(run_case, c, path, runs) for c in CASES}
            table[lname] = {k: f.result() for k, f in futures.items()}
    return table


def default_libs():
    libs = [("glibc", "none")]
    for lname, rel in (("memkit", "build/libmemkit.so"), ("memkit-secure", "build/libmemkit-secure.so")):
        if os.path.exists(os.path.join(ROOT, rel)):
            libs.append((lname, os.path.join(ROOT, rel)))
    peers = os.environ.get("PEERS_DIR", os.path.join(ROOT, "..", "shared", "peers"))
    for lname, f in (("snmalloc-checks", "libsnmallocshim-checks.so"), ("mimalloc3-secure", "libmi3-secure.so")):
        if os.path.exists(os.path.join(peers, f)):
            libs.append((lname, os.path.abspath(os.path.join(peers, f))))
    return libs


MARK = {"caught": "yes", "missed": "-", "sometimes": "~", "hang": "hang", "error": "error"}


def render(table, runs):
    libs = list(table)
    lines = [f"Each case run {runs} times per allocator; caught = caught in every run (`~`: in some only, "
             "not counted).", "",
             "| family | cases | " + " | ".join(libs) + " |", "|---|---:|" + "---:|" * len(libs)]
    for fam, _ in FAMILIES:
        names = [name(c) for c in CASES if family(name(c)) == fam]
        lines.append(f"| {fam} | {len(names)} | " +
                     " | ".join(str(sum(table[l][k][0] == "caught" for k in names)) for l in libs) + " |")
    lines.append(f"| **total** | {len(CASES)} | " +
                 " | ".join(f"**{sum(v[0] == 'caught' for v in table[l].values())}**" for l in libs) + " |")
    lines += ["", "<details><summary>Every case</summary>", "",
              "| case | " + " | ".join(libs) + " |", "|---|" + "---|" * len(libs)]
    for c in CASES:
        k = name(c)
        lines.append(f"| {k} | " + " | ".join(MARK[table[l][k][0]] for l in libs) + " |")
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def write_doc(path, text):
    begin, end = "<!-- misuse-table begin -->", "<!-- misuse-table end -->"
    doc = open(path).read()
    if begin not in doc or end not in doc:
        sys.exit(f"{path}: no {begin} ... {end} markers")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    open(path, "w").write(head + begin + "\n" + text + end + tail)


def read_expected():
    """{lib name: set of case names it must catch}"""
    exp = {}
    with open(os.path.join(HERE, "expected.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) == 2:
                exp.setdefault(line[0], set()).add(line[1])
    return exp


def check(runs, jobs):
    exp = read_expected()
    libs = [(l, os.path.join(ROOT, rel)) for l, rel in (("memkit", "build/libmemkit.so"),
                                                        ("memkit-secure", "build/libmemkit-secure.so"))]
    print("PLAN", sum(1 + len(exp.get(l, ())) for l, _ in libs), flush=True)
    table = run_all(libs, runs, jobs)
    for lname, _ in libs:
        res = table[lname]
        caught = sum(v[0] == "caught" for v in res.values())
        floor = FLOORS[lname]
        print(f"{'PASS' if caught >= floor else 'FAIL'} misuse-{lname}-floor ({caught} of {len(CASES)} "
              f"caught, floor {floor})")
        for k in sorted(exp.get(lname, ())):
            v, why = res.get(k, ("unknown case", ""))
            print(f"PASS misuse-{lname} {k}" if v == "caught" else f"FAIL misuse-{lname} {k} ({v}: {why})")
        extra = sorted(k for k, v in res.items() if v[0] == "caught" and k not in exp.get(lname, ()))
        if extra:
            print(f"note: {lname} now also catches {' '.join(extra)} (add them to tests/misuse/expected.txt)")
        for k, (v, why) in sorted(res.items()):
            if v in ("error", "hang"):
                print(f"note: {lname} {k}: {v} {why}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--lib", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--doc", metavar="FILE")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--why", action="store_true", help="print what stopped each case")
    a = ap.parse_args()
    if a.check:
        check(a.runs, a.jobs)
        return
    libs = [tuple(x.split("=", 1)) for x in a.lib] or default_libs()
    table = run_all(libs, a.runs, a.jobs)
    text = render(table, a.runs)
    sys.stdout.write(text)
    if a.why:
        for l in table:
            for k, (v, why) in table[l].items():
                print(f"{l:16} {k:28} {v:9} {why}")
    if a.doc:
        write_doc(a.doc, text)


if __name__ == "__main__":
    main()
