/* heapsvg: see heapsvg.h. */
#include "heapsvg.h"

#include <stdio.h>

enum { WIDTH = 960, LEFT = 90, ROW_H = 22, ROW_GAP = 16, TOP = 96 };

/* Draws bytes [from, to) of kind k, split over the rows they cross. */
static void rect(FILE *f, const struct heapsvg *h, size_t per_row, int k, size_t from, size_t to)
{
	while (from < to) {
		size_t row = from / per_row, row_end = (row + 1) * per_row;
		size_t end = to < row_end ? to : row_end;
		double x = LEFT + (double)(from - row * per_row) * (WIDTH - LEFT - 10) / (double)per_row;
		double w = (double)(end - from) * (WIDTH - LEFT - 10) / (double)per_row;
		fprintf(f, "<rect x=\"%.2f\" y=\"%zu\" width=\"%.2f\" height=\"%d\" fill=\"%s\"/>\n", x,
		        TOP + row * (ROW_H + ROW_GAP), w < 0.3 ? 0.3 : w, ROW_H, h->kinds[k].fill);
		from = end;
	}
}

static void escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else
			fputc(*s, f);
	}
}

int heapsvg_write(const struct heapsvg *h, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	int rows = h->rows > 0 ? h->rows : 16;
	size_t per_row = (h->total + (size_t)rows - 1) / (size_t)rows;
	if (per_row == 0)
		per_row = 1;
	int height = TOP + rows * (ROW_H + ROW_GAP) + 30 + 20 * ((h->nkinds + 3) / 4);
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	           "font-family=\"sans-serif\" font-size=\"12\">\n", WIDTH, height);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"15\">");
	escape(f, h->title ? h->title : "heap");
	fputs("</text>\n", f);
	for (int i = 0; i < 4 && h->notes[i]; i++) {
		fprintf(f, "<text x=\"10\" y=\"%d\" fill=\"#444\">", 38 + 14 * i);
		escape(f, h->notes[i]);
		fputs("</text>\n", f);
	}
	for (int r = 0; r < rows; r++)
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#666\">+%zu</text>\n", LEFT - 6,
		        TOP + r * (ROW_H + ROW_GAP) + 15, (size_t)r * per_row);
	/* Merge runs of one kind so that a slab of thousands of slots stays a few rectangles. */
	size_t i = 0;
	while (i < h->nspans) {
		size_t from = h->spans[i].offset, to = from + h->spans[i].length;
		int k = h->spans[i].kind;
		while (++i < h->nspans && h->spans[i].kind == k && h->spans[i].offset == to)
			to += h->spans[i].length;
		if (k >= 0 && k < h->nkinds && to > from)
			rect(f, h, per_row, k, from, to > h->total ? h->total : to);
	}
	for (size_t m = 0; m < h->nmarks; m++) {
		size_t off = h->marks[m].offset, row = off / per_row;
		double x = LEFT + (double)(off - row * per_row) * (WIDTH - LEFT - 10) / (double)per_row;
		double y = TOP + (double)row * (ROW_H + ROW_GAP);
		fprintf(f, "<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"black\" stroke-width=\"2\"/>\n",
		        x, y - 4, x, y + ROW_H + 4);
		fprintf(f, "<text x=\"%.2f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">", x, y - 6);
		escape(f, h->marks[m].label);
		fputs("</text>\n", f);
	}
	int ly = TOP + rows * (ROW_H + ROW_GAP) + 16;
	for (int k = 0; k < h->nkinds; k++) {
		int x = 10 + (k % 4) * 230, y = ly + (k / 4) * 20;
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\" stroke=\"#333\"/>"
		           "<text x=\"%d\" y=\"%d\">", x, y - 11, h->kinds[k].fill, x + 20, y);
		escape(f, h->kinds[k].label);
		fputs("</text>\n", f);
	}
	fputs("</svg>\n", f);
	return fclose(f) == 0 ? 0 : -1;
}
