#!/usr/bin/env bash
# Real programs under memkit: each command runs twice, once plainly and once with
# LD_PRELOAD=build/libmemkit.so (every process it starts inherits the preload), and the two outputs
# (stdout and stderr together, plus the exit status) must be identical.  Prints PASS/FAIL per program.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
lib=${MK_TEST_LIB:-$build/libmemkit.so}   # tests/misuse/secure-preload.sh: the secure build
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
work=$(mktemp -d "${TMPDIR:-/tmp}/memkit-programs.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0

# Everything the commands need, made once and only read afterwards.
in=$work/in
mkdir -p "$in"
export HOME=$work GIT_CONFIG_NOSYSTEM=1 LC_ALL=C PYTHONHASHSEED=0
awk 'BEGIN { srand(1); for (i = 0; i < 300000; i++) printf "%d %s%d\n", int(rand() * 1e9), "w", i % 977 }' >"$in/lines.txt"
awk 'BEGIN {
	print "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL);"
	print "CREATE TABLE g (grp INTEGER PRIMARY KEY, label TEXT);"
	print "BEGIN;"
	for (i = 0; i < 100; i++) printf "INSERT INTO g VALUES (%d, '\''group %d'\'');\n", i, i
	for (i = 0; i < 60000; i++) printf "INSERT INTO t (name, grp, val) VALUES ('\''%s%d'\'', %d, %d.5);\n", "name", (i * 7919) % 60000, i % 100, (i * 31) % 1000
	print "COMMIT;"
	print "CREATE INDEX t_name ON t(name);"
	print "CREATE INDEX t_grp ON t(grp, val);"
	print "SELECT count(*), sum(val), min(name), max(name) FROM t;"
	print "SELECT g.label, count(*), avg(t.val) FROM t JOIN g USING (grp) GROUP BY grp ORDER BY 3 DESC, 1 LIMIT 10;"
	print "SELECT name FROM t WHERE name LIKE '\''name123%'\'' ORDER BY name;"
	print "UPDATE t SET name = upper(name) || '\''-'\'' || id WHERE grp % 3 = 0;"
	print "DELETE FROM t WHERE val > 900;"
	print "SELECT count(*), group_concat(DISTINCT substr(name, 1, 5)) FROM t;"
	print "PRAGMA integrity_check;"
}' >"$in/script.sql"
cat >"$in/objects.py" <<'EOF'
import sys
d = {}
for i in range(200000):
    d["key%d" % i] = [i, str(i) * (i % 7), {"n": i}]
s = 0
for k, v in d.items():
    s += len(k) + len(v[1]) + v[2]["n"]
words = " ".join(sorted(d.keys(), key=lambda k: (len(k), k)))[:1000000].split()
big = "".join(w[::-1] for w in words)
for i in range(0, 200000, 2):
    del d["key%d" % i]
t = tuple(sorted(set(x % 1009 for x in range(300000))))
print(len(d), s, len(words), len(big), hash(big) & 0xffff, len(t), sum(t))
print(sorted(sys.modules.keys())[:5])
EOF
cat >"$in/threads.py" <<'EOF'
import threading
results = [None] * 6
def work(k):
    d = {}
    for i in range(60000):
        d[(k, i)] = "x" * (i % 100) + str(i)
    lst = [v.upper() for v in d.values() if len(v) % 3 == k % 3]
    results[k] = (len(d), len(lst), sum(len(v) for v in lst))
ts = [threading.Thread(target=work, args=(k,)) for k in range(6)]
for t in ts: t.start()
for t in ts: t.join()
print(results)
EOF
cat >"$in/prog.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node *next; char name[24]; int v; };
static int cmp(const void *a, const void *b) { return (*(const struct node **)a)->v - (*(const struct node **)b)->v; }
int main(void) {
	struct node *head = NULL;
	for (int i = 0; i < 1000; i++) {
		struct node *n = malloc(sizeof *n);
		snprintf(n->name, sizeof n->name, "node-%d", i);
		n->v = (i * 7919) % 1000;
		n->next = head;
		head = n;
	}
	struct node *arr[1000];
	int k = 0;
	for (struct node *n = head; n; n = n->next) arr[k++] = n;
	qsort(arr, k, sizeof *arr, cmp);
	printf("%s %s %d\n", arr[0]->name, arr[k - 1]->name, k);
	for (int i = 0; i < k; i++) free(arr[i]);
	return 0;
}
EOF

# run MODE NAME COMMAND: COMMAND (bash) in a fresh directory of its own, with memkit when MODE is memkit.
run() {
	local dir=$work/run-$2-$1
	mkdir -p "$dir"
	if [ "$1" = memkit ]; then
		(cd "$dir" && LD_PRELOAD=$lib timeout 120 bash -c "$3") >"$dir.out" 2>&1
	else
		(cd "$dir" && timeout 120 bash -c "$3") >"$dir.out" 2>&1
	fi
	echo "exit status $?" >>"$dir.out"
}

# compare NAME COMMAND: PASS when both runs succeed with the same output.
compare() {
	run plain "$1" "$2"
	run memkit "$1" "$2"
	local ref=$work/run-$1-plain.out got=$work/run-$1-memkit.out
	if ! tail -n 1 "$ref" | grep -qx 'exit status 0'; then
		echo "FAIL $1 (fails even without memkit: $(tail -n 3 "$ref" | tr '\n' ' '))"
		failed=1
	elif cmp -s "$ref" "$got"; then
		echo "PASS $1"
	else
		echo "FAIL $1"
		diff "$ref" "$got" | head -20 | sed 's/^/    /' >&2
		failed=1
	fi
}

# preload-active, the 10 compare lines below, memkit-wrapper
echo "PLAN 12"

# The preload must really be in effect, or every comparison below passes for nothing.
if [ -f "$lib" ] && LD_PRELOAD=$lib grep -q libmemkit /proc/self/maps; then
	echo "PASS preload-active"
else
	echo "FAIL preload-active ($lib is missing or not loaded)"
	failed=1
fi

compare ls "ls -la /usr/lib"
compare grep "grep -rn --binary-files=without-match 'alloc' /usr/include"
compare sort "sort -S 64M --parallel=2 -k1,1n -k2 '$in/lines.txt' | cksum && sort -u -k2 '$in/lines.txt' | wc -l"
compare python3 "$python '$in/objects.py'"
compare python3-pymalloc-off "PYTHONMALLOC=malloc $python '$in/objects.py'"
compare python3-threads "$python '$in/threads.py' && PYTHONMALLOC=malloc $python '$in/threads.py'"
compare perl "perl -e 'my %h; for my \$i (1..300000) { \$h{\"k\$i\"} = \"v\" x (\$i % 50) } my \$s = 0; \$s += length(\$h{\$_}) for keys %h; delete \$h{\"k\$_\"} for 1..100000; my @k = sort keys %h; print scalar(@k), \" \$s \$k[0] \$k[-1]\n\"'"
compare sqlite3 "sqlite3 db.sqlite <'$in/script.sql'"
compare gcc "gcc -O2 -c '$in/prog.c' -o prog.o && objdump -d --no-show-raw-insn prog.o | tail -n +4 && gcc prog.o -o prog && ./prog"
compare git "git -c init.defaultBranch=main init -q repo && cd repo &&
	export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org &&
	for i in \$(seq 1 40); do
		seq 1 \$((i * 50)) >file\$((i % 7)).txt && echo \$i >>log.txt &&
		git add -A && GIT_AUTHOR_DATE=\"@\$((1700000000 + i)) +0000\" GIT_COMMITTER_DATE=\"@\$((1700000000 + i)) +0000\" git commit -q -m \"commit \$i\" || exit 1
	done &&
	git log --stat --format='%H %s' | cksum && git gc -q && git fsck --full 2>&1 && git count-objects -v | grep -E '^(count|in-pack|packs)'"

# The wrapper script does the same as LD_PRELOAD.
out=$("$build/memkit" grep -c libmemkit /proc/self/maps 2>&1)
want=$(sort -k1,1n -k2 "$in/lines.txt" | cksum)
got=$("$build/memkit" sort -k1,1n -k2 "$in/lines.txt" | cksum)
if [ "${out:-0}" -gt 0 ] 2>/dev/null && [ "$want" = "$got" ]; then
	echo "PASS memkit-wrapper"
else
	echo "FAIL memkit-wrapper (maps: $out; sort: $want vs $got)"
	failed=1
fi
exit $failed
