/* The default build's one rule about reuse: a large block (over 128 KiB, one span each, large.c) is not
 * handed out again by the very next large malloc after its free.
 *
 * A large block's free gives its run straight back to its segment, and the next large malloc of a size
 * that fits takes that same run (it is resident: no page faults), so a program that frees a block and
 * allocates again gets its old pointer, with its old data, back at once: a use after free then reads or
 * writes the new block.  Here the next large malloc that would get the run of the block freed last takes
 * another run instead and gives that one back (it stays free, holding its freed block's cookie, so a
 * second free of the old pointer is still a double free).  The cost is on the large path only (a second
 * span taken and one given back, under the segment lock, when the last freed run comes up): nothing on
 * the small-block fast paths. */
#include <stdatomic.h>

#include "engine/engine.h"
#include "engine/reuse.h"

static _Atomic uintptr_t last_freed;   /* the start of the large block freed last, by any thread */

void mk__reuse_freed_large(const mk_span *s)
{
	atomic_store_explicit(&last_freed, s->start, memory_order_relaxed);
}

uintptr_t mk__reuse_last_freed(void) { return atomic_load_explicit(&last_freed, memory_order_relaxed); }

bool mk__reuse_is_last_freed(uintptr_t start) { return start == mk__reuse_last_freed(); }

mk_span *mk__reuse_avoid_large(mk_span *s, unsigned slices)
{
	if (!s || !mk__reuse_is_last_freed(s->start))
		return s;
	mk_span *t = mk__span_alloc(slices, MK_LARGE_CLS);
	if (!t)
		return s;   /* no other memory: reusing the run is still correct */
	mk__span_free(s);
	return t;
}
