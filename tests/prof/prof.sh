#!/usr/bin/env bash
# The profiler and the heap maps end to end, under build/libmemkit.so (or the library PROF_SH_LIB
# names: tests/prof/prof-build.sh runs this on the profiling build): the leak report at exit (right
# stacks, estimates within the bound of tests/prof/profile.h), google-pprof reading the profile, mkprof's
# top-N and flame graph, a dump on MEMKIT_PROF_SIGNAL, growth dumps, the time view, python3 profiled, and
# headless Chromium rendering a heap map (skipped, with a line saying so, where chromium is not installed;
# CI installs it from .ci/packages).
set -u
cd "$(dirname "$0")/../.."
B=build
LIB=${PROF_SH_LIB:-$PWD/$B/libmemkit.so}
LEAK=$B/tests/prof-leak
d=$(mktemp -d /tmp/memkit-prof.XXXXXX)
trap 'rm -rf "$d"' EXIT
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$chromium" ]; then echo "PLAN 15"; else echo "PLAN 14"; fi
ok() { if [ "$1" = 0 ]; then echo "PASS $2"; else echo "FAIL $2"; fi; }
svg_ok() { python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$1" 2>/dev/null; }

# 1-3: the leak report.
MEMKIT_PROF=1 MEMKIT_PROF_RATE=4096 MEMKIT_PROF_FILE=$d/leak.heap $LEAK leak 2>$d/leak.err
rc=$?
grep -q "^memkit: leak report (pid [0-9]*): .* (1 sample per 4096 bytes; 0 allocations by the unwinder after its warm-up)" $d/leak.err
ok $(( rc != 0 || $? )) "leak report at exit; no allocation by the unwinder after its warm-up"
grep -q '^memkit:   8388608 bytes in 1 blocks of 8388608 (1 samples) at leak_huge < main' $d/leak.err
ok $? "leak report: leak_huge's 8 MiB block, exact, with its stack"
python3 - "$d/leak.err" <<'PY'
import math, re, sys
# 2000 blocks of 4096 bytes at a 4096-byte rate: the estimate within 5 sigma (tests/prof/profile.h)
text = open(sys.argv[1]).read()
m = re.search(r"^memkit:   (\d+) bytes in \d+ blocks of 4096 \(\d+ samples\) at leak_pages < main", text, re.M)
q = 1 - math.exp(-4096 / 4096)
bound = 5 * 4096 * math.sqrt(2000 * (1 - q) / q) + 4096
sys.exit(0 if m and abs(int(m.group(1)) - 2000 * 4096) <= bound else 1)
PY
ok $? "leak report: leak_pages' 2000 blocks of 4 KiB within the stated bound"

# 4-5: google-pprof (package google-perftools) reads the profile written at exit.
if command -v google-pprof >/dev/null; then
	google-pprof --text $d/leak.heap >$d/pprof.txt 2>$d/pprof.err
	rc=$?
	grep -Eq '^ +8\.0 +[0-9.]+% +[0-9.]+% +8\.0 +[0-9.]+% leak_huge$' $d/pprof.txt && grep -q ' leak_pages$' $d/pprof.txt
	ok $(( rc != 0 || $? )) "google-pprof --text reads the profile: leak_huge 8.0 MB, leak_pages"
	google-pprof --text --alloc_space $d/leak.heap >$d/pprof2.txt 2>/dev/null && grep -q ' leak_pages$' $d/pprof2.txt
	ok $? "google-pprof --text --alloc_space"
else
	echo "FAIL google-pprof is not installed (apt-get install google-perftools)"
	echo "FAIL google-pprof --text --alloc_space"
fi

# 6-7: mkprof, memkit's own reader.
$B/mkprof --top 5 $d/leak.heap >$d/top.txt
grep -Eq '^ +8388608 +[0-9.]+% +8388608 .* leak_huge$' $d/top.txt && grep -q 'top 5 by allocated bytes' $d/top.txt
ok $? "mkprof --top: live and allocated tables, leak_huge exact"
$B/mkprof --flame $d/flame.svg $d/leak.heap && svg_ok $d/flame.svg && grep -q '>leak_pages' $d/flame.svg &&
	grep -q '<title>main (' $d/flame.svg
ok $? "mkprof --flame: a well-formed flame graph with the stacks"

# 8: a dump and a map on MEMKIT_PROF_SIGNAL (written by the dump thread, while the program runs).
MEMKIT_PROF=1 MEMKIT_PROF_SIGNAL=SIGUSR2 MEMKIT_PROF_FILE=$d/sig.heap MEMKIT_MAP=$d/sig.svg MEMKIT_PROF_LEAKS=0 \
	$LEAK signal $d/sig.svg 2>$d/sig.err
rc=$?
grep -q ' leak_huge$' $d/sig.heap && svg_ok $d/sig.svg && [ -f $d/sig.1.heap ]
ok $(( rc != 0 || $? )) "MEMKIT_PROF_SIGNAL: profile and map on the signal, then the exit's profile (sig.1.heap)"

# 9: growth dumps: 64 blocks of 1 MiB, a dump every 16 MiB of growth, so exactly 4.
MEMKIT_PROF=1 MEMKIT_PROF_RATE=65536 MEMKIT_PROF_GROWTH=16M MEMKIT_PROF_AT_EXIT=0 MEMKIT_PROF_LEAKS=0 \
	MEMKIT_PROF_FILE=$d/grow.heap $LEAK grow
n=$(ls $d | grep -c '^grow')
[ "$n" = 4 ] && [ -f $d/grow.3.heap ]
ok $? "MEMKIT_PROF_GROWTH=16M: 4 dumps for 64 MiB (found $n)"

# 10: MEMKIT_PROF_AT_EXIT=0 and MEMKIT_PROF_LEAKS=0 write nothing; off, nothing either.
MEMKIT_PROF=1 MEMKIT_PROF_AT_EXIT=0 MEMKIT_PROF_LEAKS=0 MEMKIT_PROF_FILE=$d/none.heap $LEAK leak 2>$d/none.err
rc=$?
MEMKIT_PROF_FILE=$d/off.heap $LEAK leak 2>>$d/none.err
[ $rc = 0 ] && [ ! -e $d/none.heap ] && [ ! -e $d/off.heap ] && [ ! -s $d/none.err ]
ok $? "no output when asked for none, and none when profiling is off"

# 11: the time view: RSS, live and resident free sampled every 20 ms for 0.6 s.
MEMKIT_MAP=$d/time.svg MEMKIT_MAP_INTERVAL=20 $LEAK churn 600
pts=$(grep -o '<polyline[^>]*points="[^"]*"' $d/time.svg 2>/dev/null | head -1 | grep -o ',' | wc -l)
svg_ok $d/time.svg && [ "$pts" -ge 10 ] && grep -q 'memkit-map segments=' $d/time.svg
ok $? "MEMKIT_MAP + MEMKIT_MAP_INTERVAL: the map with the time view ($pts points)"

# 12-13: a real program profiled: python3 with PYTHONMALLOC=malloc (every object through malloc).
py='import json; d=[{"k": str(i) * 5, "v": list(range(i % 50))} for i in range(40000)]; print(len(json.dumps(d)))'
want=$(/usr/bin/python3 -c "$py")
got=$(PYTHONMALLOC=malloc MEMKIT_PROF=1 MEMKIT_PROF_FILE=$d/py.heap MEMKIT_PROF_LEAKS=0 MEMKIT_MAP=$d/py.svg \
	LD_PRELOAD=$LIB /usr/bin/python3 -c "$py")
[ "$got" = "$want" ] && [ -n "$want" ]
ok $? "python3 under the profiler: same output"
$B/mkprof --top 3 $d/py.heap >$d/py.txt && grep -q 'top 3 by allocated bytes' $d/py.txt && svg_ok $d/py.svg &&
	{ ! command -v google-pprof >/dev/null || google-pprof --text $d/py.heap >/dev/null 2>&1; }
ok $? "python3's profile read by mkprof and google-pprof; its heap map well-formed"

# 14: the differential fuzzer (every function of the family, threads, cross-thread frees, fork, trim,
# mk_check) under the profiler at a 4 KiB rate: seed 1, then a random seed.
seed=$(( $(date +%s) % 100000 ))
MEMKIT_PROF=1 MEMKIT_PROF_RATE=4096 MEMKIT_PROF_AT_EXIT=0 MEMKIT_PROF_LEAKS=0 LD_PRELOAD=$LIB \
	$B/tests/fuzz-plain -s 1 -t 2 >$d/fuzz.log 2>&1 &&
MEMKIT_PROF=1 MEMKIT_PROF_RATE=4096 MEMKIT_PROF_AT_EXIT=0 MEMKIT_PROF_LEAKS=0 LD_PRELOAD=$LIB \
	$B/tests/fuzz-plain -s $seed -t 2 >>$d/fuzz.log 2>&1
rc=$?
[ $rc = 0 ] || tail -5 $d/fuzz.log
ok $rc "the differential fuzzer under the profiler (rate 4 KiB; seeds 1 and $seed)"

# 15: headless Chromium opens the map and takes a screenshot of the expected size, not blank.
if [ -n "$chromium" ]; then
	read -r w h < <(sed -n 's/^<svg [^>]*width="\([0-9]*\)" height="\([0-9]*\)".*/\1 \2/p' $d/time.svg | head -1)
	timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=$d/chrome \
		--window-size=${w:-0},${h:-0} --screenshot=$d/shot.png "file://$d/time.svg" >$d/chrome.log 2>&1
	python3 - "$d/shot.png" "${w:-0}" "${h:-0}" <<'PY'
import struct, sys, zlib
# The PNG's size from IHDR, then its pixels: a blank page is one colour.
data = open(sys.argv[1], "rb").read()
w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
idat = b"".join(data[i + 8:i + 8 + struct.unpack(">I", data[i:i + 4])[0]]
                for i in range(8, len(data)) if data[i + 4:i + 8] == b"IDAT")
raw = zlib.decompress(idat)
bpp = {2: 3, 6: 4}[ctype]
colours = set(raw[y * (w * bpp + 1) + 1 + x * bpp:y * (w * bpp + 1) + 1 + x * bpp + 3]
              for y in range(0, h, 7) for x in range(0, w, 5))   # unfiltered bytes: enough to tell blank
sys.exit(0 if (w, h) == (int(sys.argv[2]), int(sys.argv[3])) and len(colours) > 8 else 1)
PY
	ok $? "headless Chromium renders the heap map: ${w}x${h}, not blank"
else
	echo "SKIP headless Chromium rendering of the heap map: chromium is not installed here (CI installs it)"
fi
