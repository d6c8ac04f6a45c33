/* Segments: where spans come from, and where free memory goes back to the system.
 *
 * Invariants (mk__segments_check verifies them):
 *  - slice 0 of every segment is its header; spans[0] is a sentinel whose heap is NULL, so a free() of a
 *    pointer into the header always reaches the slow path and is refused.
 *  - slices 1..63 are covered exactly by runs (spans in use, or free runs); span_at[i] locates the
 *    descriptor of the run covering slice i (the run's first slice's); two free runs are never adjacent (freeing coalesces).
 *  - a segment's dirty_mask marks the free slices that may hold pages (not purged since they were freed),
 *    dirty_since_ms when each was freed; only free slices are dirty.  Tracking this per slice, not per
 *    run, keeps both right when runs merge: a purged neighbour stays clean, an old one stays old.
 *  - dirty_bytes is the size of all dirty slices; after every span free it is within the purge budget
 *    (MK_PURGE_BUDGET_MIN or 1/8 of the memory in spans, whichever is more) unless the system refused a
 *    purge, so free memory goes back promptly even when the program then stops calling the allocator.
 *    Going over the budget purges the oldest down to half of it, so that purges come in batches.
 *  - used_slices counts the slices of all spans in use.
 *  - mk__segmap[seg >> 22] == 1 exactly while seg is mapped.
 * Everything here runs under seg_lock, on the slow path only (once per span, i.e. per 64 KiB or more). */
#include <pthread.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/stats.h"
#include "os/os.h"

#define SEG_MAGIC 0x6d656d6b69747367ull /* "memkitsg" */
#define MK_SPAN_HEADER 3                /* state of spans[0] */

static pthread_mutex_t seg_lock = PTHREAD_MUTEX_INITIALIZER;
static mk_segment *segments;      /* all mapped segments; those with free slices first */
static size_t nsegments, dirty_bytes, free_segments, used_slices;
static uint64_t last_purge_ms;


void mk__segments_lock(void) { pthread_mutex_lock(&seg_lock); }
void mk__segments_unlock(void) { pthread_mutex_unlock(&seg_lock); }
void mk__segments_reset_lock(void) { pthread_mutex_init(&seg_lock, NULL); }

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

/* Slices [i, i + n) as a bit mask (i >= 1, so n < 64). */
static uint64_t slice_bits(unsigned i, unsigned n) { return (((uint64_t)1 << n) - 1) << i; }
static size_t dirty_in(mk_segment *seg, unsigned i, unsigned n)
{
	return (size_t)__builtin_popcountll(seg->dirty_mask & slice_bits(i, n)) * MK_SLICE_SIZE;
}

/* Makes slices [i, i + n) one free run (their dirtiness is the caller's business). */
static void set_run(mk_segment *seg, unsigned i, unsigned n)
{
	mk_span *r = &seg->spans[i];
	memset(r, 0, sizeof *r);
	MK_STORE(r->state, MK_SPAN_FREE);
	r->slices = n;
	for (unsigned k = i; k < i + n; k++)
		seg->span_at[k] = offset_of_span(i);
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
	set_run(seg, 1, MK_SLICES - 1);
	seg->free_slices = MK_SLICES - 1;
	list_push_front(seg);
	nsegments++;
	mk__stat_segment(1);
	free_segments++;
	__atomic_store_n(&mk__segmap[((uintptr_t)seg >> MK_SEG_SHIFT) & MK_SEGMAP_MASK], 1, __ATOMIC_RELEASE);
	return seg;
}

/* Unmaps a wholly free segment; false (and the segment stays, as it was) when the system refuses. */
static bool segment_release(mk_segment *seg)
{
	uint8_t *map = &mk__segmap[((uintptr_t)seg >> MK_SEG_SHIFT) & MK_SEGMAP_MASK];
	size_t dirty = (size_t)__builtin_popcountll(seg->dirty_mask) * MK_SLICE_SIZE;
	mk_segment *prev = seg->prev;
	list_remove(seg);
	__atomic_store_n(map, 0, __ATOMIC_RELEASE);
	MK_ASAN_LIVE(seg, MK_SEG_SIZE);   /* whoever maps this range next finds it unpoisoned */
	if (mk__os_unmap(seg, MK_SEG_SIZE) != 0) {
		__atomic_store_n(map, 1, __ATOMIC_RELEASE);
		if (prev) {   /* back where it was, so the caller's walk goes on from it */
			seg->prev = prev;
			seg->next = prev->next;
			if (prev->next)
				prev->next->prev = seg;
			prev->next = seg;
		} else {
			list_push_front(seg);
		}
		return false;
	}
	nsegments--;
	mk__stat_segment(-1);
	free_segments--;
	dirty_bytes -= dirty;
	return true;
}

/* Takes n slices from the first free run that is long enough (splitting it); with only_dirty, from a run
 * whose first n slices are still resident (reusing them costs no page faults). */
static mk_span *take_run(mk_segment *seg, unsigned n, bool only_dirty)
{
	for (unsigned i = 1; i < MK_SLICES; i += seg->spans[i].slices) {
		mk_span *r = &seg->spans[i];
		if (MK_LOAD(r->state) != MK_SPAN_FREE || r->slices < n ||
		    (only_dirty && (seg->dirty_mask & slice_bits(i, n)) != slice_bits(i, n)))
			continue;
		if (seg->free_slices == MK_SLICES - 1)
			free_segments--;
		unsigned len = r->slices;
		bool zeroed = (seg->dirty_mask & slice_bits(i, n)) == 0;   /* purged or never used: reads zero */
		dirty_bytes -= dirty_in(seg, i, n);
		seg->dirty_mask &= ~slice_bits(i, n);
		if (len > n)
			set_run(seg, i + n, len - n);
		memset(r, 0, sizeof *r);
		r->zeroed = zeroed;
		used_slices += n;
		r->slices = n;
		MK_STORE(r->state, MK_SPAN_ACTIVE);
		r->start = slice_addr(seg, i);
		seg->free_slices -= n;
		return r;
	}
	return NULL;
}

static void purge_locked(bool all, uint64_t now);

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

mk_span *mk__span_alloc(unsigned slices, unsigned cls)
{
	mk_span *s = NULL;
	pthread_mutex_lock(&seg_lock);
	uint64_t now = mk__now_ms();   /* under the lock: ages computed from it never go negative */
	for (int pass = 0; pass < 2 && !s; pass++)
		for (mk_segment *seg = segments; seg && !s; seg = seg->next)
			if (seg->free_slices >= slices)
				s = take_run(seg, slices, pass == 0);
	if (!s) {
		mk_segment *seg = segment_new();
		if (seg)
			s = take_run(seg, slices, false);
	}
	if (s)
		set_geometry(s, cls);
	mk__stat_span(s, 1);
	if (dirty_bytes && now - last_purge_ms >= (uint64_t)mk__opt.purge_delay_ms)
		purge_locked(false, now);
	pthread_mutex_unlock(&seg_lock);
	return s;
}

/* Purges the dirty slices of [i, i + n) freed at or before `older` (UINT64_MAX: all), in as few calls as
 * contiguity allows, until `enough` bytes are purged.  A slice the system refused to purge stays dirty (and
 * counted); false then. */
static bool purge_slices(mk_segment *seg, unsigned i, unsigned n, uint64_t older, size_t enough)
{
	bool ok = true;
	size_t done = 0;
	unsigned k = i, end = i + n;
	while (k < end && done < enough) {
		if (!((seg->dirty_mask >> k) & 1) || seg->dirty_since_ms[k] > older) {
			k++;
			continue;
		}
		unsigned first = k;
		while (k < end && ((seg->dirty_mask >> k) & 1) && seg->dirty_since_ms[k] <= older &&
		       done + (size_t)(k - first) * MK_SLICE_SIZE < enough)
			k++;
		if (mk__os_purge((void *)slice_addr(seg, first), (size_t)(k - first) * MK_SLICE_SIZE) != 0) {
			ok = false;
			continue;
		}
		seg->dirty_mask &= ~slice_bits(first, k - first);
		dirty_bytes -= (size_t)(k - first) * MK_SLICE_SIZE;
		done += (size_t)(k - first) * MK_SLICE_SIZE;
	}
	return ok;
}

/* How much free memory may stay resident whatever its age: MEMKIT_PURGE_LIMIT when set, else 1/8 of the
 * memory in spans, at least MK_PURGE_BUDGET_MIN (the purge delay deals with the rest while the program runs;
 * the budget bounds what stays when it stops calling the allocator). */
static size_t purge_budget(void)
{
	if (mk__opt.purge_limit > 0)
		return (size_t)mk__opt.purge_limit;
	size_t b = used_slices * MK_SLICE_SIZE / 8;
	return b > MK_PURGE_BUDGET_MIN ? b : MK_PURGE_BUDGET_MIN;
}

/* Over the budget, purges the oldest dirty slices until the unpurged total is half the budget: the newest
 * are the likeliest to be reused soon.  Stops at the first refusal (the system would refuse again). */
static void purge_over_budget(void)
{
	size_t budget = purge_budget();
	if (dirty_bytes <= budget)
		return;
	while (dirty_bytes > budget / 2) {
		mk_segment *oldest_seg = NULL;
		uint64_t oldest = UINT64_MAX;
		for (mk_segment *seg = segments; seg; seg = seg->next)
			for (uint64_t m = seg->dirty_mask; m; m &= m - 1) {
				unsigned k = (unsigned)__builtin_ctzll(m);
				if (seg->dirty_since_ms[k] < oldest || !oldest_seg) {
					oldest = seg->dirty_since_ms[k];
					oldest_seg = seg;
				}
			}
		if (!oldest_seg || !purge_slices(oldest_seg, 1, MK_SLICES - 1, oldest, dirty_bytes - budget / 2))
			break;
	}
}

/* How long a wholly free segment has been so: since its last slice was freed (slices never used hold 0). */
static uint64_t wholly_free_for(mk_segment *seg, uint64_t now)
{
	uint64_t last = 0;
	for (unsigned k = 1; k < MK_SLICES; k++)
		last = seg->dirty_since_ms[k] > last ? seg->dirty_since_ms[k] : last;
	return now - last;
}

/* Purges free slices freed at least the purge delay ago (all of them when `all`), and unmaps wholly free
 * segments beyond the one kept for reuse once they have been so for the purge delay. */
static void purge_locked(bool all, uint64_t now)
{
	last_purge_ms = now;
	uint64_t delay = (uint64_t)mk__opt.purge_delay_ms;
	uint64_t older = all ? UINT64_MAX : (now >= delay ? now - delay : 0);
	mk_segment *next;
	for (mk_segment *seg = segments; seg; seg = next) {
		next = seg->next;
		if (seg->free_slices == MK_SLICES - 1 && (all || (free_segments > 1 && wholly_free_for(seg, now) >= delay)) &&
		    segment_release(seg))
			continue;
		if (seg->dirty_mask)
			purge_slices(seg, 1, MK_SLICES - 1, older, SIZE_MAX);
	}
}

void mk__segments_purge(bool all)
{
	pthread_mutex_lock(&seg_lock);
	purge_locked(all, mk__now_ms());   /* read under the lock, as everywhere */
	pthread_mutex_unlock(&seg_lock);
}

void mk__span_free(mk_span *s)
{
	mk_segment *seg = mk__segment_of((void *)s);
	pthread_mutex_lock(&seg_lock);
	uint64_t now = mk__now_ms();
	unsigned i = index_of(seg, s), n = s->slices;
	mk__stat_span(s, -1);
	seg->free_slices += n;
	used_slices -= n;
	/* The span's slices become dirty, now; the neighbours' slices keep their own state and age. */
	seg->dirty_mask |= slice_bits(i, n);
	for (unsigned k = i; k < i + n; k++)
		seg->dirty_since_ms[k] = now;
	dirty_bytes += (size_t)n * MK_SLICE_SIZE;
	/* Merge with the free runs on either side. */
	unsigned after = i + n;
	if (after < MK_SLICES && MK_LOAD(seg->spans[after].state) == MK_SPAN_FREE)
		n += seg->spans[after].slices;
	unsigned before = head_of(seg, i - 1);
	if (i > 1 && MK_LOAD(seg->spans[before].state) == MK_SPAN_FREE) {
		n += i - before;
		i = before;
	}
	set_run(seg, i, n);
	if (seg->free_slices == MK_SLICES - 1)
		free_segments++;
	if (seg != segments) {     /* segments with room first, so allocation finds them early */
		list_remove(seg);
		list_push_front(seg);
	}
	if (mk__opt.purge_delay_ms == 0 || now - last_purge_ms >= (uint64_t)mk__opt.purge_delay_ms)
		purge_locked(mk__opt.purge_delay_ms == 0, now);
	purge_over_budget();
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
	*free_dirty = dirty_bytes;
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
			for (unsigned k = i; k < i + s->slices; k++)
				if (head_of(seg, k) != i)
					SEG_ERROR("memkit: check: segment %p slice %u points to %u, not %u\n", (void *)seg, k,
					          head_of(seg, k), i);
			if (MK_LOAD(s->state) == MK_SPAN_FREE) {
				if (prev_free)
					SEG_ERROR("memkit: check: segment %p has adjacent free runs at %u\n", (void *)seg, i);
				free_slices += s->slices;
				free_mask |= slice_bits(i, s->slices);
			} else if (MK_LOAD(s->state) == MK_SPAN_ACTIVE || MK_LOAD(s->state) == MK_SPAN_FULL) {
				if (s->start != slice_addr(seg, i) || s->block_size == 0 || s->capacity == 0 ||
				    s->carved > s->capacity || (size_t)s->capacity * s->block_size > (size_t)s->slices * MK_SLICE_SIZE)
					SEG_ERROR("memkit: check: span %p has inconsistent geometry\n", (void *)s);
				if (__atomic_load_n(&s->used, __ATOMIC_RELAXED) > s->carved + 1) /* + the pin */
					SEG_ERROR("memkit: check: span %p has more blocks in use than carved\n", (void *)s);
			} else {
				SEG_ERROR("memkit: check: span %p has bad state %u\n", (void *)s, MK_LOAD(s->state));
			}
			prev_free = MK_LOAD(s->state) == MK_SPAN_FREE;
			i += s->slices;
		}
		if (seg->dirty_mask & ~free_mask)
			SEG_ERROR("memkit: check: segment %p has dirty slices in use (%#llx)\n", (void *)seg,
			          (unsigned long long)(seg->dirty_mask & ~free_mask));
		dirty += (size_t)__builtin_popcountll(seg->dirty_mask) * MK_SLICE_SIZE;
		if (free_slices != seg->free_slices)
			SEG_ERROR("memkit: check: segment %p counts %u free slices, has %u\n", (void *)seg,
			          seg->free_slices, free_slices);
		if (free_slices == MK_SLICES - 1)
			wholly_free++;
		in_spans += MK_SLICES - 1 - free_slices;
	}
	if (in_spans != used_slices)
		SEG_ERROR("memkit: check: %zu slices in spans, %zu counted\n", in_spans, used_slices);
	if (count != nsegments)
		SEG_ERROR("memkit: check: %zu segments listed, %zu counted\n", count, nsegments);
	if (dirty != dirty_bytes)
		SEG_ERROR("memkit: check: %zu dirty bytes found, %zu counted\n", dirty, dirty_bytes);
	if (wholly_free != free_segments)
		SEG_ERROR("memkit: check: %zu free segments found, %zu counted\n", wholly_free, free_segments);
	pthread_mutex_unlock(&seg_lock);
	return *errors == 0;
}
