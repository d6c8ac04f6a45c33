/* Large blocks, 64 KiB to 32 MiB (log-uniform), a handful live at a time, each touched page by page as a
 * buffer or an image would be.  Measures how an allocator maps, caches, reuses and returns big blocks:
 * page faults dominate, so an allocator that unmaps every free pays for it on the next allocation.
 * Arguments: allocations (default 2000), threads (default 1; allocations are split between them).
 * Self-check: each block's pages carry a stamp that is verified before it is freed. */
#include <math.h>
#include <pthread.h>
#include "wl.h"

#define LIVE 8
#define PAGE 4096

static void touch(unsigned char *p, size_t n, unsigned char v)
{
	for (size_t o = 0; o < n; o += PAGE)
		p[o] = v;
	p[n - 1] = v;
}

static void check(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t o = 0; o < n; o += PAGE)
		if (p[o] != v)
			WL_FAIL("large block %p of %zu bytes: page at %zu overwritten", (const void *)p, n, o);
	if (p[n - 1] != v)
		WL_FAIL("large block %p of %zu bytes: last byte overwritten", (const void *)p, n);
}

static void *run(void *arg)
{
	struct wl_job *j = arg;
	wl_rng r = wl_seed(j->seed);
	unsigned char *blk[LIVE] = { 0 };
	size_t size[LIVE] = { 0 };
	for (long i = 0; i < j->work + LIVE; i++) {
		int k = (int)(i % LIVE);
		if (blk[k]) {
			check(blk[k], size[k], (unsigned char)size[k]);
			j->sum += size[k];
			free(blk[k]);
			blk[k] = NULL;
		}
		if (i >= j->work)
			continue;
		/* log-uniform between 2^16 and 2^25 bytes */
		size[k] = (size_t)exp2(16.0 + 9.0 * wl_unit(&r));
		blk[k] = wl_malloc(size[k]);
		touch(blk[k], size[k], (unsigned char)size[k]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long count = wl_arg(argc, argv, 1, 2000);
	int threads = (int)wl_arg(argc, argv, 2, 1);
	uint64_t sum = wl_parallel(threads, count, 13, run);
	wl_ok(sum);
	return 0;
}
