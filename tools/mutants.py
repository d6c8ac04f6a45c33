#!/usr/bin/env python3
"""Mutation check: do the tests catch the bugs they were written against?

Each mutant in tools/mutants.txt (format at its top) is a small deliberate bug: one or more exact
substitutions, each of which must match exactly once.  For each mutant this copies the working tree's
files (tracked, and untracked ones git does not ignore; never build/) into a temporary directory, applies
the substitutions, builds the mutant's test programs there (make -j2) and runs them with tests/run-all.sh.
A mutant is KILLED when a test fails, SURVIVES when they all pass.  It is an ERROR when a pattern does not
match exactly once (the list is out of date with the code) or the mutated tree does not build.

    tools/mutants.py                 every mutant (make mutants)
    MUTANTS=a,b tools/mutants.py     only those (names, or prefixes of names)
    tools/mutants.py --check         only verify that every pattern still matches once (seconds)
    tools/mutants.py --list          names, files and tests

Before the mutants, the unmutated tree is built and its tests run once (--no-baseline skips it): a test
that fails without any mutant would count every mutant as killed.  Exit status: 0 when every mutant was
killed, 1 when one survived or was an error, 2 when the baseline fails.  Logs of survivors and errors go to
build/mutants/NAME/, a summary to build/mutants/summary.txt.  Environment: MUTANTS_JOBS (make -j, default
2), MUTANTS_TIMEOUT (seconds per test program, default 120; infinite loops must end as a kill), TMPDIR.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                      cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout.strip()
LIST = os.path.join(ROOT, "tools", "mutants.txt")
OUT = os.path.join(ROOT, "build", "mutants")


class Mutant:
    def __init__(self, name, line):
        self.name, self.line = name, line
        self.tests, self.about, self.subs = [], "", []   # subs: (file, search, replace, line)
        self.cases = []   # when given, only a failure of one of these cases (name prefixes) kills it


def parse(path):
    """The list: `mutant NAME`, `tests PROG...`, `cases NAME...`, `about TEXT`, then per substitution `in FILE` and a
    block <<<< search ==== replacement >>>> whose lines are taken verbatim."""
    mutants, cur, file = [], None, None
    lines = open(path).read().split("\n")
    i = 0

    def fail(msg):
        sys.exit(f"{path}:{i + 1}: {msg}")

    while i < len(lines):
        ln = lines[i]
        if ln.startswith("#") or not ln.strip():
            i += 1
            continue
        key, _, rest = ln.partition(" ")
        rest = rest.strip()
        if key == "mutant":
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", rest):
                fail(f"bad mutant name {rest!r}")
            if any(m.name == rest for m in mutants):
                fail(f"mutant {rest} listed twice")
            cur, file = Mutant(rest, i + 1), None
            mutants.append(cur)
        elif cur is None:
            fail("expected `mutant NAME` first")
        elif key == "tests":
            cur.tests += rest.split()
        elif key == "cases":
            cur.cases += rest.split()
        elif key == "about":
            cur.about = (cur.about + " " + rest).strip()
        elif key == "in":
            file = rest
        elif ln == "<<<<":
            if file is None:
                fail("a <<<< block needs an `in FILE` line before it")
            start, search, replace, part = i + 1, [], [], "search"
            i += 1
            while i < len(lines) and lines[i] != ">>>>":
                if lines[i] == "====" and part == "search":
                    part = "replace"
                else:
                    (search if part == "search" else replace).append(lines[i])
                i += 1
            if i == len(lines) or part != "replace":
                fail("unterminated block (want <<<< search ==== replacement >>>>)")
            s = "\n".join(search) + "\n"
            r = "\n".join(replace) + "\n" if replace else ""
            if s == r:
                fail("replacement equals the search text")
            cur.subs.append((file, s, r, start))
        else:
            fail(f"unknown line {ln!r}")
        i += 1
    for m in mutants:
        if not m.subs or not m.tests:
            sys.exit(f"{path}:{m.line}: mutant {m.name} needs a substitution and a `tests` line")
    return mutants


def apply(m, tree):
    """Applies m's substitutions to the files under tree; returns a list of problems (empty: applied)."""
    problems = []
    for file, s, r, line in m.subs:
        p = os.path.join(tree, file)
        try:
            text = open(p).read()
        except OSError as e:
            problems.append(f"{file}: {e.strerror} (list line {line})")
            continue
        n = text.count(s)
        if n != 1:
            first = s.split("\n")[0].strip()
            problems.append(f"{file}: search text (list line {line}, {first!r}...) found {n} times, want 1")
            continue
        open(p, "w").write(text.replace(s, r))
    return problems


def tree_files():
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return [f for f in out.decode().split("\0") if f and os.path.isfile(os.path.join(ROOT, f))
            and not f.startswith("build/")]


def copy_tree(dest):
    for f in tree_files():
        d = os.path.join(dest, f)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), d, follow_symlinks=False)


def run_tests(tree, tests, log):
    """Builds and runs tests in tree; returns ('built', rc, failing) or ('nobuild', rc, [])."""
    jobs = os.environ.get("MUTANTS_JOBS", "2")
    with open(log, "w") as f:
        f.write(f"$ make -j{jobs} {' '.join(tests)}\n")
        f.flush()
        b = subprocess.run(["make", f"-j{jobs}", "--no-print-directory"] + tests, cwd=tree, stdout=f,
                           stderr=subprocess.STDOUT)
        if b.returncode != 0:
            return "nobuild", b.returncode, []
        env = dict(os.environ, MK_TEST_LOGS=os.path.join(tree, "build", "test-logs"),
                   MK_TEST_TIMEOUT=os.environ.get("MUTANTS_TIMEOUT", "120"))
        f.write(f"$ tests/run-all.sh {' '.join(tests)}\n")
        f.flush()
        out = subprocess.run(["tests/run-all.sh"] + tests, cwd=tree, env=env, capture_output=True, text=True)
        f.write(out.stdout + out.stderr)
    failing = []
    for ln in out.stdout.splitlines():
        if ln.startswith("failing programs: "):
            failing = ln[len("failing programs: "):].split()
    # Which cases failed: "program (case, case)", from the programs' own logs.
    named = []
    for prog in failing:
        try:
            cases = [l.split()[1] for l in open(os.path.join(env["MK_TEST_LOGS"], prog + ".log"), errors="replace")
                     if l.startswith("FAIL ") and len(l.split()) > 1]
        except OSError:
            cases = []
        shown = ", ".join(cases[:4]) + (", ..." if len(cases) > 4 else "")
        named.append(f"{prog} ({shown})" if cases else prog)
    return "built", out.returncode, named


def keep_logs(tree, name, log):
    dest = os.path.join(OUT, name)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    shutil.copy(log, dest)
    logs = os.path.join(tree, "build", "test-logs")
    if os.path.isdir(logs):
        for f in os.listdir(logs):
            shutil.copy(os.path.join(logs, f), dest)
    return dest


def one(name, m, tests):
    """Runs one mutant (m None: the unmutated tree); returns (status, detail, seconds)."""
    t0 = time.time()
    tree = tempfile.mkdtemp(prefix=f"memkit-mutant-{name}-")
    log = os.path.join(tree, "mutant.log")
    try:
        copy_tree(tree)
        problems = apply(m, tree) if m else []
        if problems:
            return "ERROR", "does not apply: " + "; ".join(problems), time.time() - t0
        what, rc, failing = run_tests(tree, tests, log)
        secs = time.time() - t0
        if what == "nobuild":
            return "ERROR", f"does not build (make exit {rc}); log in {keep_logs(tree, name, log)}", secs
        if rc != 0 and m and m.cases:
            failed = re.findall(r"[A-Za-z0-9_.-]+", " ".join(f.partition(" ")[2] for f in failing))
            if not any(c.startswith(w) for c in failed for w in m.cases):
                return ("SURVIVED", f"not by its cases ({' '.join(m.cases)}), only by " + ", ".join(failing) +
                        f"; logs in {keep_logs(tree, name, log)}", time.time() - t0)
        if rc != 0:
            detail = "by " + (", ".join(failing) if failing else f"run-all.sh exit {rc}")
            if not m:
                detail += f"; logs in {keep_logs(tree, name, log)}"
            return "KILLED", detail, secs
        return "SURVIVED", f"logs in {keep_logs(tree, name, log)}", secs
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    unknown = flags - {"--check", "--list", "--no-baseline", "--help"}
    if unknown or "--help" in flags:
        print(__doc__)
        return 0 if not unknown else 2
    mutants = parse(LIST)
    wanted = args + [w for w in os.environ.get("MUTANTS", "").split(",") if w.strip()]
    if wanted:
        sel = [m for m in mutants if any(m.name == w or m.name.startswith(w) for w in wanted)]
        missing = [w for w in wanted if not any(m.name == w or m.name.startswith(w) for m in mutants)]
        if missing:
            sys.exit(f"mutants: no mutant named {', '.join(missing)} in {LIST}")
        mutants = sel
    if "--list" in flags:
        for m in mutants:
            print(f"{m.name:32} {' '.join(sorted({s[0] for s in m.subs}))}\n{'':32} tests: {' '.join(m.tests)}")
        return 0

    # Every pattern must match once on the tree as it is, before anything is built.
    bad = 0
    with tempfile.TemporaryDirectory(prefix="memkit-mutant-check-") as tree:
        srcs = sorted({s[0] for m in mutants for s in m.subs})
        for f in srcs:
            if os.path.isfile(os.path.join(ROOT, f)):
                os.makedirs(os.path.dirname(os.path.join(tree, f)), exist_ok=True)
                shutil.copy(os.path.join(ROOT, f), os.path.join(tree, f))
        for m in mutants:
            for f in srcs:   # each mutant against the pristine files
                if os.path.isfile(os.path.join(ROOT, f)):
                    shutil.copy(os.path.join(ROOT, f), os.path.join(tree, f))
            for p in apply(m, tree):
                print(f"ERROR {m.name}: does not apply: {p}")
                bad += 1
    if "--check" in flags or bad:
        print(f"{len(mutants)} mutants, {bad} patterns out of date")
        return 1 if bad else 0

    os.makedirs(OUT, exist_ok=True)
    results = []
    if "--no-baseline" not in flags:
        union = list(dict.fromkeys(t for m in mutants for t in m.tests))
        print(f"baseline (no mutant): {' '.join(union)}", flush=True)
        status, detail, secs = one("baseline", None, union)
        if status != "SURVIVED":
            print(f"baseline {status.lower()}: the tests fail without any mutant ({detail}); fix or rerun "
                  "(a flaky case), or skip the baseline with --no-baseline")
            return 2
        print(f"baseline passes ({secs:.0f} s)\n", flush=True)
    for k, m in enumerate(mutants, 1):
        print(f"[{k}/{len(mutants)}] {m.name} ... ", end="", flush=True)
        status, detail, secs = one(m.name, m, m.tests)
        print(f"{status} {detail} ({secs:.0f} s)", flush=True)
        results.append((m.name, status, detail, secs))
    lines = [f"{n:32} {s:8} {secs:5.0f} s  {d}" for n, s, d, secs in results]
    survived = [n for n, s, _, _ in results if s == "SURVIVED"]
    errors = [n for n, s, _, _ in results if s == "ERROR"]
    tally = (f"{len(results)} mutants: {len(results) - len(survived) - len(errors)} killed, "
             f"{len(survived)} survived{' (' + ', '.join(survived) + ')' if survived else ''}, "
             f"{len(errors)} errors{' (' + ', '.join(errors) + ')' if errors else ''}")
    with open(os.path.join(OUT, "summary.txt"), "w") as f:
        f.write("\n".join(lines + ["", tally]) + "\n")
    print("\n" + "\n".join(lines) + "\n\n" + tally)
    return 1 if survived or errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
