/* A skewed mix of sizes up to 64 KiB with random lifetimes (the shape of the alloc-test benchmark):
 * each thread, independently, replaces a random block of its pool of 8192 slots at every step; sizes
 * are 2^(16 u^3) bytes for u uniform in [0, 1) (about half under 16 B, 95% under 4 KiB, a long tail to
 * 64 KiB), and one step in 16 frees without allocating, so the pool's occupancy drifts.
 * Arguments: steps in thousands (default 4000, split between threads), threads (default 2).
 * Self-check: every block is stamped and verified before it is freed. */
#include <math.h>
#include "wl.h"

#define POOL 8192

struct block { uint32_t size, tag; };

static void release(struct block *b, uint64_t *sum)
{
	wl_verify(b + 1, b->size, b->tag);
	*sum += b->size;
	free(b);
}

static void *run(void *arg)
{
	struct wl_job *j = arg;
	wl_rng r = wl_seed(j->seed);
	struct block **pool = calloc(POOL, sizeof *pool);
	if (!pool)
		WL_FAIL("calloc");
	for (long s = 0; s < j->work; s++) {
		unsigned i = (unsigned)wl_below(&r, POOL);
		if (pool[i]) {
			release(pool[i], &j->sum);
			pool[i] = NULL;
		}
		if (wl_below(&r, 16) == 0)
			continue;
		double u = wl_unit(&r);
		uint32_t size = (uint32_t)exp2(16.0 * u * u * u);
		struct block *b = wl_malloc(sizeof *b + size);
		b->size = size;
		b->tag = (uint32_t)wl_next(&r);
		wl_stamp(b + 1, size, b->tag);
		pool[i] = b;
	}
	for (unsigned k = 0; k < POOL; k++)
		if (pool[k])
			release(pool[k], &j->sum);
	free(pool);
	return NULL;
}

int main(int argc, char **argv)
{
	long steps = wl_arg(argc, argv, 1, 4000) * 1000;
	int threads = (int)wl_arg(argc, argv, 2, 2);
	wl_ok(wl_parallel(threads, steps, 41, run));
	return 0;
}
