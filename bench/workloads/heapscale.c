/* Costs that grow with the heap: hold H MiB of live blocks of 128 KiB to 1 MiB (uniform sizes), then
 * replace one at random (free it, allocate a new size) many times, and report the time per replacement.
 * An allocator whose large-block operations walk its whole heap slows down as H grows; one whose cost is
 * O(1) or O(log n) stays flat.  Only the first bytes of a block are written (a stamp), so 16 GiB of live
 * blocks fit in a few hundred MiB of RSS: the page faults measured are one per replacement at most.
 * Arguments: H in MiB (default 256), threads (ignored), replacements (default 100000).
 * Prints "metric ns_per_replace N" and "metric time_s S" (the replacement phase alone: the runner uses it
 * as the time, the fill would swamp the wall time), and "metric cpu_ns_per_replace N", the process's CPU
 * time (user + system) for the same phase: on a loaded machine the wall time also counts waiting for a
 * core.  Self-check: every block's stamp is verified before it
 * is freed and at the end. */
#include "wl.h"

#define MIN_SIZE ((size_t)128 << 10)
#define MAX_SIZE ((size_t)1 << 20)

struct blk { unsigned char *p; size_t size; };

static size_t pick(wl_rng *r) { return MIN_SIZE + 1 + (size_t)wl_below(r, MAX_SIZE - MIN_SIZE); }

static void put(struct blk *b, size_t size, uint32_t tag)
{
	b->p = wl_malloc(size);
	b->size = size;
	wl_stamp(b->p, 16, tag);   /* the first 16 bytes only: one page touched */
}

int main(int argc, char **argv)
{
	size_t heap = (size_t)wl_arg(argc, argv, 1, 256) << 20;
	long steps = wl_arg(argc, argv, 3, 100000);
	wl_rng r = wl_seed(77);
	size_t cap = heap / MIN_SIZE + 1, n = 0, live = 0;
	struct blk *blk = wl_malloc(cap * sizeof *blk);
	while (live < heap) {
		put(&blk[n], pick(&r), (uint32_t)n);
		live += blk[n].size;
		n++;
	}
	uint64_t sum = 0;
	double c0 = wl_cpu(), t0 = wl_now();
	for (long i = 0; i < steps; i++) {
		size_t k = (size_t)wl_below(&r, n);
		wl_verify(blk[k].p, 16, (uint32_t)k);
		sum += blk[k].size;
		free(blk[k].p);
		put(&blk[k], pick(&r), (uint32_t)k);
	}
	double t = wl_now() - t0, c = wl_cpu() - c0;
	for (size_t k = 0; k < n; k++) {
		wl_verify(blk[k].p, 16, (uint32_t)k);
		free(blk[k].p);
	}
	free(blk);
	printf("metric ns_per_replace %.1f\n", t * 1e9 / (double)steps);
	printf("metric cpu_ns_per_replace %.1f\n", c * 1e9 / (double)steps);
	printf("metric time_s %.6f\n", t);
	printf("metric blocks %zu\n", n);
	wl_ok(sum);
	return 0;
}
