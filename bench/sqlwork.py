"""The sqlite workload: a generated SQL script (bulk inserts, an index, grouped queries, updates, deletes,
a table built from a query) and the exact output sqlite3 must print for it, computed here in Python, so
a run that prints anything else fails its self-check."""
import os


def rows(n):
    for i in range(1, n + 1):
        name = "n%07d" % ((i * 7919) % 1000003)
        grp = (i * 31) % 97
        val = (i * 2654435761) % 100003
        note = "note-" + str(i) * (i % 5 + 1)
        yield i, name, grp, val, note


def script(n):
    out = ["CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val INTEGER, note TEXT);", "BEGIN;"]
    for r in rows(n):
        out.append("INSERT INTO t VALUES(%d,'%s',%d,%d,'%s');" % r)
    out += [
        "COMMIT;",
        "CREATE INDEX t_grp ON t(grp, val);",
        "SELECT grp, count(*), sum(val), max(length(note)) FROM t GROUP BY grp ORDER BY grp;",
        "UPDATE t SET note = note || 'x' WHERE val % 7 = 0;",
        "DELETE FROM t WHERE val % 5 = 0;",
        "SELECT count(*), sum(length(note)) FROM t;",
        "SELECT name FROM t ORDER BY name DESC, id LIMIT 5;",
        "CREATE TABLE u AS SELECT grp, group_concat(name) AS names FROM t GROUP BY grp;",
        "SELECT sum(length(names)), count(*) FROM u;",
    ]
    return "\n".join(out) + "\n"


def expected(n):
    data = list(rows(n))
    out = []
    groups = {}
    for _, _, grp, val, note in data:
        g = groups.setdefault(grp, [0, 0, 0])
        g[0] += 1
        g[1] += val
        g[2] = max(g[2], len(note))
    for grp in sorted(groups):
        out.append("%d|%d|%d|%d" % (grp, *groups[grp]))
    kept = [(i, name, grp, val, note + ("x" if val % 7 == 0 else "")) for i, name, grp, val, note in data
            if val % 5 != 0]
    out.append("%d|%d" % (len(kept), sum(len(r[4]) for r in kept)))
    out += [r[1] for r in sorted(kept, key=lambda r: (r[1], -r[0]), reverse=True)[:5]]
    names = {}
    for _, name, grp, _, _ in kept:
        names.setdefault(grp, []).append(name)
    out.append("%d|%d" % (sum(len(",".join(v)) for v in names.values()), len(names)))
    return "\n".join(out) + "\n"


def prepare(directory, n):
    """Writes the script for n rows under directory (once) and returns (its path, the expected output)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "work-%d.sql" % n)
    if not os.path.exists(path):
        with open(path + ".tmp", "w") as f:
            f.write(script(n))
        os.replace(path + ".tmp", path)
    return path, expected(n)
