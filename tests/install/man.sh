#!/usr/bin/env bash
# The man pages (build/man/, from man/*.in): each renders with groff's and man's warnings on and none
# printed; memkit(3) carries the options fragment and names every MEMKIT_* option of the sources and
# every function of memkit.h; memkit_region(3) every function of memkit_region.h; memkit(1) every option
# the wrapper accepts; mkprof(1) every option tools/mkprof.c accepts.
set -u
cd "$(dirname "$0")/../.."
echo "PLAN 11"
pages="memkit.1 mkprof.1 memkit.3 memkit_region.3"
for p in $pages; do
	f=build/man/$p
	if [ ! -f "$f" ]; then
		echo "FAIL render-$p (no $f: run make first)"
		continue
	fi
	warn=$( { groff -man -ww -z "$f"; MANWIDTH=80 man --warnings -l "$f" >/dev/null; } 2>&1)
	text=$(MANWIDTH=80 man -l "$f" 2>/dev/null)
	if [ -z "$warn" ] && grep -q '^NAME' <<<"$text" && grep -q '^SEE ALSO' <<<"$text"; then
		echo "PASS render-$p"
	else
		echo "FAIL render-$p (warnings: $(head -3 <<<"$warn" | tr '\n' ' '))"
	fi
done

# missing LABEL PAGE NAME...: a case that passes when PAGE's source names every NAME (as a word).
missing() {
	local label=$1 page=$2 gone="" n
	shift 2
	for n in "$@"; do
		grep -qwF -- "$n" "$page" 2>/dev/null || gone="$gone $n"
	done
	if [ $# -gt 0 ] && [ -z "$gone" ]; then echo "PASS $label"; else echo "FAIL $label (not in $page:${gone:- nothing to look for})"; fi
}

if [ -f build/man/memkit.3 ] && ! grep -q '@OPTIONS@' build/man/memkit.3 && grep -q '^\.B MEMKIT_' build/man/memkit.3; then
	echo "PASS options-inserted"
else
	echo "FAIL options-inserted (build/man/memkit.3 has no options list in place of @OPTIONS@)"
fi
# The options table's entries: { "MEMKIT_NAME", T_TYPE, ... } (src/engine/options.c).
mapfile -t options < <(grep -rhoE '\{ *"MEMKIT_[A-Z0-9_]+", *T_' src/engine | grep -oE 'MEMKIT_[A-Z0-9_]+' | sort -u)
missing options-documented build/man/memkit.3 "${options[@]}"
mapfile -t mk < <(grep -oE '\bmk_[a-z0-9_]+ *\(' include/memkit.h | tr -d ' (' | sort -u)
missing functions-documented build/man/memkit.3 "${mk[@]}"
# The engine's abort lines are "memkit: FUNCTION(): ERROR POINTER": each FUNCTION() and ERROR in DIAGNOSTICS.
mapfile -t diag < <(grep -rhoE '"[a-z_]+\(\): [a-z ]+"' src/engine src/override | tr -d '"' | sed 's/: /\n/' | sort -u)
missing diagnostics-documented build/man/memkit.3 "${diag[@]}"
mapfile -t mkr < <(grep -oE '\bmkr_[a-z0-9_]+ *\(' include/memkit_region.h | tr -d ' (' | sort -u)
missing region-functions-documented build/man/memkit_region.3 "${mkr[@]}"
# The wrapper's options, written in troff as \-\-name.
mapfile -t wopts < <(grep -E -- '^\s*(-[a-z] \| )?--[a-z]+[^)]*\)' tools/memkit.in | grep -oE -- '--[a-z]+(=[a-z]+)?' |
	sed 's/-/\\-/g' | sort -u)
missing wrapper-options-documented build/man/memkit.1 "${wopts[@]}"
# mkprof's options: the strcmp(argv[i], "--name") tests of its parser, written in troff as \-\-name.
mapfile -t popts < <(grep -oE 'strcmp\(argv\[i\], "--[a-z]+"\)' tools/mkprof.c | grep -oE -- '--[a-z]+' | sed 's/-/\\-/g' | sort -u)
missing mkprof-options-documented build/man/mkprof.1 "${popts[@]}"
