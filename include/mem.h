/* slabfit: the P3A heap (seed 002).  One region mapped by Mem_Init: the first quarter is a slab of
 * equal slots of slabSize bytes, the rest a next-fit heap.  Thread-safe (one lock per part).
 *
 *   Mem_Init(size, slab)  maps the region (size rounded up to pages); returns its start.  NULL with errno:
 *                         EINVAL for size <= 0, slab <= 0 or a slab slot that does not fit the slab quarter;
 *                         EBUSY for a second call (one heap per process); ENOMEM when the kernel refuses.
 *   Mem_Alloc(n)          n == slabSize: a slab slot, or next fit when the slab is full; any other n > 0:
 *                         next fit, the search starting where the last one stopped.  Every address is
 *                         16-byte aligned.  NULL with errno: EINVAL for n <= 0, ENOMEM when nothing fits
 *                         or before Mem_Init.
 *   Mem_Free(p)           0, or -1 (errno = EINVAL) and nothing changed when p is NULL, outside the region,
 *                         not the start of a live block, or already freed.  Next-fit blocks coalesce with
 *                         free neighbours.
 *   Mem_Dump()            prints the heap's layout, free list and slab occupancy to stdout. */
#ifndef MEM_H
#define MEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void *Mem_Init(int sizeOfRegion, int slabSize);
void *Mem_Alloc(int size);
int   Mem_Free(void *ptr);
void  Mem_Dump(void);

/* Extras (not in the seed), for tests, the tester and its pictures. */

/* Walks both parts and verifies every invariant (listed at the top of src/classic/slabfit.c).  Returns 0
 * when they hold (or before Mem_Init), otherwise prints one line per broken invariant to stderr and
 * returns how many it found. */
int   Mem_Check(void);

struct mem_stats {
	char  *region;            /* Mem_Init's result */
	size_t region_size;
	char  *slab_start;        /* first slot */
	size_t slab_slot_size;    /* slabSize rounded up to 16 */
	size_t slab_slots, slab_used;
	char  *nf_start, *nf_end; /* the next-fit heap: blocks with a 16-byte header */
	size_t nf_used_blocks, nf_free_blocks, nf_free_bytes, nf_largest_free; /* free sizes include headers */
	char  *nf_rover;          /* header of the free block the next search starts at; NULL when none */
};
/* Fills *out; -1 before Mem_Init. */
int   Mem_Stats(struct mem_stats *out);

/* Mem_Walk reports the whole region, in address order, as spans of one kind; offsets from the region. */
enum mem_span {
	MEM_SPAN_META,      /* bookkeeping inside the region: the slab's and next fit's bitmaps, padding */
	MEM_SPAN_SLOT_USED, /* an allocated slab slot */
	MEM_SPAN_SLOT_FREE, /* a free slab slot */
	MEM_SPAN_HEADER,    /* the 16-byte header of a next-fit block */
	MEM_SPAN_USED,      /* an allocated next-fit block's bytes after its header */
	MEM_SPAN_FREE,      /* a free next-fit block's bytes after its header */
};
typedef void (*mem_walk_fn)(void *arg, enum mem_span kind, size_t offset, size_t length);
/* Calls fn for every span with both locks held (fn must not call back into the heap); -1 before Mem_Init. */
int   Mem_Walk(mem_walk_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
