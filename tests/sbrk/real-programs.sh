#!/usr/bin/env bash
# Real programs on the sbrk allocator: each runs twice, with and without
# LD_PRELOAD=build/libmemkit-sbrk.so, and the two outputs (and exit statuses) must be identical.
# The runs are kept small: the allocator searches its free list linearly, by design.
set -u
cd "$(dirname "$0")/../.."
# preload-replaces-malloc and the 11 "same" lines below
echo "PLAN 12"
lib=$PWD/build/libmemkit-sbrk.so
[ -f "$lib" ] || { echo "FAIL sbrk-real-programs (no $lib: run make first)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

# same NAME CMD...: runs CMD in $work both ways, compares stdout+stderr and the exit status.  The run
# without the preload must exit 0 with some output.
same() {
	local name=$1
	shift
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "FAIL $name ($1 is not installed)"
		failed=1
		return
	fi
	(cd "$work" && "$@") >"$work/.plain" 2>&1
	local rc_plain=$?
	# the reference must work, or two runs that fail alike would compare equal
	if [ "$rc_plain" -ne 0 ] || [ ! -s "$work/.plain" ]; then
		echo "FAIL $name (fails even without the preload: status $rc_plain, $(wc -c <"$work/.plain") bytes of output)"
		head -5 "$work/.plain" | sed 's/^/    /'
		failed=1
		return
	fi
	(cd "$work" && LD_PRELOAD=$lib "$@") >"$work/.sbrk" 2>&1
	local rc_sbrk=$?
	if [ "$rc_plain" -eq "$rc_sbrk" ] && cmp -s "$work/.plain" "$work/.sbrk"; then
		echo "PASS $name"
	else
		echo "FAIL $name (status $rc_plain without, $rc_sbrk with the preload)"
		diff "$work/.plain" "$work/.sbrk" | head -5 | sed 's/^/    /'
		failed=1
	fi
}

# The preload really replaces malloc: malloc_stats() then is this allocator's report, with brk growths.
stats=$(LD_PRELOAD=$lib /usr/bin/python3 -c 'import ctypes; ctypes.CDLL(None).malloc_stats()' 2>&1)
if echo "$stats" | grep -Eq '^memkit-sbrk: brk growths [1-9]'; then
	echo "PASS preload-replaces-malloc"
else
	echo "FAIL preload-replaces-malloc"
	echo "$stats" | head -5 | sed 's/^/    /'
	failed=1
fi

# A small tree to list, search and sort.
mkdir -p "$work/tree/a/b" "$work/tree/c"
for i in $(seq 1 60); do
	printf 'line %d alpha\nline %d beta %d\n' "$i" "$i" $((i * 7919 % 1000)) >"$work/tree/a/f$i.txt"
	printf 'gamma %d\n' $((i * 31 % 17)) >"$work/tree/c/g$i.txt"
done
echo alpha >"$work/tree/a/b/deep.txt"

same ls-la ls -la /usr/lib
same grep-r grep -rn alpha tree
same sort sh -c 'cat tree/a/*.txt | sort -k4,4n -k2,2n'

cat >"$work/script.py" <<'EOF'
import collections, json, re, threading
words = collections.Counter(re.findall(r"[a-z]+", open("tree/a/f1.txt").read() * 500))
data = {str(i): [j * j for j in range(i % 40)] for i in range(3000)}
text = json.dumps(data, sort_keys=True)
print(len(text), sorted(words.items()), sum(len(v) for v in json.loads(text).values()))
out = [None] * 4
def work(k):
    acc = []
    for i in range(2000):
        acc.append(("%d-%d" % (k, i)) * (i % 7 + 1))
        if i % 3 == 0:
            acc.pop(0)
    out[k] = sum(map(len, acc))
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print(out)
EOF
py=/usr/bin/python3
same python3 $py script.py
same python3-pymalloc-off env PYTHONMALLOC=malloc $py script.py

same perl perl -e 'my %h; $h{$_ % 97} .= "x$_" for 1..20000; print join(",", map { length $h{$_} } sort { $a <=> $b } keys %h), "\n";'

cat >"$work/q.sql" <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO t SELECT i, printf('name%04d', i * 37 % 2000), i * 0.5 FROM n;
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(v), min(name), max(name) FROM t;
SELECT name, v FROM t WHERE name LIKE 'name01%' ORDER BY name LIMIT 5;
SELECT substr(name, 5, 1) AS d, count(*) FROM t GROUP BY d ORDER BY d;
EOF
same sqlite3 sh -c 'sqlite3 :memory: <q.sql'

cat >"$work/hello.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int main(void)
{
	int v[] = { 5, 3, 9, 1, 7 };
	qsort(v, 5, sizeof v[0], cmp);
	for (int i = 0; i < 5; i++)
		printf("%d ", v[i]);
	printf("\n");
	return 0;
}
EOF
same gcc sh -c 'gcc -O2 -Wall -o hello-$$ hello.c && ./hello-$$ && rm -f hello-$$'
same gcc-object sh -c 'gcc -O2 -c hello.c -o hello.o && sha256sum hello.o && rm -f hello.o'

git_env='GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org
GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z GIT_CONFIG_NOSYSTEM=1 HOME='$work
(
	cd "$work" && export $git_env && git init -q repo && cd repo &&
		for i in 1 2 3 4 5; do echo "change $i" >>file.txt && git add file.txt && git commit -qm "commit $i"; done
) >/dev/null 2>&1
same git-log env $git_env git -C repo log --stat
same git-commit-and-diff sh -c "export $(echo $git_env | tr '\n' ' '); cp -r repo repo-\$\$ && cd repo-\$\$ && echo x >>file.txt && git commit -qam more && git log --oneline && git diff HEAD~2 && cd .. && rm -rf repo-\$\$"

exit $failed
