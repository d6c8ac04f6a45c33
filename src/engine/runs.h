/* segment.c's two indexes, which make a span's allocation, its free and purging cost the same whatever
 * the size of the heap:
 *  - bins of free runs by length: bin[k] lists the free runs of exactly k slices (1..63): those with a
 *    dirty slice when inserted first, the last one inserted first (the likeliest to be still resident),
 *    then those with none (but bin 63 is in insertion order alone), and a bitmap says which bins are not empty,
 *    so the best-fitting run is one count-trailing-zeros away;
 *  - the queue of dirty slices (free, and not purged since they were freed) in the order they became
 *    dirty, which is the order of their dirty_since_ms stamps: the delayed purge takes from its front
 *    what is old enough, and purging over the budget takes the oldest first, without looking at the rest.
 * Both are intrusive: their links live in the segment headers (mk_segment.run_link, dirty_link), so
 * nothing here allocates.  A slice is named by its segment's address | its index.  Everything here
 * runs under the segment lock. */
#ifndef MK_RUNS_H
#define MK_RUNS_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/types.h"

typedef uintptr_t mk_sref;   /* a slice: (uintptr_t)segment | index, 0 for none */

static inline mk_sref mk__sref(mk_segment *seg, unsigned i) { return (uintptr_t)seg | i; }
static inline mk_segment *mk__sref_seg(mk_sref r) { return (mk_segment *)(r & ~(uintptr_t)MK_SEG_MASK); }
static inline unsigned mk__sref_slice(mk_sref r) { return (unsigned)(r & MK_SEG_MASK); }
/* Slices [i, i + n) as a bit mask (i >= 1, so n < 64). */
static inline uint64_t mk__slice_bits(unsigned i, unsigned n) { return (((uint64_t)1 << n) - 1) << i; }

typedef struct mk_runs {
	mk_sref bin[MK_SLICES];          /* bin[k]: the free runs of k slices, by their first slice */
	mk_sref bin_last[MK_SLICES];     /* the last of each: the one inserted longest ago */
	uint64_t bin_mask;               /* bit k: bin[k] is not empty */
	mk_sref dirty_first, dirty_last; /* the dirty slices, oldest first */
	size_t ndirty;                   /* how many */
} mk_runs;

void    mk__bin_insert(mk_runs *x, mk_segment *seg, unsigned i, unsigned len);
void    mk__bin_remove(mk_runs *x, mk_segment *seg, unsigned i, unsigned len);
/* The free run to take n slices from, or 0: the best fit (the first run of the shortest non-empty bin of
 * n slices or more), unless a run of at most n + n/8 slices is more resident where it would be cut: of
 * those bins, the first run whose n slices at its start or at its end are all dirty (no page faults),
 * else the one whose cut covers the most dirty slices (the shorter run on a tie).  Not further: cutting
 * a resident run much longer than the request, where a better fit is free, fragments the segments
 * (holding 4-16 GiB of 128 KiB-1 MiB blocks and replacing them at random, looking 8 bins up for
 * residency took 1.35-1.40x the time per replacement, and mapped 13% more segments at 16 GiB: purges and
 * page faults of the extra memory; the 1/8 is the waste a size class allows).  What it costs: a program
 * that writes all of its large blocks faults in more of them (the `large` workload: 10% more page faults
 * with the purge delay out of the way, 0-18% with it, and about 10% more CPU time; a window of n + n/2
 * lost most of the gain above).  *at: the first slice to take: the run's end when that end covers more
 * dirty slices (cutting from the end leaves the rest of the run as it was: see segment.c), else its start
 * (where the block freed there had its first bytes, the ones most programs touch; and spans laid from
 * the start of a segment keep the memory below its first span unmapped, which stops a far underflow). */
mk_sref mk__bin_find(const mk_runs *x, unsigned n, unsigned *at);

/* Makes the free slices of `mask` dirty as of now: stamped, and queued at the back. */
void    mk__dirty_add(mk_runs *x, mk_segment *seg, uint64_t mask, uint64_t now);
/* Makes the slices of `mask` clean (reused or purged): out of the queue.  Returns how many were dirty. */
unsigned mk__dirty_clear(mk_runs *x, mk_segment *seg, uint64_t mask);
static inline mk_sref mk__bin_prev(mk_sref r) { return mk__sref_seg(r)->run_link[mk__sref_slice(r)].prev; }
static inline mk_sref mk__dirty_next(mk_sref r) { return mk__sref_seg(r)->dirty_link[mk__sref_slice(r)].next; }
static inline uint64_t mk__dirty_since(mk_sref r) { return mk__sref_seg(r)->dirty_since_ms[mk__sref_slice(r)]; }

/* mk_check's part: every free run of the `nsegs` listed segments in exactly one bin, of its length;
 * the bitmap right; every dirty slice queued once, in stamp order.  Counts the errors into *errors. */
void    mk__runs_check(const mk_runs *x, mk_segment *segments, int *errors);

#endif
