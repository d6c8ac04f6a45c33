/* heapsvg: see svg.h. */
#include <errno.h>

#include "prof/out.h"
#include "prof/svg.h"

/* Tenths of a pixel. */
enum { WIDTH = 9600, LEFT = 1150, RIGHT = 100, ROW_H = 220, ROW_GAP = 120, TOP = 1550, BAND = 40 };
#define PLOT_W (WIDTH - LEFT - RIGHT)

static long scale(size_t v, size_t of, long width) { return of ? (long)((double)v * width / (double)of) : 0; }

static void rect(struct mk_out *o, long x, long y, long w, long h, const char *fill, const char *extra)
{
	mk__out_printf(o, "<rect x=\"%ld\" y=\"%ld\" width=\"%ld\" height=\"%ld\" fill=\"%s\"%s/>\n", x, y,
	               w < 3 ? 3 : w, h, fill, extra);
}

static void text(struct mk_out *o, long x, long y, const char *attrs, const char *s)
{
	mk__out_printf(o, "<text x=\"%ld\" y=\"%ld\"%s>", x, y, attrs);
	mk__out_xml(o, s);
	mk__out_str(o, "</text>\n");
}

/* Bytes [from, to) of span sp, split over the rows they cross. */
static void span_rects(struct mk_out *o, const struct heapsvg *h, size_t per_row, int kind, struct heapsvg_fill f,
                       size_t from, size_t to)
{
	const char *fill = h->kinds[kind].fill;
	while (from < to) {
		size_t row = from / per_row, row_end = (row + 1) * per_row, end = to < row_end ? to : row_end;
		long x = LEFT + scale(from - row * per_row, per_row, PLOT_W);
		long w = scale(end - from, per_row, PLOT_W);
		long y = TOP + (long)row * (ROW_H + ROW_GAP);
		if (f.fill > 0) {
			long fh = ROW_H * (f.fill > 1000 ? 1000 : f.fill) / 1000;
			rect(o, x, y, w, ROW_H, fill, " fill-opacity=\"0.3\"");
			rect(o, x, y + ROW_H - fh, w, fh, fill, "");
		} else {
			rect(o, x, y, w, ROW_H, fill, "");
		}
		if (f.group > 0 && f.group <= h->ngroups)
			rect(o, x, y - BAND - 10, w, BAND, h->groups[f.group - 1].fill, "");
		from = end;
	}
}

static void legend(struct mk_out *o, const struct heapsvg_kind *k, int n, long y)
{
	for (int i = 0; i < n; i++) {
		long x = 100 + (i % 3) * 3150, yy = y + (i / 3) * 200;
		mk__out_printf(o, "<rect x=\"%ld\" y=\"%ld\" width=\"140\" height=\"140\" fill=\"%s\" stroke=\"#333\"/>", x,
		               yy - 110, k[i].fill);
		text(o, x + 200, yy, "", k[i].label);
	}
}

static long chart(struct mk_out *o, const struct heapsvg_chart *c, long y)
{
	const long H = 2400, x0 = LEFT, w = PLOT_W;
	double xmax = 0, ymax = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (c->x[i] > xmax)
			xmax = c->x[i];
		for (int s = 0; s < c->nseries; s++)
			if (c->series[s].y[i] > ymax)
				ymax = c->series[s].y[i];
	}
	if (xmax <= 0)
		xmax = 1;
	if (ymax <= 0)
		ymax = 1;
	text(o, 100, y, " font-size=\"150\"", c->title);
	y += 200;
	mk__out_printf(o, "<rect x=\"%ld\" y=\"%ld\" width=\"%ld\" height=\"%ld\" fill=\"none\" stroke=\"#999\"/>\n", x0, y,
	               w, H);
	char label[64];
	for (int t = 0; t <= 4; t++) {
		long ty = y + H - H * t / 4;
		mk__out_printf(o, "<text x=\"%ld\" y=\"%ld\" text-anchor=\"end\" fill=\"#666\">%ld %s</text>\n", x0 - 60,
		               ty + 40, (long)(ymax * t / 4), c->yunit ? c->yunit : "");
		mk__out_printf(o, "<text x=\"%ld\" y=\"%ld\" text-anchor=\"middle\" fill=\"#666\">%ld.%ld s</text>\n",
		               x0 + w * t / 4, y + H + 160, (long)(xmax * t / 4), (long)(xmax * t / 4 * 10) % 10);
	}
	for (int s = 0; s < c->nseries; s++) {
		mk__out_printf(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"25\" points=\"", c->series[s].color);
		for (size_t i = 0; i < c->n; i++)
			mk__out_printf(o, "%ld,%ld ", x0 + (long)(c->x[i] / xmax * w),
			               y + H - (long)(c->series[s].y[i] / ymax * H));
		mk__out_str(o, "\"/>\n");
		long lx = x0 + 100 + s * 2300;
		mk__out_printf(o, "<rect x=\"%ld\" y=\"%ld\" width=\"200\" height=\"40\" fill=\"%s\"/>", lx, y + H + 260,
		               c->series[s].color);
		(void)label;
		text(o, lx + 260, y + H + 310, "", c->series[s].label);
	}
	return y + H + 450;
}

void heapsvg_draw(struct mk_out *o, const struct heapsvg *h)
{
	int rows = h->rows > 0 ? h->rows : 16;
	size_t per_row = (h->total + (size_t)rows - 1) / (size_t)rows;
	if (per_row == 0)
		per_row = 1;
	long legend_y = TOP + rows * (ROW_H + ROW_GAP) + 160;
	long y_end = legend_y + 200 * ((h->nkinds + 2) / 3 + (h->ngroups + 2) / 3);
	long bars_y = y_end + 200;
	if (h->nbars)
		y_end = bars_y + 250 + ROW_H + 300;
	long chart_y = y_end + 150;
	if (h->chart && h->chart->n)
		y_end = chart_y + 200 + 2400 + 500;
	mk__out_printf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%ld\" viewBox=\"0 0 %d %ld\" "
	                  "font-family=\"sans-serif\" font-size=\"120\">\n", WIDTH / 10, y_end / 10 + 1, WIDTH, y_end + 10);
	mk__out_str(o, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
	text(o, 100, 200, " font-size=\"150\"", h->title ? h->title : "heap");
	for (int i = 0; i < 8 && h->notes[i]; i++)
		text(o, 100, 380 + 140 * i, " fill=\"#444\" font-size=\"110\"", h->notes[i]);
	char label[64];
	for (int r = 0; r < rows; r++) {
		const char *l = h->row_labels ? h->row_labels[r] : NULL;
		if (!l) {
			mk__out_printf(o, "<text x=\"%d\" y=\"%ld\" text-anchor=\"end\" fill=\"#666\">+%zu</text>\n", LEFT - 60,
			               (long)TOP + r * (ROW_H + ROW_GAP) + 150, (size_t)r * per_row);
			continue;
		}
		(void)label;
		text(o, LEFT - 60, (long)TOP + r * (ROW_H + ROW_GAP) + 150, " text-anchor=\"end\" fill=\"#666\" font-size=\"100\"", l);
	}
	/* Runs of one kind, fill and group are one rectangle: a slab of thousands of slots stays a few. */
	size_t i = 0;
	while (i < h->nspans) {
		struct heapsvg_span run = h->spans[i];
		struct heapsvg_fill f = h->fills ? h->fills[i] : (struct heapsvg_fill){ 0, 0 };
		size_t to = run.offset + run.length;
		while (++i < h->nspans && h->spans[i].kind == run.kind && h->spans[i].offset == to &&
		       (!h->fills || (h->fills[i].fill == f.fill && h->fills[i].group == f.group)))
			to += h->spans[i].length;
		if (run.kind >= 0 && run.kind < h->nkinds && to > run.offset)
			span_rects(o, h, per_row, run.kind, f, run.offset, to > h->total ? h->total : to);
	}
	for (size_t m = 0; m < h->nmarks; m++) {
		size_t off = h->marks[m].offset, row = off / per_row;
		long x = LEFT + scale(off - row * per_row, per_row, PLOT_W), y = TOP + (long)row * (ROW_H + ROW_GAP);
		mk__out_printf(o, "<line x1=\"%ld\" y1=\"%ld\" x2=\"%ld\" y2=\"%ld\" stroke=\"black\" stroke-width=\"20\"/>\n", x,
		               y - 40, x, y + ROW_H + 40);
		text(o, x, y - 60, " font-size=\"110\" text-anchor=\"middle\"", h->marks[m].label);
	}
	legend(o, h->kinds, h->nkinds, legend_y);
	if (h->ngroups)
		legend(o, h->groups, h->ngroups, legend_y + 200 * ((h->nkinds + 2) / 3));
	if (h->nbars) {
		size_t total = 0;
		for (size_t b = 0; b < h->nbars; b++)
			total += h->bars[b].bytes;
		text(o, 100, bars_y, " font-size=\"130\"", h->bars_title ? h->bars_title : "");
		long x = LEFT;
		for (size_t b = 0; b < h->nbars; b++) {
			long w = scale(h->bars[b].bytes, total, PLOT_W);
			if (h->bars[b].kind >= 0 && h->bars[b].kind < h->nkinds)
				rect(o, x, bars_y + 120, w, ROW_H, h->kinds[h->bars[b].kind].fill, " stroke=\"#333\" stroke-width=\"5\"");
			if (h->bars[b].label && w > 400)
				text(o, x + 40, bars_y + 120 + ROW_H + 130, " font-size=\"100\"", h->bars[b].label);
			x += w;
		}
	}
	if (h->chart && h->chart->n)
		chart(o, h->chart, chart_y);
	mk__out_str(o, "</svg>\n");
}

int heapsvg_write(const struct heapsvg *h, const char *path)
{
	mk_out *o = mk__scratch(sizeof *o);
	if (!o)
		return -1;
	if (!mk__out_open(o, path)) {
		int e = errno;
		mk__scratch_free(o, sizeof *o);
		errno = e;
		return -1;
	}
	heapsvg_draw(o, h);
	int r = mk__out_close(o);
	int e = errno;
	mk__scratch_free(o, sizeof *o);
	errno = e;
	return r;
}
