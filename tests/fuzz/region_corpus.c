/* Writes the seed corpus of tests/fuzz/region_fuzz.c into the directory given: small valid region files
 * (8 KiB heaps in a few states) and damaged ones, each followed by a program of calls (see the harness for
 * the format).  `make fuzz-region-corpus` runs it; its output is committed in tests/fuzz/corpus/region/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memkit_region.h"
#include "region/layout.h"

#define SIZE MKR_MIN_REGION

static _Alignas(16) char mem[SIZE];
static const char *dir;

/* One program for every seed: alloc, free, realloc, walks, stats, check, made-up pointers, roots.  The
 * first byte picks the file (even) or attach (odd) path, with both fix-ups on. */
static const unsigned char ops_file[] = {6, 0, 5, 1, 9, 0, 17, 2, 200, 3, 5, 4, 40, 5, 0, 6, 0, 7, 3, 8, 0, 9, 0,
                                         10, 99, 11, 3, 12, 5, 13, 2, 135, 7, 9, 0};
static const unsigned char ops_attach[] = {7, 0, 5, 1, 9, 2, 9, 4, 90, 5, 0, 6, 0, 135, 0, 8, 0, 9, 0};

static void emit(const char *name, size_t image, const unsigned char *ops, size_t n)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(mem, 1, image, f) != image || fwrite(ops, 1, n, f) != n || fputc((int)n, f) == EOF ||
	    fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void both(const char *name, size_t image)
{
	char n[256];
	snprintf(n, sizeof n, "%s-file", name);
	emit(n, image, ops_file, sizeof ops_file);
	snprintf(n, sizeof n, "%s-attach", name);
	emit(n, image, ops_attach, sizeof ops_attach);
}

static struct rg_header *hd(void) { return (struct rg_header *)mem; }
static uint64_t off_of(mkr_heap *h, void *p) { return mkr_to_off(h, p) - RG_UNIT; }

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	mkr_heap *h = mkr_create_in(mem, SIZE);
	if (!h)
		return 1;
	both("empty", SIZE);

	void *p[6];
	static const size_t sizes[6] = {100, 16, 16, 16, 300, 1000};
	for (int i = 0; i < 6; i++)
		p[i] = mkr_alloc(h, sizes[i]);
	mkr_free(h, p[1]);
	mkr_free(h, p[3]);
	mkr_root_set(h, 0, mkr_to_off(h, p[4]));
	both("used", SIZE);

	/* 11: bin for a large request headed by a 2-unit block whose prev is set (p[1].prev = p[3]) */
	char keep[SIZE];
	memcpy(keep, mem, SIZE);
	unsigned big = 64 + (8 - 6) * 4 + 3; /* a bin of a few hundred units */
	hd()->bins[big] = off_of(h, p[1]);
	hd()->bin_map[big / 64] |= 1ull << (big % 64);
	both("forged-head", SIZE);

	/* 12: a header zeroed by an overrun of the block before it */
	memcpy(mem, keep, SIZE);
	memset(mem + off_of(h, p[2]), 0, 16);
	both("zeroed-header", SIZE);

	/* a size past the end with a valid check value, bins outside the region, a misaligned link */
	memcpy(mem, keep, SIZE);
	uint64_t at = off_of(h, p[4]);
	*(uint64_t *)(mem + at) = mk__rg_word0(at, (hd()->heap_end - at) / RG_UNIT + 5, 1);
	both("size-past-end", SIZE);
	memcpy(mem, keep, SIZE);
	hd()->bins[2] = 1ull << 40;
	*(uint64_t *)(mem + off_of(h, p[3]) + 16) = off_of(h, p[0]) + 8;
	hd()->free_blocks = ~0ull;
	both("bad-links", SIZE);

	/* a truncated file */
	memcpy(mem, keep, SIZE);
	emit("truncated-file", SIZE / 2, ops_file, sizeof ops_file);
	return 0;
}
