/* Draws the sbrk allocator's heap as SVG after a workload: each row is a stretch of the address range
 * (one 4 KiB page unless the heap is large), blocks coloured by what their bytes are: header, used
 * payload, free, fence; the program break marks the end.  The summary goes to stderr.
 *
 *   build/sbrk-picture fragment > docs/img/sbrk-fragment.svg
 *   build/sbrk-picture stats        the figures of docs/sbrk.md: overhead per block, brk calls, trimming
 *
 * The tool is linked with the allocator's objects, so its own mallocs (none after start-up: stdout gets
 * a static buffer) run on the heap it draws. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "classic/sbrk.h"
#include "os/os.h"

enum { MAX_BLOCKS = 200000 };

static struct seen {
	uintptr_t at;
	size_t size;
	int kind;
} blocks[MAX_BLOCKS];
static size_t nblocks;

static void record(void *arg, uintptr_t at, size_t size, int kind)
{
	(void)arg;
	if (nblocks < MAX_BLOCKS)
		blocks[nblocks++] = (struct seen){ at, size, kind };
}

static uint64_t rng = 0x853c49e6748fea9bull;
static size_t rnd(size_t lo, size_t hi)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return lo + (size_t)(rng % (hi - lo + 1));
}

/* First fit over a LIFO list, fed a mix of sizes and lifetimes: long-lived blocks pin the holes that
 * the short-lived ones leave, and later requests split those holes into slivers. */
static void workload_fragment(void)
{
	enum { N = 700 };
	static void *p[N];
	for (int i = 0; i < N; i++)
		p[i] = mymalloc(rnd(8, 400));
	for (int i = 0; i < N; i++)
		if (i % 3 != 0 && rnd(0, 9) < 8) {
			myfree(p[i]);
			p[i] = NULL;
		}
	for (int i = 0; i < N; i++)
		if (!p[i] && rnd(0, 1))
			p[i] = mymalloc(rnd(8, 600));
	for (int i = N - 1; i >= 0; i--)
		if (p[i] && i > N * 4 / 5) {   /* the youngest go: the top of the heap is given back */
			myfree(p[i]);
			p[i] = NULL;
		}
}

/* Overhead per block (bytes consumed minus bytes asked for) over a range of sizes, all blocks live. */
static void overhead(size_t lo, size_t hi)
{
	static void *p[4096];
	size_t sum = 0, min = SIZE_MAX, max = 0;
	for (size_t n = lo; n <= hi; n++) {
		p[n - lo] = mymalloc(n);
		size_t o = malloc_usable_size(p[n - lo]) + MK_SBRK_HEADER - n;
		sum += o;
		min = o < min ? o : min;
		max = o > max ? o : max;
	}
	for (size_t n = lo; n <= hi; n++)
		myfree(p[n - lo]);
	printf("sizes %zu..%zu: overhead per block mean %.1f, min %zu, max %zu bytes\n", lo, hi,
	       (double)sum / (double)(hi - lo + 1), min, max);
}

/* brk calls and bytes for n live allocations of `size` bytes. */
static void brk_calls(size_t n, size_t size)
{
	static void *p[100000];
	struct mk_sbrk_counters a, b;
	mk__sbrk_counters(&a);
	for (size_t i = 0; i < n; i++)
		p[i] = mymalloc(size);
	mk__sbrk_counters(&b);
	for (size_t i = 0; i < n; i++)
		myfree(p[i]);
	size_t grown = b.brk_bytes_grown - a.brk_bytes_grown;
	printf("%6zu x malloc(%zu): %lu brk growths, %zu bytes grown, %.0f%% of them asked for\n", n, size,
	       b.grow_calls - a.grow_calls, grown, grown ? 100.0 * (double)(n * size) / (double)grown : 0.0);
}

static void trimming(size_t size)
{
	char *before = mk__os_sbrk(0);
	void *p = mymalloc(size);
	char *grown = mk__os_sbrk(0);
	myfree(p);
	char *after = mk__os_sbrk(0);
	printf("malloc(%zu) then free: break +%td then %td bytes\n", size, grown - before, after - grown);
}

static void stats(void)
{
	overhead(1, 64);
	overhead(1, 256);
	overhead(1, 4096);
	brk_calls(1000, 24);
	brk_calls(100000, 24);
	brk_calls(100000, 100);
	trimming(1 << 20);
	trimming(MK_SBRK_TRIM_AT / 2);
	printf("check: %d broken invariants\n", mk__sbrk_check());
}

static const char *const fills[] = { "#4a7fd0", "#d9e8c9", "#c0392b" };   /* used, free, fence */
#define HEADER_FILL "#1f2d44"

static void draw(const char *title, uintptr_t start, uintptr_t brk)
{
	size_t span = brk - start;
	size_t row = MK_PAGE_SIZE;
	while (span / row > 48)
		row *= 2;
	size_t rows = (span + row - 1) / row;
	const double width = 1024, left = 90, top = 78, height = 16, gap = 6;
	double scale = width / (double)row;
	printf("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
	       "font-family=\"monospace\" font-size=\"12\">\n",
	       left + width + 20, top + (double)rows * (height + gap) + 30);
	printf("<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	printf("<text x=\"10\" y=\"22\" font-size=\"15\">%s</text>\n", title);
	const char *names[] = { "header", "used payload", "free", "fence" };
	const char *legend[] = { HEADER_FILL, fills[0], fills[1], fills[2] };
	for (int i = 0; i < 4; i++) {
		printf("<rect x=\"%d\" y=\"36\" width=\"14\" height=\"14\" fill=\"%s\" stroke=\"#666\"/>", 10 + i * 150,
		       legend[i]);
		printf("<text x=\"%d\" y=\"48\">%s</text>\n", 30 + i * 150, names[i]);
	}
	printf("<text x=\"10\" y=\"68\">one row = %zu bytes; offsets from the heap start; the red line is the "
	       "program break</text>\n", row);
	for (size_t r = 0; r < rows; r++)
		printf("<text x=\"10\" y=\"%.1f\">+0x%05zx</text>\n", top + (double)r * (height + gap) + 12, r * row);
	/* a block may span rows: draw it piece by piece */
	for (size_t i = 0; i < nblocks; i++) {
		const struct seen *b = &blocks[i];
		size_t hdr = b->kind == MK_SBRK_FENCE ? 0 : MK_SBRK_HEADER;
		for (int part = 0; part < 2; part++) {
			size_t from = b->at - start + (part ? hdr : 0);
			size_t to = part ? b->at - start + b->size : from + hdr;
			const char *fill = part ? fills[b->kind] : HEADER_FILL;
			while (from < to) {
				size_t r = from / row, end = (r + 1) * row < to ? (r + 1) * row : to;
				printf("<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.0f\" fill=\"%s\"/>\n",
				       left + (double)(from - r * row) * scale, top + (double)r * (height + gap),
				       (double)(end - from) * scale, height, fill);
				from = end;
			}
		}
	}
	size_t r = span / row;
	double x = left + (double)(span - r * row) * scale, y = top + (double)r * (height + gap);
	if (span % row == 0 && r > 0) {
		r--;
		x = left + width;
		y = top + (double)r * (height + gap);
	}
	printf("<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"red\" stroke-width=\"2\"/>\n", x,
	       y - 3, x, y + height + 3);
	printf("<text x=\"%.2f\" y=\"%.1f\" fill=\"red\">break</text>\n", x - 20, y + height + 15);
	printf("</svg>\n");
}

int main(int argc, char **argv)
{
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	const char *name = argc > 1 ? argv[1] : "fragment";
	if (strcmp(name, "stats") == 0) {
		stats();
		return 0;
	}
	if (strcmp(name, "fragment") != 0) {
		fprintf(stderr, "usage: %s [fragment] > picture.svg | %s stats\n", argv[0], argv[0]);
		return 2;
	}
	workload_fragment();
	if (mk__sbrk_check() != 0)
		return 1;
	struct mk_sbrk_counters c;
	mk__sbrk_counters(&c);
	mk__sbrk_walk(record, NULL);
	size_t largest = 0, headers = 0;
	for (size_t i = 0; i < nblocks; i++) {
		if (blocks[i].kind == MK_SBRK_FREE && blocks[i].size > largest)
			largest = blocks[i].size;
		if (blocks[i].kind == MK_SBRK_USED)
			headers += MK_SBRK_HEADER;
	}
	char title[200];
	snprintf(title, sizeof title,
	         "sbrk heap after the '%s' workload: %zu used blocks, %zu free blocks, largest free %zu of %zu "
	         "free bytes", name, c.used_blocks, c.free_blocks, largest, c.free_bytes);
	draw(title, c.heap_start, c.heap_end);
	fprintf(stderr,
	        "workload %s: heap %zu bytes, used %zu blocks / %zu bytes (headers %zu), free %zu blocks / %zu "
	        "bytes, largest free %zu, top free %zu, brk growths %lu, brk shrinks %lu\n",
	        name, (size_t)(c.heap_end - c.heap_start), c.used_blocks, c.used_bytes, headers, c.free_blocks,
	        c.free_bytes, largest, c.top_free, c.grow_calls, c.shrink_calls);
	return 0;
}
