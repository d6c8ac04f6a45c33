"""SVG charts for the benchmark report, written by hand (no plotting library): grouped bars of ratios on a
log scale with the line at 1 marked, and small multiples of thread-scaling curves.  Every chart carries the command that
reproduces it."""
import math
from xml.sax.saxutils import escape

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#edc948", "#9c755f", "#bab0ac"]
FONT = 'font-family="Helvetica, Arial, sans-serif"'


def _text(x, y, s, size=11, anchor="start", extra=""):
    return '<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" %s %s>%s</text>' % (
        x, y, size, anchor, FONT, extra, escape(str(s)))


def _legend(series, x, y, width):
    out, cx = [], x
    for i, name in enumerate(series):
        w = 22 + 7 * len(name)
        if cx + w > x + width:
            cx, y = x, y + 16
        out.append('<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>' % (cx, y - 10, PALETTE[i % len(PALETTE)]))
        out.append(_text(cx + 16, y, name))
        cx += w
    return out, y


def grouped_bars(title, groups, series, value, baseline, command):
    """One group of bars per workload, one bar per allocator: value(group, series) is a ratio to the
    baseline (None when missing), on a log2 axis.  Bars rise from the bottom of the axis, so that a ratio
    of 1 (the baseline itself, and anyone equal to it) has a length like any other; the dark line marks 1
    and a bar ending below it is better."""
    vals = [value(g, s) for g in groups for s in series]
    present = [v for v in vals if v]
    lo = min([0.5] + present)
    hi = max([2.0] + present)
    lo_e, hi_e = math.floor(math.log2(lo)), math.ceil(math.log2(hi))
    hi_e = min(hi_e, lo_e + 8)  # beyond 256x the bar is clipped and labelled
    bar_w, gap = 9, 14
    group_w = bar_w * len(series) + gap
    left, top, plot_h = 56, 62, 300
    width = max(640, left + group_w * len(groups) + 20)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">' % (
        width, top + plot_h + 90, width, top + plot_h + 90),
        '<rect width="100%" height="100%" fill="white"/>', _text(left, 20, title, 14, extra='font-weight="bold"')]
    leg, _ = _legend(series, left, 42, width - left - 10)
    out += leg

    def y_of(v):
        e = min(max(math.log2(v), lo_e), hi_e)
        return top + plot_h * (hi_e - e) / (hi_e - lo_e)
    for e in range(lo_e, hi_e + 1):
        y = y_of(2.0 ** e)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="%s"/>' % (
            left, width - 10, y, y, "#333" if e == 0 else "#ddd", "1.2" if e == 0 else "0.8"))
        out.append(_text(left - 6, y + 4, ("%g" % 2.0 ** e) + "x", 10, "end"))
    for gi, g in enumerate(groups):
        x0 = left + gap / 2 + gi * group_w
        for si, s in enumerate(series):
            v = value(g, s)
            x = x0 + si * bar_w
            if not v:
                out.append(_text(x + bar_w / 2, y_of(1) - 3, "-", 9, "middle", 'fill="#999"'))
                continue
            y1, y0 = y_of(v), top + plot_h
            out.append('<rect x="%.1f" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s on %s: %.2fx</title></rect>'
                       % (x, y1, bar_w - 1, max(y0 - y1, 1), PALETTE[si % len(PALETTE)],
                          escape(s), escape(g), v))
            if math.log2(v) > hi_e:
                out.append(_text(x + bar_w / 2, top - 2, "%.0f" % v, 8, "middle"))
        out.append(_text(x0 + group_w / 2 - gap / 2, top + plot_h + 16, g, 11, "middle"))
    # The line at 1 again, over the bars (they rise through it).
    out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333" stroke-width="1.2"/>' % (
        left, width - 10, y_of(1), y_of(1)))
    out.append(_text(left, top + plot_h + 40, "ratio to %s per workload, log scale; the dark line is 1x (%s); "
                     "a bar ending below it is better" % (baseline, baseline), 10, extra='fill="#555"'))
    out.append(_text(left, top + plot_h + 56, "reproduce: " + command, 10, extra='fill="#555"'))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def scaling_lines(title, data, command, cores):
    """data[workload][allocator][threads] = {"speedup": float or None}: one panel per workload, one line
    per allocator, with the ideal (linear up to the core count) dashed."""
    workloads = list(data)
    series = list(next(iter(data.values()))) if data else []
    pw, ph, pad = 250, 180, 46
    cols = min(len(workloads), 4) or 1
    rows = (len(workloads) + cols - 1) // cols
    width = max(640, cols * (pw + pad) + pad)
    top = 70
    height = top + rows * (ph + 60) + 30
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">' % (
        width, height, width, height), '<rect width="100%" height="100%" fill="white"/>',
        _text(pad, 20, title, 14, extra='font-weight="bold"')]
    leg, _ = _legend(series, pad, 44, width - pad - 10)
    out += leg
    for wi, w in enumerate(workloads):
        px = pad + (wi % cols) * (pw + pad)
        py = top + (wi // cols) * (ph + 60)
        threads = sorted({t for s in data[w].values() for t in s})
        ys = [p["speedup"] for s in data[w].values() for p in s.values() if p.get("speedup")]
        ymax = max([2.5] + ys) * 1.1
        xs = {t: px + pw * (i / max(len(threads) - 1, 1)) for i, t in enumerate(threads)}

        def y_of(v):
            return py + ph - ph * v / ymax
        out.append(_text(px, py - 4, w, 12, extra='font-weight="bold"'))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>' % (px, py, pw, ph))
        step = 0.5 if ymax < 4 else 1.0
        v = 0.0
        while v <= ymax:
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>' % (px, px + pw, y_of(v), y_of(v)))
            out.append(_text(px - 4, y_of(v) + 4, "%g" % v, 9, "end"))
            v += step
        for t in threads:
            out.append(_text(xs[t], py + ph + 14, "%d" % t, 9, "middle"))
        out.append(_text(px + pw / 2, py + ph + 28, "threads", 9, "middle", 'fill="#555"'))
        ideal = " ".join("%.1f,%.1f" % (xs[t], y_of(min(t, cores))) for t in threads)
        out.append('<polyline fill="none" stroke="#999" stroke-dasharray="4 3" points="%s"><title>ideal</title></polyline>' % ideal)
        for si, (name, pts) in enumerate(data[w].items()):
            coords = [(xs[t], y_of(pts[t]["speedup"])) for t in threads if pts.get(t, {}).get("speedup")]
            if len(coords) > 1:
                out.append('<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"><title>%s</title></polyline>'
                           % (PALETTE[si % len(PALETTE)], " ".join("%.1f,%.1f" % c for c in coords), escape(name)))
            for c in coords:
                out.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>' % (c[0], c[1], PALETTE[si % len(PALETTE)]))
        out.append(_text(px + pw - 4, py + 12, "dashed: ideal", 8, "end", 'fill="#777"'))
    out.append(_text(pad, height - 10, "reproduce: " + command, 10, extra='fill="#555"'))
    out.append("</svg>")
    return "\n".join(out) + "\n"
