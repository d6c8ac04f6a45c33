/* The large-block reuse rule (reuse.c): the hooks large.c calls. */
#ifndef MK_REUSE_H
#define MK_REUSE_H

#include "engine/engine.h"

/* From mk__large_free, before the span goes back: remembers its block. */
void     mk__reuse_freed_large(const mk_span *s) MK_HIDDEN;
/* From mk__large_alloc, on the span it got: another one if s holds the block freed last. */
mk_span *mk__reuse_avoid_large(mk_span *s, unsigned slices) MK_HIDDEN;
/* Whether a large block starting at `start` is the one freed last (large.c's cache, segment.c's placement). */
bool     mk__reuse_is_last_freed(uintptr_t start) MK_HIDDEN;
/* The start of the large block freed last (0: none yet), for a check of several blocks at once. */
uintptr_t mk__reuse_last_freed(void) MK_HIDDEN;

#endif
