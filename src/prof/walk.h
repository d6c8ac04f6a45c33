/* What the heap map needs to know of the engine's segments, in a form that does not depend on its types:
 * walk.c is the one file that reads segment headers and spans, so a change there is adapted in it alone. */
#ifndef MK_PROF_WALK_H
#define MK_PROF_WALK_H

#include <stddef.h>
#include <stdint.h>

enum map_kind { MAP_HEADER, MAP_SMALL, MAP_LARGE, MAP_FREE_RESIDENT, MAP_FREE_PURGED };

typedef struct map_span {
	uint32_t segment;       /* index in the walk's segment list */
	uint8_t slice, slices;  /* first slice, length */
	uint8_t kind;           /* enum map_kind */
	uint8_t cls;
	uint32_t block_size, capacity, used, carved;
	uintptr_t heap;         /* owner heap (tag bit cleared), 0 for none */
	uint32_t resident;      /* resident pages of the span (mincore) */
} map_span;

typedef struct map_walk {
	size_t nsegments, nspans;
	uintptr_t *segments;    /* addresses */
	map_span *spans;
	size_t in_use;          /* sum of used * block_size over spans in use: mallinfo2's uordblks */
	size_t free_dirty;      /* free slices not purged since freed */
	size_t resident;        /* resident bytes of all segments (mincore), headers included */
	size_t bytes_;          /* the walk's own memory */
} map_walk;

/* Walks every segment under the segment lock.  false when out of memory (nothing to free then). */
int  mk__map_walk(map_walk *w);
void mk__map_walk_free(map_walk *w);

#endif
