/* A server in the style of Larson and Krishnan: worker threads share one table of slots; each step a
 * thread allocates a block of 16-256 bytes and swaps it into a random slot, then frees the block it took
 * out, which another thread most likely allocated.  So most frees are remote frees, as when requests are
 * handed between the threads of a server.
 * Arguments: steps in thousands (default 2000, split between threads), threads (default 2).
 * Self-check: every block is stamped with its size and a tag and verified before it is freed. */
#include <pthread.h>
#include <stdatomic.h>
#include "wl.h"

#define SLOTS 8192

struct block { uint32_t size, tag; };
static _Atomic(struct block *) slot[SLOTS];

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
	for (long s = 0; s < j->work; s++) {
		uint32_t size = 16 + (uint32_t)wl_below(&r, 241);
		struct block *b = wl_malloc(sizeof *b + size);
		b->size = size;
		b->tag = (uint32_t)wl_next(&r);
		wl_stamp(b + 1, size, b->tag);
		struct block *old = atomic_exchange_explicit(&slot[wl_below(&r, SLOTS)], b, memory_order_acq_rel);
		if (old)
			release(old, &j->sum);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long steps = wl_arg(argc, argv, 1, 2000) * 1000;
	int threads = (int)wl_arg(argc, argv, 2, 2);
	uint64_t sum = wl_parallel(threads, steps, 11, run);
	for (int i = 0; i < SLOTS; i++)
		if (slot[i])
			release(slot[i], &sum);
	wl_ok(sum);
	return 0;
}
