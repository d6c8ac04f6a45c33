/* heapsvg: the one drawing module for pictures of heaps (the engine's heap map, region heaps, the classic
 * allocators' pictures in tools/).  A heap is drawn as rows of spans over an address range (offset,
 * length, kind), each span optionally with a fill (per mille of it in use, drawn as a solid part over a
 * pale background) and a group (whose colour is a band over the span: the thread heap that owns it);
 * adjacent spans of one kind, fill and group are drawn as one rectangle; marks are vertical lines with a
 * label.  Optional: a row of bars (blocks outside the range, like huge blocks), and a line chart (the
 * time view).  Written through mk_out (write(2), no malloc), in integer coordinates (tenths of a pixel
 * through the viewBox) so that no floating-point formatting is needed. */
#ifndef MK_HEAPSVG_H
#define MK_HEAPSVG_H

#include <stddef.h>

struct heapsvg_kind { const char *label, *fill; };
struct heapsvg_span { int kind; size_t offset, length; };
/* Optional, one per span: fill 1..1000 (per mille in use; 0: none), group (1-based; 0: none). */
struct heapsvg_fill { int fill, group; };
struct heapsvg_mark { size_t offset; const char *label; };
struct heapsvg_bar { int kind; size_t bytes; const char *label; };
struct heapsvg_series { const char *label, *color; const double *y; };
struct heapsvg_chart {
	const char *title, *yunit;
	size_t n;                            /* points */
	const double *x;                     /* seconds */
	int nseries;
	struct heapsvg_series series[4];
};

struct heapsvg {
	const char *title;
	const char *notes[8];                /* lines under the title, NULL for none */
	size_t total;                        /* bytes the chart covers, from offset 0 */
	int rows;                            /* default 16 */
	const char *const *row_labels;       /* NULL: each row is labelled with its first offset */
	const struct heapsvg_kind *kinds;
	int nkinds;
	const struct heapsvg_kind *groups;   /* group g (1-based) is groups[g - 1] */
	int ngroups;
	const struct heapsvg_span *spans;    /* in address order */
	const struct heapsvg_fill *fills;    /* NULL, or one per span */
	size_t nspans;
	const struct heapsvg_mark *marks;
	size_t nmarks;
	const char *bars_title;
	const struct heapsvg_bar *bars;
	size_t nbars;
	const struct heapsvg_chart *chart;
};

struct mk_out;
/* Draws h into o (a whole SVG document). */
void heapsvg_draw(struct mk_out *o, const struct heapsvg *h);
/* Writes the picture to `path`; 0, or -1 with errno set. */
int heapsvg_write(const struct heapsvg *h, const char *path);

#endif
