#!/bin/bash
# Options and statistics of the drop-in (LD_PRELOAD=build/libmemkit.so) with real programs:
# MEMKIT_HELP under a program that never allocates (the wrapper's `memkit --help` runs exactly that), the
# report of coreutils' ls (which closes stderr before exit) on stderr and in MEMKIT_STATS_FILE with %p,
# the JSON report parsed as JSON, malloc_info under the preload answering memkit's heap, and the man
# page's option entries.
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
lib=$build/libmemkit.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "PLAN 7"
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# 1. MEMKIT_HELP=1 under true(1) (the program: the shell's builtin true loads no library): one line per
# option, and true's exit status.
if MEMKIT_HELP=1 LD_PRELOAD=$lib "$(type -P true)" 2>"$tmp/help"; then
	n=$(grep -c '^MEMKIT_[A-Z_]* .* default .* range ' "$tmp/help")
	total=$(wc -l <"$tmp/help")
	if [ "$n" -ge 6 ] && [ "$n" -eq "$total" ] && grep -q '^MEMKIT_PURGE_DELAY ' "$tmp/help"; then
		pass help-under-true
	else
		fail help-under-true "$n option lines of $total: $(head -3 "$tmp/help")"
	fi
else
	fail help-under-true "exit status $?"
fi

# 2. MEMKIT_STATS=1 with ls: coreutils close stderr at exit; the report still comes, every line with ls's pid.
MEMKIT_STATS=1 LD_PRELOAD=$lib ls "$root" >/dev/null 2>"$tmp/ls.err"
pids=$(sed -n 's/^memkit\[\([0-9]*\)\]: .*/\1/p' "$tmp/ls.err" | sort -u | wc -l)
if grep -q '^memkit\[[0-9]*\]: segments.current ' "$tmp/ls.err" && [ "$pids" -eq 1 ] &&
   [ "$(grep -vc '^memkit\[' "$tmp/ls.err")" -eq 0 ]; then
	pass ls-report-on-stderr
else
	fail ls-report-on-stderr "$(head -3 "$tmp/ls.err")"
fi

# 3. MEMKIT_STATS_FILE=...%p: the file of ls's pid, nothing on stderr.
MEMKIT_STATS=1 MEMKIT_STATS_FILE="$tmp/stats.%p" LD_PRELOAD=$lib ls "$root" >/dev/null 2>"$tmp/file.err"
files=$(ls "$tmp" | grep -c '^stats\.[0-9]*$')
f=$(ls "$tmp"/stats.* 2>/dev/null | head -1)
pid=${f##*.}
if [ "$files" -eq 1 ] && [ ! -s "$tmp/file.err" ] && grep -q "^memkit\[$pid\]: bytes.current " "$f" &&
   [ "$(grep -vc "^memkit\[$pid\]: " "$f")" -eq 0 ]; then
	pass stats-file-with-pid
else
	fail stats-file-with-pid "$files files, stderr: $(head -2 "$tmp/file.err")"
fi

# 4. MEMKIT_STATS=json: one line of JSON with the pid and the counters.
MEMKIT_STATS=json LD_PRELOAD=$lib ls "$root" >/dev/null 2>"$tmp/json"
if [ "$(wc -l <"$tmp/json")" -eq 1 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["memkit"]
assert d["pid"] > 0 and d["stats"]["segments.current"] >= 1 and d["stats"]["os.mmap"] >= 1
assert all("size" in c and "live" in c for c in d["classes"]) and d["classes"]
' "$tmp/json"; then
	pass json-report
else
	fail json-report "$(head -c 300 "$tmp/json")"
fi

# 5. malloc_info under the preload: memkit's heap (its huge block as the one mmap'ed), not glibc's.
out=$(LD_PRELOAD=$lib python3 -c '
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
p = libc.malloc(5 << 20)
libc.fflush(None)
libc.malloc_info(0, ctypes.c_void_p.in_dll(libc, "stdout"))
libc.fflush(None)
' 2>&1)
if grep -q '<total type="mmap" count="[1-9][0-9]*" size="[0-9]*"/>' <<<"$out" && grep -q '<unsorted from="65536"' <<<"$out"; then
	pass malloc-info-is-memkit
else
	fail malloc-info-is-memkit "$(head -c 300 <<<"$out")"
fi

# 6. A misspelt variable under a real program: one warning naming the closest option, and the program runs.
if out=$(MEMKIT_STAT=1 LD_PRELOAD=$lib ls "$root" 2>&1 >/dev/null) &&
   [ "$out" = "memkit: MEMKIT_STAT is not a memkit option (did you mean MEMKIT_STATS?); ignored" ]; then
	pass misspelt-name-warned
else
	fail misspelt-name-warned "$out"
fi

# 7. The man page's entries: a .TP and .B line per option, the same options as MEMKIT_HELP's.
man=$build/man/options.man
if [ "$(grep -c '^\.TP$' "$man")" -eq "$(wc -l <"$tmp/help")" ] &&
   [ "$(grep '^\.B MEMKIT_' "$man" | cut -d' ' -f2)" = "$(cut -d' ' -f1 "$tmp/help")" ]; then
	pass man-entries
else
	fail man-entries "$(head -4 "$man")"
fi
