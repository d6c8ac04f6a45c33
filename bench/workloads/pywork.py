"""A pure-Python workload for `python3` under PYTHONMALLOC=malloc (every object a malloc/free): tokenise
and evaluate arithmetic expressions, build and sort records, count words with dicts and sets, and grow
and shrink lists of tuples, as an interpreter running a script does.
Argument: rounds (default 20).  Self-check: each part's result is compared with one computed another way;
prints "ok <checksum>" and exits 0, or raises."""
import sys


def tokens(text):
    out, num = [], ""
    for ch in text:
        if ch.isdigit():
            num += ch
            continue
        if num:
            out.append(int(num))
            num = ""
        if ch in "+-*()":
            out.append(ch)
    if num:
        out.append(int(num))
    return out


def parse(toks, pos=0):
    """expr := term (('+'|'-') term)*; term := atom ('*' atom)*; atom := int | '(' expr ')'.
    Returns (tree, next position); trees are nested tuples, so every node is a fresh allocation."""
    def atom(i):
        if toks[i] == "(":
            tree, i = expr(i + 1)
            return tree, i + 1
        return ("n", toks[i]), i + 1

    def term(i):
        left, i = atom(i)
        while i < len(toks) and toks[i] == "*":
            right, i = atom(i + 1)
            left = ("*", left, right)
        return left, i

    def expr(i):
        left, i = term(i)
        while i < len(toks) and toks[i] in "+-":
            op = toks[i]
            right, i = term(i + 1)
            left = (op, left, right)
        return left, i
    return expr(pos)


def evaluate(tree):
    if tree[0] == "n":
        return tree[1]
    a, b = evaluate(tree[1]), evaluate(tree[2])
    return a + b if tree[0] == "+" else a - b if tree[0] == "-" else a * b


def make_expr(seed, depth):
    seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
    if depth == 0 or seed % 5 == 0:
        return str(seed % 100), seed
    left, seed = make_expr(seed, depth - 1)
    right, seed = make_expr(seed, depth - 1)
    return "(" + left + "+-*"[seed % 3] + right + ")", seed


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    checksum, seed = 0, 1
    for r in range(rounds):
        # expressions: parse to trees and evaluate; check against Python's own evaluator
        for _ in range(60):
            text, seed = make_expr(seed, 7)
            tree, end = parse(tokens(text))
            value = evaluate(tree)
            if value != eval(text):  # noqa: S307 - our own generated arithmetic
                raise SystemExit("FAIL expression %s" % text)
            checksum = (checksum * 31 + value) % (1 << 61)
        # records: build, sort two ways, and check the orders agree on the key
        recs = [{"id": i, "name": "user%05d" % ((i * 7919) % 5000), "score": (i * 37) % 101}
                for i in range(3000)]
        by_score = sorted(recs, key=lambda d: (d["score"], d["id"]))
        by_tuple = sorted((d["score"], d["id"], d["name"]) for d in recs)
        if [d["id"] for d in by_score] != [t[1] for t in by_tuple]:
            raise SystemExit("FAIL sort")
        # words: count with a dict, check with a set and sum
        words = ("w%d" % ((i * i + r) % 997) for i in range(20000))
        counts = {}
        for w in words:
            counts[w] = counts.get(w, 0) + 1
        if sum(counts.values()) != 20000 or len(counts) != len({"w%d" % ((i * i + r) % 997) for i in range(20000)}):
            raise SystemExit("FAIL word count")
        # lists of tuples that grow and shrink
        stack = []
        for i in range(20000):
            stack.append((i, str(i)))
            if i % 3 == 0:
                stack.pop(0 if i % 2 else -1)
        checksum = (checksum + len(counts) + by_score[0]["id"] + len(stack)) % (1 << 61)
    print("ok", checksum)


main()
