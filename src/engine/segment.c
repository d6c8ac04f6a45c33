/* Segments: where spans come from, and where free memory goes back to the system.
 *
 * Invariants (mk__segments_check verifies them):
 *  - slice 0 of every segment is its header; spans[0] is a sentinel whose heap is NULL, so a free() of a
 *    pointer into the header always reaches the slow path and is refused.
 *  - slices 1..63 are covered exactly by runs (spans in use, or free runs); two free runs are never
 *    adjacent (freeing coalesces); every free run is in the bin of its length (runs.h).
 *  - span_at[k] locates a descriptor: for a slice of a span, the span's (its first slice's); for a slice
 *    of a free run, a free descriptor at or before it in the run, the run's own for its first and last
 *    slices.  So any pointer into free memory finds a free descriptor (and is refused), merging finds the
 *    run before a span from one load, and merging never rewrites a run's slices, nor does cutting a
 *    span from a run's end (the rest keeps pointing where it did); only what follows a cut is repointed.
 *  - a segment's dirty_mask marks the free slices that may hold pages (not purged since they were freed),
 *    dirty_since_ms when each was freed; only free slices are dirty, and every dirty slice is in the
 *    dirty queue, oldest first (runs.h).  Tracking this per slice, not per run, keeps both right when
 *    runs merge: a purged neighbour stays clean, an old one stays old.
 *  - the dirty total is within the purge budget (MK_PURGE_BUDGET_MIN or a share of the memory in spans,
 *    whichever is more) after every span free, unless the system refused a purge, so free memory goes
 *    back promptly even when the program then stops calling the allocator.  Going over the budget
 *    purges the oldest down to half of it, so that purges come in batches.  The share is 1/8, doubled
 *    (up to 1/2) whenever a span must be cut from purged slices within PURGE_REGRET_MS of such a purge
 *    (what was just given back is wanted again: the purge cost a system call and page faults for
 *    nothing), and halved back once for every second without that, at the next span operation.
 *  - used_slices counts the slices of all spans in use; free_segments the wholly free segments (each one
 *    run of 63 slices, in the last bin); at most one of them stays mapped after a span free.
 *  - mk__segmap[seg >> 22] == 1 exactly while seg is mapped.
 * Everything here runs under seg_lock, on the slow path only (once per span, i.e. per 64 KiB or more),
 * and costs the same whatever the number of segments: the bins find a run, the queue says what to purge;
 * only mk_check and the statistics walk the segments. */
#include <pthread.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/clean.h"
#include "engine/reuse.h"
#include "engine/runs.h"
#include "engine/stats.h"
#include "os/os.h"

#define SEG_MAGIC 0x6d656d6b69747367ull /* "memkitsg" */
#define MK_SPAN_HEADER 3                /* state of spans[0] */

static pthread_mutex_t seg_lock = PTHREAD_MUTEX_INITIALIZER;
static mk_segment *segments;      /* all mapped segments, for mk_check and the statistics */
static size_t nsegments, free_segments, used_slices;
static _Atomic uint64_t last_purge_ms;   /* the last purge round (read without the lock by large.c's cache) */
static _Atomic size_t budget_seen = MK_PURGE_BUDGET_MIN;   /* the purge budget at the last round (the same) */
static mk_runs runs;              /* free runs by length, dirty slices by age */
/* The purge budget's share of the memory in spans, as a shift (3: 1/8), and what moves it (see above). */
#define BUDGET_SHIFT_BASE 3
#define BUDGET_SHIFT_MIN  1
#define PURGE_REGRET_MS   100
#define BUDGET_DECAY_MS   1000
static unsigned budget_shift = BUDGET_SHIFT_BASE;
static uint64_t budget_purge_ms;      /* the last purge over the budget (0: none since the last regret) */
static uint64_t budget_changed_ms;    /* the last regret or halving */
/* The span freed last, while no span has been taken since: its run (by its first slice) and where the span
 * lay in it.  The next span that fits there goes exactly there: the freed block's first pages, the ones
 * programs touch first, are the likeliest resident (a run's dirty slices need not have been touched). */
static struct { mk_segment *seg; unsigned run, at, n; } last_freed;

void mk__segments_lock(void) { pthread_mutex_lock(&seg_lock); }
void mk__segments_unlock(void) { pthread_mutex_unlock(&seg_lock); }
void mk__segments_reset_lock(void) { pthread_mutex_init(&seg_lock, NULL); }

static size_t dirty_bytes(void) { return runs.ndirty * MK_SLICE_SIZE; }
static uintptr_t slice_addr(mk_segment *seg, unsigned i) { return (uintptr_t)seg + (uintptr_t)i * MK_SLICE_SIZE; }
static unsigned index_of(mk_segment *seg, mk_span *s) { return (unsigned)(s - seg->spans); }
static uint16_t offset_of_span(unsigned i) { return (uint16_t)(offsetof(mk_segment, spans) + i * sizeof(mk_span)); }
/* The first slice of the run that covers slice i. */
static unsigned head_of(mk_segment *seg, unsigned i)
{
	return (unsigned)((seg->span_at[i] - offsetof(mk_segment, spans)) / sizeof(mk_span));
}

static void list_remove(mk_segment *seg)
{
	if (seg->prev)
		seg->prev->next = seg->next;
	else
		segments = seg->next;
	if (seg->next)
		seg->next->prev = seg->prev;
	seg->next = seg->prev = NULL;
}

static void list_push_front(mk_segment *seg)
{
	seg->prev = NULL;
	seg->next = segments;
	if (segments)
		segments->prev = seg;
	segments = seg;
}

/* Slices [i, i + n) point to the descriptor at i. */
static void point_to(mk_segment *seg, unsigned i, unsigned n)
{
	for (unsigned k = i; k < i + n; k++)
		seg->span_at[k] = offset_of_span(i);
}

/* The newest of seg's slice stamps: when its last slice was freed (slices never used hold 0). */
static uint64_t newest_stamp(const mk_segment *seg)
{
	uint64_t last = 0;
	for (unsigned k = 1; k < MK_SLICES; k++)
		last = seg->dirty_since_ms[k] > last ? seg->dirty_since_ms[k] : last;
	return last;
}

/* Makes slices [i, i + n) one free run, in its bin (their dirtiness is the caller's business); their
 * span_at already name free descriptors in the run (see the top). */
static void add_run(mk_segment *seg, unsigned i, unsigned n)
{
	mk_span *r = &seg->spans[i];
	memset(r, 0, sizeof *r);
	MK_STORE(r->state, MK_SPAN_FREE);
	r->slices = n;
	seg->span_at[i] = seg->span_at[i + n - 1] = offset_of_span(i);
	mk__bin_insert(&runs, seg, i, n);
	if (n == MK_SLICES - 1) {
		/* Its slices' stamps do not change while it stays wholly free (a purge keeps them): the newest,
		 * found once here, is what the purge rounds compare with the delay, each time they run. */
		seg->whole_free_since_ms = newest_stamp(seg);
		free_segments++;
	}
}

static void remove_run(mk_segment *seg, unsigned i, unsigned n)
{
	mk__bin_remove(&runs, seg, i, n);
	if (n == MK_SLICES - 1)
		free_segments--;
}

static mk_segment *segment_new(void)
{
	mk_segment *seg = mk__os_map_aligned(MK_SEG_SIZE, MK_SEG_SIZE);
	if (!seg)
		return NULL;
	seg->magic = SEG_MAGIC;
	seg->spans[0].state = MK_SPAN_HEADER;
	seg->spans[0].slices = 1;
	seg->span_at[0] = offset_of_span(0);
	point_to(seg, 1, MK_SLICES - 1);
	add_run(seg, 1, MK_SLICES - 1);
	seg->free_slices = MK_SLICES - 1;
	list_push_front(seg);
	nsegments++;
	mk__stat_segment(1);
	__atomic_store_n(&mk__segmap[((uintptr_t)seg >> MK_SEG_SHIFT) & MK_SEGMAP_MASK], 1, __ATOMIC_RELEASE);
	return seg;
}

/* Unmaps a wholly free segment; false (and the segment stays, its dirty slices dirty as of now) when the
 * system refuses. */
static bool segment_release(mk_segment *seg, uint64_t now)
{
	uint8_t *map = &mk__segmap[((uintptr_t)seg >> MK_SEG_SHIFT) & MK_SEGMAP_MASK];
	uint64_t dirty = seg->dirty_mask;
	last_freed.seg = NULL;   /* it may be this segment's run */
	remove_run(seg, 1, MK_SLICES - 1);
	mk__dirty_clear(&runs, seg, dirty);   /* its links must leave the queue before the header goes */
	list_remove(seg);
	__atomic_store_n(map, 0, __ATOMIC_RELEASE);
	MK_ASAN_LIVE(seg, MK_SEG_SIZE);   /* whoever maps this range next finds it unpoisoned */
	if (mk__os_unmap(seg, MK_SEG_SIZE) != 0) {
		__atomic_store_n(map, 1, __ATOMIC_RELEASE);
		list_push_front(seg);
		add_run(seg, 1, MK_SLICES - 1);
		mk__dirty_add(&runs, seg, dirty, now);
		if (dirty)
			seg->whole_free_since_ms = now;   /* as its slices now say */
		return false;
	}
	nsegments--;
	mk__stat_segment(-1);
	return true;
}

/* How long a wholly free segment has been so: since its last slice was freed (slices never used hold 0). */
static uint64_t wholly_free_for(mk_segment *seg, uint64_t now) { return now - seg->whole_free_since_ms; }

/* Unmaps wholly free segments until `keep` are left, those wholly free for the purge delay only unless
 * `all`; the last bin lists them newest first, so its end is the one free the longest.  Stops at a
 * refusal (the system would refuse again). */
static void release_free_segments(size_t keep, uint64_t now, bool all)
{
	while (free_segments > keep) {
		mk_segment *seg = mk__sref_seg(runs.bin_last[MK_SLICES - 1]);
		if ((!all && wholly_free_for(seg, now) < (uint64_t)mk__opt.purge_delay_ms) || !segment_release(seg, now))
			return;
	}
}

/* Takes slices [at, at + n) of the free run of `len` slices at i, leaving what is before and after them as
 * free runs. */
static mk_span *take_run(mk_segment *seg, unsigned i, unsigned len, unsigned at, unsigned n)
{
	last_freed.seg = NULL;
	bool zeroed = (seg->dirty_mask & mk__slice_bits(at, n)) == 0;   /* purged or never used: reads zero */
	remove_run(seg, i, len);
	mk__dirty_clear(&runs, seg, mk__slice_bits(at, n));
	if (at > i)
		add_run(seg, i, at - i);
	if (at + n < i + len) {   /* the rest after it may point to a descriptor that is becoming a span's */
		point_to(seg, at + n, i + len - at - n);
		add_run(seg, at + n, i + len - at - n);
	}
	mk_span *r = &seg->spans[at];
	memset(r, 0, sizeof *r);
	r->zeroed = zeroed;
	point_to(seg, at, n);
	used_slices += n;
	r->slices = n;
	MK_STORE(r->state, MK_SPAN_ACTIVE);
	r->start = slice_addr(seg, at);
	seg->free_slices -= n;
	return r;
}

static void set_geometry(mk_span *s, unsigned cls)
{
	s->cls = (uint8_t)cls;
	if (cls == MK_LARGE_CLS) {
		s->block_size = (uint32_t)(s->slices * MK_SLICE_SIZE);
		s->capacity = s->used = 1;
		s->carved = 1;
		s->div_mul = 1;      /* block index = offset: only offset 0 is below carved */
		s->div_shift = 0;
		return;
	}
	const mk_class_info *ci = &mk__classes[cls];
	s->block_size = ci->size;
	s->div_mul = ci->div_mul;
	s->div_shift = ci->div_shift;
	s->capacity = (uint32_t)(((size_t)s->slices * MK_SLICE_SIZE) / ci->size);
}

/* Purges dirty slices from the front of the queue while they were freed at or before `older` and more
 * than `keep` bytes are dirty, a run of neighbouring slices per call.  A run the system refuses to purge
 * stays dirty and counted, goes to the back of the queue as if freed now (so the others get their turn
 * first), and ends the round: the system would refuse again. */
static void purge_queue(uint64_t older, size_t keep, uint64_t now)
{
	while (runs.dirty_first && mk__dirty_since(runs.dirty_first) <= older && dirty_bytes() > keep) {
		mk_sref first = runs.dirty_first;
		mk_segment *seg = mk__sref_seg(first);
		unsigned i = mk__sref_slice(first), n = 1;
		size_t want = (dirty_bytes() - keep + MK_SLICE_SIZE - 1) / MK_SLICE_SIZE;
		for (mk_sref r = mk__dirty_next(first); n < want && r == mk__sref(seg, i + n) && mk__dirty_since(r) <= older;
		     r = mk__dirty_next(r))
			n++;
		uint64_t mask = mk__slice_bits(i, n);
		mk__dirty_clear(&runs, seg, mask);
		if (mk__os_purge((void *)slice_addr(seg, i), (size_t)n * MK_SLICE_SIZE) != 0) {
			mk__dirty_add(&runs, seg, mask, now);
			if (seg->free_slices == MK_SLICES - 1)
				seg->whole_free_since_ms = now;   /* as its slices now say */
			return;
		}
	}
}

/* How much free memory may stay resident whatever its age: MEMKIT_PURGE_LIMIT when set, else 1/8 (up to
 * 1/2, budget_shift) of the memory in spans, at least MK_PURGE_BUDGET_MIN (the purge delay deals with the
 * rest while the program runs; the budget bounds what stays when it stops calling the allocator). */
static size_t purge_budget(size_t cached)
{
	if (mk__opt.purge_limit > 0)
		return (size_t)mk__opt.purge_limit;
	size_t b = (used_slices * MK_SLICE_SIZE - cached) >> budget_shift;
	return b > MK_PURGE_BUDGET_MIN ? b : MK_PURGE_BUDGET_MIN;
}

/* What every span operation does about purging: the slices freed at least the purge delay ago go back,
 * and over the budget the oldest go back until half of it is left (the newest are the likeliest to be
 * reused soon).  Both look at the front of the queue only.  The calling thread's cached large blocks
 * (large.c) count as dirty memory, not as memory in spans. */
static void purge_due(uint64_t now)
{
	uint64_t delay = (uint64_t)mk__opt.purge_delay_ms;
	atomic_store_explicit(&last_purge_ms, now, memory_order_relaxed);
	if (budget_shift < BUDGET_SHIFT_BASE && now - budget_changed_ms >= BUDGET_DECAY_MS) {
		uint64_t halvings = (now - budget_changed_ms) / BUDGET_DECAY_MS;   /* one per second that passed */
		budget_shift = halvings >= BUDGET_SHIFT_BASE - budget_shift ? BUDGET_SHIFT_BASE : budget_shift + (unsigned)halvings;
		budget_changed_ms = now;
	}
	release_free_segments(1, now, false);
	purge_queue(now >= delay ? now - delay : 0, 0, now);
	size_t cached = mk__large_cached_bytes(), budget = purge_budget(cached);
	atomic_store_explicit(&budget_seen, budget + cached, memory_order_relaxed);
	if (dirty_bytes() + cached > budget) {
		budget_purge_ms = now;
		purge_queue(UINT64_MAX, budget / 2 > cached ? budget / 2 - cached : 0, now);
	}
}

/* A span about to be cut from slices [at, at + n) of seg, a free run that was there before: when some of
 * them were freed and purged (a never-used slice is clean too, but its stamp is 0), within
 * PURGE_REGRET_MS of a purge over the budget, the budget's share doubles (once per such purge). */
static void note_regret(mk_segment *seg, unsigned at, unsigned n)
{
	if (!budget_purge_ms || mk__opt.purge_limit > 0)
		return;
	bool purged = false;   /* a clean slice that was ever freed: a never-used one stamps 0 */
	for (uint64_t clean = mk__slice_bits(at, n) & ~seg->dirty_mask; clean && !purged; clean &= clean - 1)
		purged = seg->dirty_since_ms[__builtin_ctzll(clean)] != 0;
	if (!purged)
		return;
	uint64_t now = mk__now_ms();
	if (now - budget_purge_ms >= PURGE_REGRET_MS)
		return;
	budget_purge_ms = 0;
	budget_changed_ms = now;
	if (budget_shift > BUDGET_SHIFT_MIN)
		budget_shift--;
}

mk_span *mk__span_alloc(unsigned slices, unsigned cls)
{
	mk_span *s = NULL;
	pthread_mutex_lock(&seg_lock);
	unsigned at = 1;
	mk_sref r = 0;
	/* (Not for a large block that would start where the large block freed last did: reuse.c's rule; nor
	 * for one 1/8 shorter than the span freed last: cutting a long run for a short block where the bins
	 * have a better fit fragments the segments, and a heap of large blocks then holds more segments.) */
	if (last_freed.seg && slices <= last_freed.n &&
	    !(cls == MK_LARGE_CLS && (last_freed.n > slices + slices / 8 ||
	                              mk__reuse_is_last_freed(slice_addr(last_freed.seg, last_freed.at))))) {
		r = mk__sref(last_freed.seg, last_freed.run);
		at = last_freed.at;
	} else {
		r = mk__bin_find(&runs, slices, &at);
	}
	if (r) {
		note_regret(mk__sref_seg(r), at, slices);
	} else {
		mk_segment *seg = segment_new();
		r = seg ? mk__sref(seg, 1) : 0;
	}
	if (r) {
		mk_segment *seg = mk__sref_seg(r);
		unsigned i = mk__sref_slice(r);
		s = take_run(seg, i, seg->spans[i].slices, at, slices);
		set_geometry(s, cls);
	}
	mk__stat_span(s, 1);
	if (runs.dirty_first || free_segments > 1)   /* the clock only when there is something to purge */
		purge_due(mk__now_ms());   /* read under the lock: ages computed from it never go negative */
	pthread_mutex_unlock(&seg_lock);
	return s;
}

void mk__segments_purge(bool all)
{
	if (all)
		mk__large_flush();
	pthread_mutex_lock(&seg_lock);
	uint64_t now = mk__now_ms();   /* read under the lock, as everywhere */
	if (all) {
		budget_purge_ms = 0;   /* what malloc_trim gives back is no purge over the budget to regret */
		release_free_segments(0, now, true);
		purge_queue(UINT64_MAX, 0, now);
	} else {
		purge_due(now);
	}
	pthread_mutex_unlock(&seg_lock);
}

size_t mk__segments_budget(void) { return atomic_load_explicit(&budget_seen, memory_order_relaxed); }

void mk__segments_maybe_purge(uint64_t now)
{
	uint64_t last = atomic_load_explicit(&last_purge_ms, memory_order_relaxed);
	if (now - last >= (uint64_t)mk__opt.purge_delay_ms && now >= last)
		mk__segments_purge(false);
}

void mk__span_free(mk_span *s) { mk__span_free_aged(s, UINT64_MAX); }

void mk__span_free_aged(mk_span *s, uint64_t freed_ms)
{
	mk_segment *seg = mk__segment_of((void *)s);
	pthread_mutex_lock(&seg_lock);
	uint64_t now = mk__now_ms();
	unsigned i = index_of(seg, s), n = s->slices, freed_at = i, freed_n = n;
	mk__stat_span(s, -1);
	seg->free_slices += n;
	used_slices -= n;
	/* The span's slices become dirty as of when the block was freed, but never older than the newest
	 * dirty slice: the queue stays in order at the cost of a cached block's age being understated by how
	 * long it waited in its cache at most.  The neighbours' slices keep their own state and age. */
	uint64_t stamp = freed_ms < now ? freed_ms : now;
	if (runs.dirty_last && mk__dirty_since(runs.dirty_last) > stamp)
		stamp = mk__dirty_since(runs.dirty_last);
	mk__dirty_add(&runs, seg, mk__slice_bits(i, n), stamp);
	/* Merge with the free runs on either side. */
	unsigned after = i + n;
	if (after < MK_SLICES && MK_LOAD(seg->spans[after].state) == MK_SPAN_FREE) {
		remove_run(seg, after, seg->spans[after].slices);
		n += seg->spans[after].slices;
	}
	unsigned before = head_of(seg, i - 1);
	if (i > 1 && MK_LOAD(seg->spans[before].state) == MK_SPAN_FREE) {
		remove_run(seg, before, i - before);
		n += i - before;
		i = before;
	}
	MK_STORE(s->state, MK_SPAN_FREE);   /* the descriptor some of the run's slices still name */
	add_run(seg, i, n);
	last_freed.seg = seg;
	last_freed.run = i;
	last_freed.at = freed_at;
	last_freed.n = freed_n;
	if (mk__opt.purge_delay_ms == 0) {
		release_free_segments(0, now, true);
		purge_queue(UINT64_MAX, 0, now);
	} else {
		purge_due(now);
	}
	pthread_mutex_unlock(&seg_lock);
}

/* Links the next page's worth of never-used blocks into the free list, lowest address first: a new span
 * is touched (and becomes resident) only as fast as it is used.  Each gets its cookie, as a freed block
 * has: a free() of one (never handed out) is then caught, not accepted and handed out twice. */
void mk__span_carve(mk_span *s)
{
	uint32_t n = (uint32_t)(MK_PAGE_SIZE_HINT / s->block_size);
	if (n == 0)
		n = 1;
	if (n > s->capacity - s->carved)
		n = (uint32_t)(s->capacity - s->carved);
	uintptr_t first = s->start + (uintptr_t)s->carved * s->block_size;
	mk_block *next = s->free;
	for (uint32_t k = n; k-- > 0;) {
		mk_block *b = (mk_block *)(first + (uintptr_t)k * s->block_size);
		MK_ASAN_LIVE(b, sizeof *b);   /* its words may lie in a tail poisoned in the span's last life */
#if MK_SECURE
		if (s->block_size >= 32)
			mk__mark_clean(b);   /* the secure malloc checks it (clean.h) */
#endif
		MK_ASAN_FREE(b, s->block_size);
		b->next = next;
		b->cookie = mk__cookie(b);
		next = b;
	}
	s->free = next;
	MK_STORE(s->carved, s->carved + n);
}

void mk__segments_walk(void (*visit)(const mk_span *s, void *arg), void *arg)
{
	pthread_mutex_lock(&seg_lock);
	for (mk_segment *seg = segments; seg; seg = seg->next)
		for (unsigned i = 1; i < MK_SLICES; i += seg->spans[i].slices)
			if (MK_LOAD(seg->spans[i].state) != MK_SPAN_FREE)
				visit(&seg->spans[i], arg);
	pthread_mutex_unlock(&seg_lock);
}

void mk__segments_info(size_t *mapped, size_t *in_use, size_t *free_dirty, size_t *count)
{
	size_t used = 0;
	pthread_mutex_lock(&seg_lock);
	for (mk_segment *seg = segments; seg; seg = seg->next)
		for (unsigned i = 1; i < MK_SLICES; i += seg->spans[i].slices) {
			mk_span *s = &seg->spans[i];
			if (MK_LOAD(s->state) != MK_SPAN_FREE)
				used += (size_t)__atomic_load_n(&s->used, __ATOMIC_RELAXED) * s->block_size;
		}
	*mapped = nsegments * MK_SEG_SIZE;
	*in_use = used;
	*free_dirty = dirty_bytes() + mk__large_cached_bytes();   /* cached large blocks: free, resident */
	*count = nsegments;
	pthread_mutex_unlock(&seg_lock);
}

#define SEG_ERROR(...)              \
	do {                            \
		mk__message(__VA_ARGS__);   \
		(*errors)++;                \
	} while (0)

bool mk__segments_check(int *errors)
{
	size_t dirty = 0, count = 0, wholly_free = 0, in_spans = 0;
	pthread_mutex_lock(&seg_lock);
	for (mk_segment *seg = segments; seg; seg = seg->next) {
		count++;
		if (seg->magic != SEG_MAGIC)
			SEG_ERROR("memkit: check: segment %p has a bad magic\n", (void *)seg);
		if (mk__segmap[((uintptr_t)seg >> MK_SEG_SHIFT) & MK_SEGMAP_MASK] != 1)
			SEG_ERROR("memkit: check: segment %p missing from the segment map\n", (void *)seg);
		unsigned free_slices = 0, i = 1;
		int prev_free = 0;
		uint64_t free_mask = 0;
		while (i < MK_SLICES) {
			mk_span *s = &seg->spans[i];
			if (s->slices == 0 || i + s->slices > MK_SLICES) {
				SEG_ERROR("memkit: check: segment %p slice %u has a bad length %u\n", (void *)seg, i, s->slices);
				break;
			}
			/* Read once: another thread may move a span between active and full meanwhile. */
			uint8_t state = MK_LOAD(s->state);
			bool is_free = state == MK_SPAN_FREE;
			for (unsigned k = i; k < i + s->slices; k++) {
				unsigned h = head_of(seg, k);
				bool edge = k == i || k == i + s->slices - 1;
				if (is_free && !edge ? h < i || h > k || MK_LOAD(seg->spans[h].state) != MK_SPAN_FREE : h != i)
					SEG_ERROR("memkit: check: segment %p slice %u points to %u, not %s %u\n", (void *)seg, k, h,
					          is_free && !edge ? "a free descriptor from" : "", i);
			}
			if (is_free) {
				if (prev_free)
					SEG_ERROR("memkit: check: segment %p has adjacent free runs at %u\n", (void *)seg, i);
				free_slices += s->slices;
				free_mask |= mk__slice_bits(i, s->slices);
			} else if (state == MK_SPAN_ACTIVE || state == MK_SPAN_FULL) {
				if (s->start != slice_addr(seg, i) || s->block_size == 0 || s->capacity == 0 ||
				    s->carved > s->capacity || (size_t)s->capacity * s->block_size > (size_t)s->slices * MK_SLICE_SIZE)
					SEG_ERROR("memkit: check: span %p has inconsistent geometry\n", (void *)s);
				if (__atomic_load_n(&s->used, __ATOMIC_RELAXED) > s->carved + 1) /* + the pin */
					SEG_ERROR("memkit: check: span %p has more blocks in use than carved\n", (void *)s);
			} else {
				SEG_ERROR("memkit: check: span %p has bad state %u\n", (void *)s, state);
			}
			prev_free = is_free;
			i += s->slices;
		}
		if (seg->dirty_mask & ~free_mask)
			SEG_ERROR("memkit: check: segment %p has dirty slices in use (%#llx)\n", (void *)seg,
			          (unsigned long long)(seg->dirty_mask & ~free_mask));
		dirty += (size_t)__builtin_popcountll(seg->dirty_mask) * MK_SLICE_SIZE;
		if (free_slices != seg->free_slices)
			SEG_ERROR("memkit: check: segment %p counts %u free slices, has %u\n", (void *)seg,
			          seg->free_slices, free_slices);
		if (free_slices == MK_SLICES - 1) {
			wholly_free++;
			uint64_t last = newest_stamp(seg);
			if (seg->whole_free_since_ms != last)
				SEG_ERROR("memkit: check: segment %p wholly free since %llu, its slices say %llu\n", (void *)seg,
				          (unsigned long long)seg->whole_free_since_ms, (unsigned long long)last);
		}
		in_spans += MK_SLICES - 1 - free_slices;
	}
	if (in_spans != used_slices)
		SEG_ERROR("memkit: check: %zu slices in spans, %zu counted\n", in_spans, used_slices);
	if (count != nsegments)
		SEG_ERROR("memkit: check: %zu segments listed, %zu counted\n", count, nsegments);
	if (dirty != dirty_bytes())
		SEG_ERROR("memkit: check: %zu dirty bytes found, %zu counted\n", dirty, dirty_bytes());
	if (wholly_free != free_segments)
		SEG_ERROR("memkit: check: %zu free segments found, %zu counted\n", wholly_free, free_segments);
	if (*errors == 0)   /* the runs' indexes, over segments whose structure is sound */
		mk__runs_check(&runs, segments, errors);
	pthread_mutex_unlock(&seg_lock);
	return *errors == 0;
}
