/* Large blocks: over MK_MEDIUM_MAX (128 KiB) and up to MK_LARGE_MAX (2 MiB), one block per span.
 *
 * A large span belongs to no heap (its heap field is NULL, so every free of it leaves the inlined path)
 * and goes straight back to its segment when freed, from whatever thread.  Its memory is then reused by
 * the next span or large block without a system call and without page faults while it is resident; the
 * segment's purge delay and budget decide when it goes back to the system. */
#include "engine/engine.h"
#include "engine/reuse.h"

void *mk__large_alloc(size_t n)
{
	unsigned slices = (unsigned)((n + MK_SLICE_SIZE - 1) >> MK_SLICE_SHIFT);
	mk_span *s = mk__reuse_avoid_large(mk__span_alloc(slices, MK_LARGE_CLS), slices);   /* reuse.c */
	if (!s)
		return NULL;
	mk_block *b = (mk_block *)s->start;
	MK_ASAN_LIVE(b, s->block_size);
	b->cookie = 0;   /* the memory may have held a freed small block: it must not look freed */
	return b;
}

/* The cookie stays in the freed run (until it is purged or reused), so a second free of the block is
 * reported as a double free rather than as an unknown pointer. */
void mk__large_free(mk_span *s)
{
	MK_ASAN_FREE((void *)s->start, s->block_size);
	((mk_block *)s->start)->cookie = mk__cookie((void *)s->start);
	mk__reuse_freed_large(s);
	mk__span_free(s);
}
