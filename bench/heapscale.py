"""The heap-size scaling section of the benchmark (bench/run.py --only heapscale): does a large-block
operation cost more when the heap is bigger?

    build/bench/heapscale H 1 STEPS   hold H MiB of live blocks of 128 KiB-1 MiB, replace one at random
                                      STEPS times (first bytes written only): ns per replacement
    build/bench/largepair PAIRS       malloc(256 KiB), write its first byte, free: ns per pair

Every allocator runs at every heap size, interleaved (one allocator after the other, then again), and
the report gives the median ns per replacement, how much slower the largest heap is than the smallest
(flat is 1), and the large pair.  Python 3 standard library only; the runner passes its own helpers in."""
import math
import os
import statistics

import charts

# per profile (tiny, quick, full): heap sizes in MiB, replacements per run, large pairs per run
HEAPS = ([16], [64, 256, 1024], [64, 256, 1024, 4096, 16384])
STEPS = (500, 20000, 50000)
PAIRS = (2000, 200000, 1000000)
SLOW = 8.0   # an allocator this many times slower than the fastest on its first run is not repeated


def _available_kib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _median_metric(runs, key):
    vals = [r["metrics"][key] for r in runs if r["status"] == "ok" and key in r["metrics"]]
    return statistics.median(vals) if vals else None


def section(allocs, index, reps, bindir, run_once, say, progress):
    """Runs the points; returns {"heaps": [...], "ns": {alloc: {H: ns}}, "pair_ns": {alloc: ns},
    "status": {alloc: {H: status}}, "steps": n, "pairs": n}."""
    heaps, steps, pairs = HEAPS[index], STEPS[index], PAIRS[index]
    names = [a["name"] for a in allocs]
    say("== heap-size scaling: ns per replacement of a 128 KiB-1 MiB block among H MiB live; large pair ==")
    say("%-12s" % "allocator" + "".join("%10s" % ("%d MiB" % h) for h in heaps) + "%10s%12s" % ("flat", "pair ns"))
    runs = {n: {h: [] for h in heaps + ["pair"]} for n in names}
    points = [(h, [os.path.join(bindir, "heapscale"), str(h), "1", str(steps)]) for h in heaps]
    points.append(("pair", [os.path.join(bindir, "largepair"), str(pairs), "1", "256"]))
    key = {"pair": "ns_per_pair"}
    rss = {}   # each allocator's peak RSS (KiB) at the last heap size it ran, and that size
    for point, argv in points:
        best = None
        for rep in range(reps):
            for a in allocs:
                prev = runs[a["name"]][point]
                if prev and (prev[-1]["status"] != "ok" or (best and prev[0]["wall"] > SLOW * best)):
                    continue
                # An allocator that makes every block resident (its RSS grows with H, not with what is
                # written) would take the machine's memory at the large sizes: not run where its RSS,
                # scaled from the last size, would pass half of what is available.
                last = rss.get(a["name"])
                if point != "pair" and last and last[0] * point / last[1] > _available_kib() / 2:
                    if not prev:
                        prev.append(dict(status="skipped (RSS)", wall=0, rss_kib=0, metrics={}))
                    continue
                progress("heapscale %s rep %d/%d %s" % (point, rep + 1, reps, a["name"]))
                cap = max(60.0, 20 * best) if best else 600.0
                r = run_once(argv, a["preload"], cap, a.get("env"))
                r.pop("stdout", None)
                prev.append(r)
                if r["status"] == "ok":
                    best = min(best or r["wall"], r["wall"])
                    if point != "pair":
                        rss[a["name"]] = (r["rss_kib"], point)
    out = dict(heaps=heaps, steps=steps, pairs=pairs, ns={}, pair_ns={}, cpu_ns={}, pair_cpu_ns={}, status={})
    for n in names:
        # keyed by str(H), as the JSON results file has them
        out["ns"][n] = {str(h): _median_metric(runs[n][h], "ns_per_replace") for h in heaps}
        out["status"][n] = {str(h): (runs[n][h][-1]["status"] if runs[n][h] else "not run") for h in heaps}
        out["pair_ns"][n] = _median_metric(runs[n]["pair"], key["pair"])
        out["cpu_ns"][n] = {str(h): _median_metric(runs[n][h], "cpu_ns_per_replace") for h in heaps}
        out["pair_cpu_ns"][n] = _median_metric(runs[n]["pair"], "cpu_ns_per_pair")
        say("%-12s" % n + "".join("%10s" % _fmt(out["ns"][n][str(h)], out["status"][n][str(h)]) for h in heaps)
            + "%10s%12s" % (_flat(out["ns"][n], heaps), _fmt(out["pair_ns"][n], "-")))
    say()
    return out


def _fmt(v, status):
    return "%.0f" % v if v else status


def _flat(ns, heaps):
    lo, hi = ns.get(str(heaps[0])), ns.get(str(heaps[-1]))
    return "%.2f" % (hi / lo) if lo and hi and len(heaps) > 1 else "-"


def markdown(hs, chart):
    """The report's section (a list of lines)."""
    heaps = hs["heaps"]
    L = ["", "## Heap-size scaling", "",
         "ns per replacement: `build/bench/heapscale H 1 %d` holds H MiB of live blocks of 128 KiB-1 MiB "
         "(uniform sizes, first bytes written only) and frees and allocates one at random %d times; median of "
         "the interleaved runs. `flat`: the largest heap's figure over the smallest's (1 is flat). `pair`: "
         "`build/bench/largepair %d`, ns per malloc(256 KiB) + first-byte write + free, one thread. Chart: "
         "`bench/results/%s`." % (hs["steps"], hs["steps"], hs["pairs"], chart), "",
         "| allocator | " + " | ".join("%d MiB" % h for h in heaps) + " | flat | pair ns |",
         "|---|" + "---:|" * (len(heaps) + 2)]
    for n, row in hs["ns"].items():
        st = hs["status"][n]
        L.append("| %s | " % n + " | ".join(_fmt(row.get(str(h)), st.get(str(h), "-")) for h in heaps)
                 + " | %s | %s |" % (_flat(row, heaps), _fmt(hs["pair_ns"].get(n), "-")))
    L += ["", "The same runs' CPU time (user + system) per replacement and per pair: on a loaded machine the "
          "wall time also counts the time spent waiting for a core.", "",
          "| allocator | " + " | ".join("%d MiB" % h for h in heaps) + " | flat | pair ns |",
          "|---|" + "---:|" * (len(heaps) + 2)]
    for n, row in hs.get("cpu_ns", {}).items():
        st = hs["status"][n]
        L.append("| %s | " % n + " | ".join(_fmt(row.get(str(h)), st.get(str(h), "-")) for h in heaps)
                 + " | %s | %s |" % (_flat(row, heaps), _fmt(hs["pair_cpu_ns"].get(n), "-")))
    L += ["", "![heap-size scaling](%s)" % chart]
    return L


def chart_svg(hs, command):
    """ns per replacement against the heap size, both on log scales, one line per allocator."""
    heaps = hs["heaps"]
    series = list(hs["ns"])
    vals = [v for row in hs["ns"].values() for v in row.values() if v]
    lo_e = math.floor(math.log10(min(vals))) if vals else 1
    hi_e = math.ceil(math.log10(max(vals))) if vals else 4
    hi_e = max(hi_e, lo_e + 1)
    left, top, pw, ph = 70, 70, 520, 300
    width, height = left + pw + 40, top + ph + 80
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">' % (
        width, height, width, height), '<rect width="100%" height="100%" fill="white"/>',
        charts._text(left, 20, "ns per large-block replacement against live heap size (lower is better)", 14,
                     extra='font-weight="bold"')]
    leg, _ = charts._legend(series, left, 44, width - left - 10)
    out += leg
    xs = {h: left + pw * (i / max(len(heaps) - 1, 1)) for i, h in enumerate(heaps)}

    def y_of(v):
        return top + ph * (hi_e - math.log10(v)) / (hi_e - lo_e)
    for e in range(lo_e, hi_e + 1):
        y = y_of(10.0 ** e)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (left, left + pw, y, y))
        out.append(charts._text(left - 6, y + 4, "%g ns" % 10.0 ** e, 10, "end"))
    for h in heaps:
        out.append(charts._text(xs[h], top + ph + 16, "%d MiB" % h if h < 1024 else "%d GiB" % (h // 1024), 10, "middle"))
    for si, n in enumerate(series):
        color = charts.PALETTE[si % len(charts.PALETTE)]
        coords = [(xs[h], y_of(hs["ns"][n][str(h)])) for h in heaps if hs["ns"][n].get(str(h))]
        if len(coords) > 1:
            out.append('<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"><title>%s</title></polyline>'
                       % (color, " ".join("%.1f,%.1f" % c for c in coords), n))
        for c in coords:
            out.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>' % (c[0], c[1], color))
    out.append(charts._text(left, top + ph + 40, "live heap (log scale); ns per replacement (log scale)", 10,
                            extra='fill="#555"'))
    out.append(charts._text(left, top + ph + 56, "reproduce: " + command, 10, extra='fill="#555"'))
    out.append("</svg>")
    return "\n".join(out) + "\n"
