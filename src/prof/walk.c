/* The heap map's view of the engine (see walk.h).  Segments are found from the segment map (mk__segmap,
 * one byte per 4 MiB), scanned without the lock; each candidate is then read under the segment lock, and
 * only if its byte still says it is mapped (segments are mapped and unmapped under that lock only).
 * Span counters (`used`) of other threads' heaps are read racily: they are statistics here, as in
 * mallinfo2.  Residency comes from mincore(2), a query that changes nothing. */
#define _GNU_SOURCE
#include <string.h>

#include "engine/engine.h"
#include "os/os.h"
#include "prof/out.h"
#include "prof/walk.h"

#define MAX_SEGMENTS 16384   /* 64 GiB of segments: the map draws at most this many */

static size_t resident_pages(uintptr_t at, size_t bytes, const unsigned char *vec)
{
	size_t first = (at & MK_SEG_MASK) / MK_PAGE_SIZE_HINT, n = bytes / MK_PAGE_SIZE_HINT, r = 0;
	for (size_t i = 0; i < n; i++)
		r += vec[first + i] & 1;
	return r;
}

int mk__map_walk(map_walk *w)
{
	memset(w, 0, sizeof *w);
	size_t bytes = MAX_SEGMENTS * sizeof(uintptr_t) + (size_t)MAX_SEGMENTS * MK_SLICES * sizeof(map_span);
	char *mem = mk__scratch(bytes);
	if (!mem)
		return 0;
	w->bytes_ = bytes;
	w->segments = (uintptr_t *)mem;
	w->spans = (map_span *)(mem + MAX_SEGMENTS * sizeof(uintptr_t));
	size_t ncand = 0;
	const uint64_t *words = (const uint64_t *)mk__segmap;
	for (size_t i = 0; i < sizeof mk__segmap / 8 && ncand < MAX_SEGMENTS; i++)
		if (__atomic_load_n(&words[i], __ATOMIC_RELAXED))
			for (size_t b = 0; b < 8 && ncand < MAX_SEGMENTS; b++)
				if (__atomic_load_n(&mk__segmap[i * 8 + b], __ATOMIC_RELAXED) == 1)
					w->segments[ncand++] = (uintptr_t)(i * 8 + b) << MK_SEG_SHIFT;
	static unsigned char vec[MK_SEG_SIZE / MK_PAGE_SIZE_HINT];   /* under the segment lock */
	mk__segments_lock();
	size_t nseg = 0;
	for (size_t c = 0; c < ncand; c++) {
		uintptr_t a = w->segments[c];
		if (__atomic_load_n(&mk__segmap[(a >> MK_SEG_SHIFT) & MK_SEGMAP_MASK], __ATOMIC_RELAXED) != 1)
			continue;
		mk_segment *seg = (mk_segment *)a;
		bool have_vec = mk__os_mincore(seg, MK_SEG_SIZE, vec) == 0;
		if (!have_vec)
			memset(vec, 0, sizeof vec);
		w->segments[nseg] = a;
		map_span *h = &w->spans[w->nspans++];
		*h = (map_span){ .segment = (uint32_t)nseg, .slice = 0, .slices = 1, .kind = MAP_HEADER };
		h->resident = (uint32_t)resident_pages(a, MK_SLICE_SIZE, vec);
		w->resident += (size_t)h->resident * MK_PAGE_SIZE_HINT;
		for (unsigned i = 1; i < MK_SLICES;) {
			mk_span *s = &seg->spans[i];
			unsigned n = s->slices ? s->slices : 1;
			uint8_t state = MK_LOAD(s->state);
			if (state == MK_SPAN_FREE) {
				/* One entry per slice: whether its pages were purged is per slice. */
				for (unsigned k = i; k < i + n && k < MK_SLICES; k++) {
					map_span *f = &w->spans[w->nspans++];
					bool dirty = (seg->dirty_mask >> k) & 1;
					*f = (map_span){ .segment = (uint32_t)nseg, .slice = (uint8_t)k, .slices = 1,
					                 .kind = dirty ? MAP_FREE_RESIDENT : MAP_FREE_PURGED };
					f->resident = (uint32_t)resident_pages(a + k * MK_SLICE_SIZE, MK_SLICE_SIZE, vec);
					w->resident += (size_t)f->resident * MK_PAGE_SIZE_HINT;
					if (dirty)
						w->free_dirty += MK_SLICE_SIZE;
				}
			} else if (s->cls == MK_LARGE_CLS && __atomic_load_n(&s->used, __ATOMIC_RELAXED) == 0) {
				/* A freed large block waiting in its thread's cache (large.c): free and resident, as
				 * mallinfo2's keepcost counts it, not a large block in use. */
				map_span *f = &w->spans[w->nspans++];
				*f = (map_span){ .segment = (uint32_t)nseg, .slice = (uint8_t)i, .slices = (uint8_t)n,
				                 .kind = MAP_FREE_RESIDENT };
				f->resident = (uint32_t)resident_pages(a + i * MK_SLICE_SIZE, n * MK_SLICE_SIZE, vec);
				w->resident += (size_t)f->resident * MK_PAGE_SIZE_HINT;
				w->free_dirty += (size_t)n * MK_SLICE_SIZE;
			} else {
				map_span *m = &w->spans[w->nspans++];
				uint32_t used = __atomic_load_n(&s->used, __ATOMIC_RELAXED);
				*m = (map_span){ .segment = (uint32_t)nseg, .slice = (uint8_t)i, .slices = (uint8_t)n,
				                 .kind = s->cls == MK_LARGE_CLS ? MAP_LARGE : MAP_SMALL, .cls = s->cls,
				                 .block_size = s->block_size, .capacity = s->capacity, .used = used,
				                 .carved = (uint32_t)MK_LOAD(s->carved),
				                 .heap = (uintptr_t)MK_LOAD(s->heap) & ~(uintptr_t)1 };
				m->resident = (uint32_t)resident_pages(a + i * MK_SLICE_SIZE, n * MK_SLICE_SIZE, vec);
				w->resident += (size_t)m->resident * MK_PAGE_SIZE_HINT;
				w->in_use += (size_t)used * s->block_size;
			}
			i += n;
		}
		nseg++;
	}
	mk__segments_unlock();
	w->nsegments = nseg;
	return 1;
}

void mk__map_walk_free(map_walk *w) { mk__scratch_free(w->segments, w->bytes_); }
