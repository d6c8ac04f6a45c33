/* Small-object churn, in the manner of a parser or a symbolic program: a working set of a few thousand
 * objects of mixed small sizes, each step replacing one, plus bursts of short-lived temporaries (a token,
 * an expression node chain) that die at once.  Sizes: mostly 8-128 bytes, some up to 1 KiB.
 * Arguments: steps in thousands (default 2000), threads (default 1; the steps are split between them).
 * Self-check: every object is stamped on allocation and verified before it is freed. */
#include <pthread.h>
#include "wl.h"

#define WORKING_SET 4096

static size_t small_size(wl_rng *r)
{
	uint64_t x = wl_below(r, 100);
	if (x < 60) return 8 + wl_below(r, 57);        /* 8..64: tokens, cons cells, small nodes */
	if (x < 90) return 65 + wl_below(r, 64);       /* 65..128 */
	if (x < 98) return 129 + wl_below(r, 384);     /* 129..512: short strings, small vectors */
	return 513 + wl_below(r, 512);                 /* up to 1 KiB */
}

static void *run(void *arg)
{
	struct wl_job *j = arg;
	wl_rng r = wl_seed(j->seed);
	void *obj[WORKING_SET];
	size_t size[WORKING_SET];
	for (int i = 0; i < WORKING_SET; i++) {
		size[i] = small_size(&r);
		obj[i] = wl_malloc(size[i]);
		wl_stamp(obj[i], size[i], (uint32_t)i);
	}
	void *tmp[32];
	for (long s = 0; s < j->work; s++) {
		int i = (int)wl_below(&r, WORKING_SET);
		wl_verify(obj[i], size[i], (uint32_t)i);
		j->sum += size[i];
		free(obj[i]);
		size[i] = small_size(&r);
		obj[i] = wl_malloc(size[i]);
		wl_stamp(obj[i], size[i], (uint32_t)i);
		if ((s & 7) == 0) {   /* a burst of temporaries, freed in reverse order */
			int n = 1 + (int)wl_below(&r, 32);
			for (int k = 0; k < n; k++) {
				tmp[k] = wl_malloc(16 + 16 * (size_t)(k & 3));
				wl_stamp(tmp[k], 16 + 16 * (size_t)(k & 3), (uint32_t)k);
			}
			while (n--) {
				wl_verify(tmp[n], 16 + 16 * (size_t)(n & 3), (uint32_t)n);
				free(tmp[n]);
			}
		}
	}
	for (int i = 0; i < WORKING_SET; i++) {
		wl_verify(obj[i], size[i], (uint32_t)i);
		free(obj[i]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long steps = wl_arg(argc, argv, 1, 2000) * 1000;
	int threads = (int)wl_arg(argc, argv, 2, 1);
	uint64_t sum = wl_parallel(threads, steps, 1, run);
	wl_ok(sum);
	return 0;
}
