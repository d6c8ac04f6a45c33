/* Many threads churning small and medium blocks with random lifetimes (the shape of mimalloc-bench's
 * mstress): each thread keeps its own slots and replaces blocks at random, mostly small (8-256 B), some
 * medium (to 4 KiB), a few larger (to 64 KiB); one step in 64 swaps the block with a slot of a shared
 * table instead, so blocks migrate and are freed by a thread that did not allocate them; every 20,000
 * steps a thread frees half of its slots at once (a phase change).
 * Arguments: steps in thousands (default 4000, split between threads), threads (default 4).
 * Self-check: every block is stamped and verified before it is freed. */
#include <pthread.h>
#include <stdatomic.h>
#include "wl.h"

#define SLOTS 4096
#define SHARED 1024
#define PHASE 20000

struct block { uint32_t size, tag; };
static _Atomic(struct block *) shared[SHARED];

static void release(struct block *b, uint64_t *sum)
{
	wl_verify(b + 1, b->size, b->tag);
	*sum += b->size;
	free(b);
}

static struct block *make(wl_rng *r)
{
	uint64_t kind = wl_below(r, 100);
	uint32_t size = kind < 90 ? 8 + (uint32_t)wl_below(r, 249)
	              : kind < 99 ? 256 + (uint32_t)wl_below(r, 3841)
	                          : 4096 + (uint32_t)wl_below(r, 61441);
	struct block *b = wl_malloc(sizeof *b + size);
	b->size = size;
	b->tag = (uint32_t)wl_next(r);
	wl_stamp(b + 1, size, b->tag);
	return b;
}

static void *run(void *arg)
{
	struct wl_job *j = arg;
	wl_rng r = wl_seed(j->seed);
	struct block **slot = calloc(SLOTS, sizeof *slot);
	if (!slot)
		WL_FAIL("calloc");
	for (long s = 0; s < j->work; s++) {
		unsigned i = (unsigned)wl_below(&r, SLOTS);
		if (wl_below(&r, 64) == 0) {
			struct block *b = slot[i] ? slot[i] : make(&r);
			slot[i] = atomic_exchange_explicit(&shared[wl_below(&r, SHARED)], b, memory_order_acq_rel);
		} else {
			if (slot[i])
				release(slot[i], &j->sum);
			slot[i] = make(&r);
		}
		if (s % PHASE == PHASE - 1)
			for (unsigned k = 0; k < SLOTS; k += 2)
				if (slot[k]) {
					release(slot[k], &j->sum);
					slot[k] = NULL;
				}
	}
	for (unsigned k = 0; k < SLOTS; k++)
		if (slot[k])
			release(slot[k], &j->sum);
	free(slot);
	return NULL;
}

int main(int argc, char **argv)
{
	long steps = wl_arg(argc, argv, 1, 4000) * 1000;
	int threads = (int)wl_arg(argc, argv, 2, 4);
	uint64_t sum = wl_parallel(threads, steps, 31, run);
	for (int i = 0; i < SHARED; i++)
		if (shared[i])
			release(shared[i], &sum);
	wl_ok(sum);
	return 0;
}
