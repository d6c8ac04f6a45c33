/* The bins of free runs and the queue of dirty slices (see runs.h). */
#include "engine/runs.h"

#include "engine/engine.h"

static mk_slice_link *run_link(mk_sref r) { return &mk__sref_seg(r)->run_link[mk__sref_slice(r)]; }
static mk_slice_link *dirty_link(mk_sref r) { return &mk__sref_seg(r)->dirty_link[mk__sref_slice(r)]; }

void mk__bin_insert(mk_runs *x, mk_segment *seg, unsigned i, unsigned len)
{
	mk_sref r = mk__sref(seg, i), first = x->bin[len], last = x->bin_last[len];
	/* A run with no dirty slice goes last (not in the last bin, whose order is the order the segments
	 * became wholly free): mk__bin_find looks at the first run of a bin only, and a clean run there would
	 * hide the resident ones behind it. */
	if (last && len < MK_SLICES - 1 && !(seg->dirty_mask & mk__slice_bits(i, len))) {
		*run_link(r) = (mk_slice_link){ last, 0 };
		run_link(last)->next = r;
		x->bin_last[len] = r;
		return;
	}
	*run_link(r) = (mk_slice_link){ 0, first };
	if (first)
		run_link(first)->prev = r;
	else
		x->bin_last[len] = r;
	x->bin[len] = r;
	x->bin_mask |= (uint64_t)1 << len;
}

void mk__bin_remove(mk_runs *x, mk_segment *seg, unsigned i, unsigned len)
{
	mk_sref r = mk__sref(seg, i);
	mk_slice_link *l = run_link(r);
	if (l->prev)
		run_link(l->prev)->next = l->next;
	else
		x->bin[len] = l->next;
	if (l->next)
		run_link(l->next)->prev = l->prev;
	else
		x->bin_last[len] = l->prev;
	*l = (mk_slice_link){ 0, 0 };
	if (!x->bin[len])
		x->bin_mask &= ~((uint64_t)1 << len);
}

mk_sref mk__bin_find(const mk_runs *x, unsigned n, unsigned *at)
{
	uint64_t m = x->bin_mask & ~(((uint64_t)1 << n) - 1);
	unsigned widest = n + n / 8;   /* at most 7 lengths past n (n <= 63) */
	mk_sref best = 0;
	unsigned best_dirty = 0;
	for (; m; m &= m - 1) {
		unsigned len = (unsigned)__builtin_ctzll(m);
		if (best && len > widest)
			break;   /* the best fit, when nothing within its 1/8 is more resident */
		mk_sref r = x->bin[len];
		uint64_t dirty = mk__sref_seg(r)->dirty_mask;
		unsigned i = mk__sref_slice(r);
		unsigned head = (unsigned)__builtin_popcountll(dirty & mk__slice_bits(i, n));
		unsigned tail = (unsigned)__builtin_popcountll(dirty & mk__slice_bits(i + len - n, n));
		unsigned d = head >= tail ? head : tail;
		if (!best || d > best_dirty) {   /* a tie keeps the shorter run: the better fit */
			best = r;
			best_dirty = d;
			*at = tail > head ? i + len - n : i;
		}
		if (d == n)
			break;   /* no page of it faults: as good as it gets */
	}
	return best;
}

void mk__dirty_add(mk_runs *x, mk_segment *seg, uint64_t mask, uint64_t now)
{
	seg->dirty_mask |= mask;
	for (; mask; mask &= mask - 1) {
		unsigned k = (unsigned)__builtin_ctzll(mask);
		mk_sref r = mk__sref(seg, k);
		seg->dirty_since_ms[k] = now;
		seg->dirty_link[k] = (mk_slice_link){ x->dirty_last, 0 };
		if (x->dirty_last)
			dirty_link(x->dirty_last)->next = r;
		else
			x->dirty_first = r;
		x->dirty_last = r;
		x->ndirty++;
	}
}

unsigned mk__dirty_clear(mk_runs *x, mk_segment *seg, uint64_t mask)
{
	mask &= seg->dirty_mask;
	seg->dirty_mask &= ~mask;
	unsigned n = 0;
	for (; mask; mask &= mask - 1, n++) {
		mk_slice_link *l = &seg->dirty_link[__builtin_ctzll(mask)];
		if (l->prev)
			dirty_link(l->prev)->next = l->next;
		else
			x->dirty_first = l->next;
		if (l->next)
			dirty_link(l->next)->prev = l->prev;
		else
			x->dirty_last = l->prev;
		*l = (mk_slice_link){ 0, 0 };
	}
	x->ndirty -= n;
	return n;
}

#define RUNS_ERROR(...)             \
	do {                            \
		mk__message(__VA_ARGS__);   \
		(*errors)++;                \
	} while (0)

/* A slice reference that may be followed: into a segment of ours, at a slice that is not the header. */
static bool sref_ok(mk_sref r)
{
	return r && mk__is_ours((void *)r) && mk__sref_slice(r) >= 1 && mk__sref_slice(r) < MK_SLICES;
}

void mk__runs_check(const mk_runs *x, mk_segment *segments, int *errors)
{
	size_t runs = 0, dirty = 0;
	for (mk_segment *seg = segments; seg; seg = seg->next) {
		for (unsigned i = 1; i < MK_SLICES && seg->spans[i].slices; i += seg->spans[i].slices)
			runs += MK_LOAD(seg->spans[i].state) == MK_SPAN_FREE;
		dirty += (size_t)__builtin_popcountll(seg->dirty_mask);
	}
	size_t binned = 0;
	if (x->bin_mask & 1)
		RUNS_ERROR("memkit: check: bin 0 marked not empty\n");
	for (unsigned len = 1; len < MK_SLICES; len++) {
		if (!x->bin[len] != !((x->bin_mask >> len) & 1))
			RUNS_ERROR("memkit: check: bin %u is%s empty, its bit says otherwise\n", len, x->bin[len] ? " not" : "");
		mk_sref prev = 0;
		for (mk_sref r = x->bin[len]; r; prev = r, r = run_link(r)->next) {
			if (!sref_ok(r) || binned++ > runs) {
				RUNS_ERROR("memkit: check: bin %u holds a bad run %#lx (or loops)\n", len, (unsigned long)r);
				break;
			}
			const mk_span *s = &mk__sref_seg(r)->spans[mk__sref_slice(r)];
			if (MK_LOAD(s->state) != MK_SPAN_FREE || s->slices != len)
				RUNS_ERROR("memkit: check: bin %u holds %#lx, a run of %u slices in state %u\n", len,
				           (unsigned long)r, s->slices, MK_LOAD(s->state));
			if (run_link(r)->prev != prev)
				RUNS_ERROR("memkit: check: run %#lx in bin %u has a bad back link\n", (unsigned long)r, len);
		}
		if (prev != x->bin_last[len])
			RUNS_ERROR("memkit: check: bin %u ends at %#lx, not %#lx\n", len, (unsigned long)prev,
			           (unsigned long)x->bin_last[len]);
	}
	if (binned != runs)
		RUNS_ERROR("memkit: check: %zu free runs in the segments, %zu in the bins\n", runs, binned);
	size_t queued = 0;
	mk_sref prev = 0;
	for (mk_sref r = x->dirty_first; r; prev = r, r = dirty_link(r)->next) {
		if (!sref_ok(r) || queued++ > dirty) {
			RUNS_ERROR("memkit: check: the dirty queue holds a bad slice %#lx (or loops)\n", (unsigned long)r);
			break;
		}
		if (!((mk__sref_seg(r)->dirty_mask >> mk__sref_slice(r)) & 1))
			RUNS_ERROR("memkit: check: slice %#lx is queued dirty, and is not\n", (unsigned long)r);
		if (dirty_link(r)->prev != prev || (prev && mk__dirty_since(prev) > mk__dirty_since(r)))
			RUNS_ERROR("memkit: check: dirty slice %#lx is out of order\n", (unsigned long)r);
	}
	if (prev != x->dirty_last)
		RUNS_ERROR("memkit: check: the dirty queue's last slice is not %#lx\n", (unsigned long)x->dirty_last);
	if (queued != dirty || x->ndirty != dirty)
		RUNS_ERROR("memkit: check: %zu dirty slices, %zu queued, %zu counted\n", dirty, queued, x->ndirty);
}
