#!/usr/bin/env bash
# The wrapper build/memkit (tools/memkit.in), every flag, run from other directories: it preloads the
# library beside it, keeps an LD_PRELOAD already set (after its own), sets the MEMKIT_* variables its
# flags stand for, ends its options at the program or at --, passes the exit status on, and refuses what
# it does not understand with status 2 and one line.
set -u
cd "$(dirname "$0")/../.."
echo "PLAN 26"
top=$PWD
wrapper=$top/build/memkit
part() { sed -n "s/^#define MEMKIT_VERSION_$1 *\([0-9]*\).*/\1/p" include/memkit.h; }
major=$(part MAJOR)
version=$major.$(part MINOR).$(part PATCH)
lib=$top/build/libmemkit.so.$major
work=$(mktemp -d /tmp/memkit-wrapper.XXXXXX)
trap 'rm -rf "$work"' EXIT
unset LD_PRELOAD MEMKIT_STATS MEMKIT_VERBOSE MEMKIT_HELP

# check NAME WANT GOT: one case, comparing two strings.
check() {
	if [ "$2" = "$3" ]; then echo "PASS $1"; else echo "FAIL $1 (wanted '$2', got '$3')"; fi
}
# run ARGS...: the wrapper from $work; sets out (stdout), err (stderr) and rc.
run() {
	out=$(cd "$work" && "$wrapper" "$@" 2>"$work/.err")
	rc=$?
	err=$(cat "$work/.err")
}
# The variables the child sees.
show='printf "%s|%s|%s" "$LD_PRELOAD" "${MEMKIT_STATS-}" "${MEMKIT_VERBOSE-}"'

run --version
check version "memkit $version/0" "$out/$rc"

run --help
lib_help=$(env MEMKIT_HELP=1 LD_PRELOAD="$lib" true 2>&1)
flags=0
for f in --stats --stats=json --verbose --secure --prof --help --version ' -- '; do
	case $out in *"$f"*) flags=$((flags + 1)) ;; esac
done
check help "usage: memkit/8 flags/library's list last/0" \
	"$(echo "$out" | head -1 | cut -c1-13)/$flags flags/$(case $out in *"$lib_help") echo "library's list last" ;; esac)/$rc"

# --help's list comes from a real process started with MEMKIT_HELP=1 and the preload (a stand-in true
# shows what it was given).
mkdir -p "$work/bin"
printf '#!/bin/sh\necho "true: MEMKIT_HELP=$MEMKIT_HELP LD_PRELOAD=$LD_PRELOAD"\n' >"$work/bin/true"
chmod +x "$work/bin/true"
out=$(cd "$work" && PATH=$work/bin:$PATH "$wrapper" --help 2>&1)
check help-runs-library "true: MEMKIT_HELP=1 LD_PRELOAD=$lib" "$(echo "$out" | tail -1)"

# The library is in the child's maps whichever way the wrapper is reached.
maps() { grep -q "libmemkit\.so\.$version" <<<"$1" && echo 1; }
run cat /proc/self/maps
check preload-other-dir "1/0" "$(maps "$out")/$rc"
out=$(cd "$top/build" && ./memkit cat /proc/self/maps)
check preload-relative "1" "$(maps "$out")"
out=$(cd / && PATH=$top/build:$PATH memkit cat /proc/self/maps)
check preload-through-path "1" "$(maps "$out")"

run sh -c "$show"
check plain-variables "$lib||" "$out"
out=$(cd "$work" && LD_PRELOAD=libm.so.6 "$wrapper" sh -c "$show")
check keeps-ld-preload "$lib libm.so.6||" "$out"

run --stats sh -c "$show"
check stats "$lib|1|" "$out"
run --stats=json sh -c "$show"
check stats-json "$lib|json|" "$out"
run --verbose sh -c "$show"
check verbose "$lib||1" "$out"
run --stats=yaml true
check stats-bad-value "2/memkit: --stats takes 'json' or 'text', not 'yaml'" "$rc/$err"

if [ -e "$top/build/libmemkit-secure.so" ]; then
	run --secure sh -c "$show"
	check secure "$top/build/libmemkit-secure.so||/0" "$out/$rc"
else
	run --secure true
	check secure-missing "1/memkit: --secure: $top/build/libmemkit-secure.so is not there (the secure build is not installed; in a source tree: make build/libmemkit-secure.so)" "$rc/$err"
fi

# --prof: the profiling build, with MEMKIT_PROF=1 unless the environment sets it; not with --secure.
prof_show='printf "%s|%s" "$LD_PRELOAD" "${MEMKIT_PROF-}"'
if [ -e "$top/build/libmemkit-prof.so" ]; then
	run --prof sh -c "$prof_show"
	check prof "$top/build/libmemkit-prof.so|1/0" "$out/$rc"
	out=$(cd "$work" && MEMKIT_PROF=0 "$wrapper" --prof sh -c "$prof_show")
	check prof-keeps-memkit-prof "$top/build/libmemkit-prof.so|0" "$out"
else
	run --prof true
	check prof-missing "1/memkit: --prof: $top/build/libmemkit-prof.so is not there (the profiling build is not installed; in a source tree: make build/libmemkit-prof.so)" "$rc/$err"
	run --prof true
	check prof-missing-again "1" "$rc"
fi
run --prof --secure true
check prof-and-secure "2/memkit: --prof and --secure: one build at a time" "$rc/$err"
# --prof --help: the library's list, from a run that does not profile (no leak report, no profile file).
run --prof --help
case $out$err in *"leak report (pid"*) leak=1 ;; *) leak=0 ;; esac
check prof-help-quiet "0/0/0" "$leak/$rc/$(ls "$work" | grep -c '\.heap$')"

# Options end at --, and at the program: what follows is the program's.
run -- --stats
check double-dash "127" "$rc"
run sh -c "$show" --stats
check options-end-at-program "$lib||/0" "$out/$rc"

run --frobnicate ls
check unknown-option "2/memkit: unknown option '--frobnicate' (memkit --help lists them)" "$rc/$err"
run
check no-program "2" "$rc"
run sh -c 'exit 7'
check exit-status "7" "$rc"
# A copy away from the libraries says what is missing.
cp "$wrapper" "$work/memkit"
out=$("$work/memkit" true 2>&1)
check library-missing "1/memkit: $work/libmemkit.so.$major is not there (memkit is not installed or built)" "$?/$out"
# --libdir: the libraries of another directory (absolute in LD_PRELOAD even when given relative).
out=$("$work/memkit" --libdir="$top/build" cat /proc/self/maps)
check libdir "1" "$(maps "$out")"
out=$(cd "$top" && "$work/memkit" --libdir=build sh -c "$show")
check libdir-relative "$lib||" "$out"
# The preload-only directory moves with --libdir (here, as in build/, it is LIBDIR), resolved after all
# the options whatever their order.
out=$("$work/memkit" --secure --libdir="$top/tests" true 2>&1)
check libdir-moves-preloaddir "1/memkit: --secure: $top/tests/libmemkit-secure.so is not there (the secure build is not installed; in a source tree: make build/libmemkit-secure.so)" "$?/$out"
