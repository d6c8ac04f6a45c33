/* Sized frees in the default build (sized.c): a C++ sized delete, and free_sized, say how big the block
 * is; a size whose size class is not the block's is a wrong free (a delete through a base class of
 * another size, or of an array with delete), reported with one line.  Blocks of one class cannot be told
 * apart, so the check is by class: it never stops a correct program (whose size maps to the class it
 * was allocated from) and costs a compare on the sized path only; plain free and delete do not pay. */
#ifndef MK_SIZED_H
#define MK_SIZED_H

#include "engine/engine.h"

/* The backend offers a checked sized free (override/kind.h and api.c use it when this is defined). */
#define MK_BACKEND_FREE_SIZED 1

void mk__engine_free_sized_slow(void *p, size_t n) MK_HIDDEN;
/* free_sized's check: looser, since realloc may keep or grow a block to another class (sized.c). */
void mk__engine_free_sized_c(void *p, size_t n) MK_HIDDEN;

/* Inlined: n up to 1 KiB must map, through the inlined malloc's table, to the block's class (the table is
 * how malloc chose it); anything else is settled exactly on the slow side. */
MK_INLINE void mk__engine_free_sized(void *p, size_t n)
{
	if (mk_likely(n <= MK_DIRECT_MAX && mk__is_ours_small(p))) {
		mk_span *s = mk__span_of(mk__segment_of(p), p);
		if (mk_likely(s->cls == mk__direct_class[(n + 15) >> 4])) {
			mk__engine_free(p);
			return;
		}
	}
	mk__engine_free_sized_slow(p, n);
}

#endif
