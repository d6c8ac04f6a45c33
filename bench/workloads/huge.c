/* Huge blocks: up to 20 live blocks of 5 to 25 MiB (uniform sizes), one replaced at random at each step,
 * each new one from calloc and written at its two ends only (a zeroed table or buffer used sparsely;
 * gcc makes calloc of malloc followed by memset 0 in any case).  Measures what an allocator pays per
 * huge block: mmap/munmap and the faults of what is touched when it maps afresh, a memset or a purge of
 * the pages when it reuses a range.
 * Arguments: replacements (default 2000), threads (ignored).
 * Self-check: every block is zero past its stamped ends, checked at a few points, before it is freed. */
#include "wl.h"

#define LIVE 20
#define MIN_SIZE ((size_t)5 << 20)
#define MAX_SIZE ((size_t)25 << 20)

static void check(const unsigned char *p, size_t n, unsigned char v)
{
	if (p[0] != v || p[n - 1] != v || p[n / 2] != 0 || p[1] != 0)
		WL_FAIL("huge block %p of %zu bytes overwritten", (const void *)p, n);
}

int main(int argc, char **argv)
{
	long steps = wl_arg(argc, argv, 1, 2000);
	wl_rng r = wl_seed(5);
	unsigned char *blk[LIVE] = { 0 };
	size_t size[LIVE] = { 0 };
	uint64_t sum = 0;
	for (long i = 0; i < steps; i++) {
		int k = (int)wl_below(&r, LIVE);
		if (blk[k]) {
			check(blk[k], size[k], (unsigned char)(k + 1));
			sum += size[k];
			free(blk[k]);
		}
		size[k] = MIN_SIZE + (size_t)wl_below(&r, MAX_SIZE - MIN_SIZE + 1);
		blk[k] = calloc(1, size[k]);
		if (!blk[k])
			WL_FAIL("calloc(%zu) returned NULL", size[k]);
		blk[k][0] = blk[k][size[k] - 1] = (unsigned char)(k + 1);
	}
	for (int k = 0; k < LIVE; k++)
		if (blk[k]) {
			check(blk[k], size[k], (unsigned char)(k + 1));
			sum += size[k];
			free(blk[k]);
		}
	wl_ok(sum);
	return 0;
}
