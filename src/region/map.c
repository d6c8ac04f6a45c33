/* mkr_map: a picture of a region heap, drawn by the same module as the engine's heap map and the classic
 * allocators' pictures (src/prof/svg.c): the region's header, then every block as it lies, used ones
 * banded by the pid that owns them, free ones pale; the totals are mkr_stats'.  The walk runs under the
 * heap's lock and copies the blocks out; drawing happens after it is released. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "prof/out.h"
#include "prof/svg.h"
#include "region/layout.h"

enum { K_HEADER, K_USED, K_FREE, NKINDS };
#define MAX_OWNERS 8

int mkr_map(mkr_heap *h, const char *path)
{
	if (!h || !path) {
		errno = EINVAL;
		return -1;
	}
	struct mkr_stats st;
	if (mkr_stats(h, &st) != 0)
		return -1;
	/* A block takes at least RG_MIN_UNITS units: this bounds the walk's entries (+1 for the header). */
	size_t max = (size_t)((h->heap_end - h->heap_off) / (RG_MIN_UNITS * RG_UNIT)) + 1;
	size_t bytes = max * (sizeof(struct heapsvg_span) + sizeof(struct heapsvg_fill));
	struct heapsvg_span *spans = mk__scratch(bytes);
	if (!spans)
		return -1;
	struct heapsvg_fill *fills = (struct heapsvg_fill *)(spans + max);
	pid_t owners[MAX_OWNERS];
	int nowners = 0;
	size_t n = 0, used = 0, nfree = 0;
	spans[n++] = (struct heapsvg_span){ K_HEADER, 0, (size_t)h->heap_off };
	if (mk__rg_lock(h, 0) != 0) {
		mk__scratch_free(spans, bytes);
		return -1;
	}
	int r = 0;
	for (uint64_t off = h->heap_off, next = off; off < h->heap_end && n < max; off = next) {
		uint32_t units;
		int kind = mk__rg_walk_step(h, &next, &units);
		if (kind < 0) {
			r = -1;
			break;
		}
		int g = 0;
		if (kind == 1) {
			pid_t pid = (pid_t)mk__rg_owner_of(h, off);
			for (g = 0; g < nowners && owners[g] != pid; g++)
				;
			if (g == nowners && nowners < MAX_OWNERS)
				owners[nowners++] = pid;
			g = g < MAX_OWNERS ? g + 1 : MAX_OWNERS;
			used++;
		} else {
			nfree++;
		}
		fills[n] = (struct heapsvg_fill){ 0, g };
		spans[n++] = (struct heapsvg_span){ kind == 1 ? K_USED : K_FREE, (size_t)off, (size_t)units * RG_UNIT };
	}
	int e = errno;
	mk__rg_unlock(h);
	if (r == 0) {
		static const struct heapsvg_kind kinds[NKINDS] = {
			{ "region header, roots and block-start bitmap", "#7f7f7f" },
			{ "used block (16-byte header + payload)", "#3182bd" },
			{ "free block", "#c6dbef" },
		};
		static const char *const colours[MAX_OWNERS] = { "#1b9e77", "#d95f02", "#7570b3", "#e7298a",
		                                                 "#66a61e", "#e6ab02", "#a6761d", "#000000" };
		struct heapsvg_kind groups[MAX_OWNERS];
		char names[MAX_OWNERS][48], n1[200], n2[200], n3[200];
		for (int g = 0; g < nowners; g++) {
			snprintf(names[g], sizeof names[g], "owner: pid %ld", (long)owners[g]);
			groups[g] = (struct heapsvg_kind){ names[g], colours[g] };
		}
		snprintf(n1, sizeof n1, "region of %zu bytes; block area %zu bytes, in 16 rows (addresses left to right, "
		         "top to bottom)", st.region_size, st.heap_size);
		snprintf(n2, sizeof n2, "used: %zu blocks, %zu bytes with headers; free: %zu blocks, %zu bytes; "
		         "largest request that fits now: %zu", st.used_blocks, st.used_bytes, st.free_blocks, st.free_bytes,
		         st.largest_free);
		snprintf(n3, sizeof n3, "external fragmentation: %zu of %zu free bytes are not in the largest free block",
		         st.free_bytes - (st.largest_free ? st.largest_free + RG_UNIT : 0), st.free_bytes);
		struct heapsvg pic = { .title = "memkit region heap", .notes = { n1, n2, n3 }, .total = (size_t)h->heap_end,
		                       .rows = 16, .kinds = kinds, .nkinds = NKINDS, .groups = groups, .ngroups = nowners,
		                       .spans = spans, .fills = fills, .nspans = n };
		mk_out *o = mk__scratch(sizeof *o);
		r = -1;
		e = ENOMEM;
		if (o && mk__out_open(o, path)) {
			heapsvg_draw(o, &pic);
			mk__out_printf(o, "<!-- memkit-region-map used_blocks=%zu free_blocks=%zu used_bytes=%zu free_bytes=%zu "
			               "owners=%d -->\n", used, nfree, st.used_bytes, st.free_bytes, nowners);
			r = mk__out_close(o);
		}
		e = errno;
		mk__scratch_free(o, sizeof *o);
	}
	mk__scratch_free(spans, bytes);
	errno = e;
	return r;
}
