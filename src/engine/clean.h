/* The secure build's mark of a free block nothing wrote into (docs/hardening.md, "Check on reuse").
 *
 * Every free block of a carved size class holds, in the 16 bytes after its first 16 (the engine's link
 * and cookie, where the secure header lives while it is out), a tag derived from its address and the
 * process's secret: written when the span is carved (segment.c) and when the secure free zeroes a block
 * (secure.c), checked by the secure malloc when it hands the block out again.  A write after free that
 * reaches a freed block's first 16 bytes, at any time until it is reused, changes it.  Default build:
 * nothing here is compiled. */
#ifndef MK_CLEAN_H
#define MK_CLEAN_H

#include "engine/engine.h"

#ifndef MK_SECURE
#define MK_SECURE 0
#endif

#if MK_SECURE
/* The 16 bytes at base + 16 of a block of at least 32 bytes (every secure request is: its header and
 * canary alone take 24). */
/* Not the cookie of any block (secret ^ its address): the complement of this block's. */
MK_INLINE uint64_t mk__clean_tag(uintptr_t base) { return base ^ ~mk__secret; }
MK_INLINE void mk__mark_clean(void *base)
{
	typedef uint64_t v2 __attribute__((vector_size(16)));
	uint64_t t = mk__clean_tag((uintptr_t)base);
	v2 x = { t, t };
	__builtin_memcpy((char *)base + 16, &x, sizeof x);
}
#endif

#endif
