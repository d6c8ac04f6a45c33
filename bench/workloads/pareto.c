/* Pareto-distributed sizes with random lifetimes: most objects are small and die young, a few are large
 * or live long, as measured in real programs.  Sizes: Pareto with alpha 1.3 from 16 bytes, capped at
 * 256 KiB.  Lifetimes: Pareto too (1 to 64K steps), kept in a timing wheel that frees what is due.
 * Arguments: steps in thousands (default 1000), threads (default 1; the steps are split between them).
 * Self-check: every block is stamped and verified when it dies. */
#include <math.h>
#include <pthread.h>
#include "wl.h"

#define WHEEL 65536  /* steps; lifetimes are shorter than one turn */

struct obj { struct obj *next; size_t size; uint32_t tag; };

static double pareto(wl_rng *r, double min, double alpha)
{
	return min / pow(1.0 - wl_unit(r), 1.0 / alpha);
}

static void *run(void *arg)
{
	struct wl_job *j = arg;
	wl_rng r = wl_seed(j->seed);
	struct obj **wheel = calloc(WHEEL, sizeof *wheel);
	if (!wheel)
		WL_FAIL("calloc");
	for (long s = 0; s < j->work + WHEEL; s++) {
		struct obj **due = &wheel[s % WHEEL];
		while (*due) {
			struct obj *o = *due;
			*due = o->next;
			wl_verify(o + 1, o->size, o->tag);
			j->sum += o->size;
			free(o);
		}
		if (s >= j->work)
			continue;  /* drain: let everything die */
		double sz = pareto(&r, 16, 1.3);
		size_t size = sz > 262144 ? 262144 : (size_t)sz;
		long life = (long)pareto(&r, 1, 0.8);
		if (life >= WHEEL)
			life = WHEEL - 1;
		struct obj *o = wl_malloc(sizeof *o + size);
		o->size = size;
		o->tag = (uint32_t)s;
		wl_stamp(o + 1, size, o->tag);
		struct obj **slot = &wheel[(s + life) % WHEEL];
		o->next = *slot;
		*slot = o;
	}
	free(wheel);
	return NULL;
}

int main(int argc, char **argv)
{
	long steps = wl_arg(argc, argv, 1, 1000) * 1000;
	int threads = (int)wl_arg(argc, argv, 2, 1);
	uint64_t sum = wl_parallel(threads, steps, 7, run);
	wl_ok(sum);
	return 0;
}
