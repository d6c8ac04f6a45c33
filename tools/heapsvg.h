/* heapsvg: draws a heap's address range as an SVG strip chart, for any allocator that can list its
 * memory as spans (offset, length, kind).  The range is wrapped over `rows` rows so small blocks stay
 * visible; adjacent spans of the same kind are drawn as one rectangle; marks (a rover, a boundary) are
 * vertical lines with a label. */
#ifndef HEAPSVG_H
#define HEAPSVG_H

#include <stddef.h>

struct heapsvg_kind { const char *label, *fill; };
struct heapsvg_span { int kind; size_t offset, length; };
struct heapsvg_mark { size_t offset; const char *label; };

struct heapsvg {
	const char *title;
	const char *notes[4];                /* lines under the title, NULL for none */
	size_t total;                        /* bytes the chart covers, from offset 0 */
	int rows;                            /* default 16 */
	const struct heapsvg_kind *kinds;
	int nkinds;
	const struct heapsvg_span *spans;    /* in address order */
	size_t nspans;
	const struct heapsvg_mark *marks;
	size_t nmarks;
};

/* Writes the chart to `path`; 0, or -1 with errno set. */
int heapsvg_write(const struct heapsvg *h, const char *path);

#endif
