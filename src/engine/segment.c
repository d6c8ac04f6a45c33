/* Segments: where spans come from, and where free memory goes back to the system.
 *
 * Invariants (mk__segments_check verifies them):
 *  - slice 0 of every segment is its header; spans[0] is a sentinel whose heap is NULL, so a free() of a
 *    pointer into the header always reaches the slow path and is refused.
 *  - slices 1..63 are covered exactly by runs (spans in use, or free runs); span_at[i] locates the
 *    descriptor of the run covering slice i (the run's first slice's); two free runs are never adjacent (freeing coalesces).
 *  - dirty_bytes is the total size of free runs that may hold pages (not purged since they were freed);
 *    after every span free it is within the purge budget (1/8 of the memory in spans, at least 1 MiB),
 *    so free memory goes back promptly even when the program then stops calling the allocator.
 *  - used_slices counts the slices of all spans in use.
 *  - mk__segmap[seg >> 22] == 1 exactly while seg is mapped.
 * Everything here runs under seg_lock, on the slow path only (once per span, i.e. per 64 KiB or more). */
#include <pthread.h>
#include <string.h>

#include "engine/engine.h"
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

/* Makes slices [i, i + n) one free run. */
static void set_run(mk_segment *seg, unsigned i, unsigned n, int dirty, uint64_t since)
{
	mk_span *r = &seg->spans[i];
	memset(r, 0, sizeof *r);
	MK_STORE(r->state, MK_SPAN_FREE);
	r->slices = n;
	r->dirty = (uint8_t)dirty;
	r->free_since_ms = since;
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
	set_run(seg, 1, MK_SLICES - 1, 0, 0);
	seg->free_slices = MK_SLICES - 1;
	list_push_front(seg);
	nsegments++;
	free_segments++;
	__atomic_store_n(&mk__segmap[((uintptr_t)seg >> MK_SEG_SHIFT) & MK_SEGMAP_MASK], 1, __ATOMIC_RELEASE);
	return seg;
}

static void segment_release(mk_segment *seg)
{
	list_remove(seg);
	nsegments--;
	free_segments--;
	if (seg->spans[1].dirty)
		dirty_bytes -= (MK_SLICES - 1) * MK_SLICE_SIZE;
	__atomic_store_n(&mk__segmap[((uintptr_t)seg >> MK_SEG_SHIFT) & MK_SEGMAP_MASK], 0, __ATOMIC_RELEASE);
	mk__os_unmap(seg, MK_SEG_SIZE);
}

/* Takes n slices from the first free run that is long enough (splitting it); with only_dirty, from a run
 * whose pages are still resident (reusing them costs no page faults). */
static mk_span *take_run(mk_segment *seg, unsigned n, bool only_dirty)
{
	for (unsigned i = 1; i < MK_SLICES; i += seg->spans[i].slices) {
		mk_span *r = &seg->spans[i];
		if (MK_LOAD(r->state) != MK_SPAN_FREE || r->slices < n || (only_dirty && !r->dirty))
			continue;
		if (seg->free_slices == MK_SLICES - 1)
			free_segments--;
		unsigned len = r->slices;
		int dirty = r->dirty;
		uint64_t since = r->free_since_ms;
		if (dirty)
			dirty_bytes -= (size_t)len * MK_SLICE_SIZE;
		if (len > n) {
			set_run(seg, i + n, len - n, dirty, since);
			if (dirty)
				dirty_bytes += (size_t)(len - n) * MK_SLICE_SIZE;
		}
		memset(r, 0, sizeof *r);
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

mk_span *mk__span_alloc(unsigned slices)
{
	mk_span *s = NULL;
	uint64_t now = mk__now_ms();
	pthread_mutex_lock(&seg_lock);
	for (int pass = 0; pass < 2 && !s; pass++)
		for (mk_segment *seg = segments; seg && !s; seg = seg->next)
			if (seg->free_slices >= slices)
				s = take_run(seg, slices, pass == 0);
	if (!s) {
		mk_segment *seg = segment_new();
		if (seg)
			s = take_run(seg, slices, false);
	}
	if (dirty_bytes && now - last_purge_ms >= (uint64_t)mk__opt.purge_delay_ms)
		purge_locked(false, now);
	pthread_mutex_unlock(&seg_lock);
	return s;
}

static void purge_run(mk_segment *seg, unsigned i)
{
	mk_span *r = &seg->spans[i];
	mk__os_purge((void *)slice_addr(seg, i), (size_t)r->slices * MK_SLICE_SIZE);
	dirty_bytes -= (size_t)r->slices * MK_SLICE_SIZE;
	r->dirty = 0;
}

/* How much free memory may stay resident: MEMKIT_PURGE_LIMIT when set, else 1/8 of the memory in spans
 * (at least 1 MiB), so that what a program frees goes back in proportion to what it keeps. */
static size_t purge_budget(void)
{
	if (mk__opt.purge_limit > 0)
		return (size_t)mk__opt.purge_limit;
	size_t b = used_slices * MK_SLICE_SIZE / 8;
	return b > ((size_t)1 << 20) ? b : (size_t)1 << 20;
}

/* Purges the oldest dirty runs until the unpurged total is within the budget: the newest are the likeliest
 * to be reused soon. */
static void purge_over_budget(void)
{
	size_t budget = purge_budget();
	while (dirty_bytes > budget) {
		mk_segment *oldest_seg = NULL;
		unsigned oldest = 0;
		for (mk_segment *seg = segments; seg; seg = seg->next)
			for (unsigned i = 1; i < MK_SLICES; i += seg->spans[i].slices) {
				mk_span *r = &seg->spans[i];
				if (MK_LOAD(r->state) == MK_SPAN_FREE && r->dirty &&
				    (!oldest_seg || r->free_since_ms < oldest_seg->spans[oldest].free_since_ms)) {
					oldest_seg = seg;
					oldest = i;
				}
			}
		if (!oldest_seg)
			break;
		purge_run(oldest_seg, oldest);
	}
}

/* Purges free runs freed more than the purge delay ago (all of them when `all`), and unmaps wholly free
 * segments beyond the one kept for reuse. */
static void purge_locked(bool all, uint64_t now)
{
	last_purge_ms = now;
	mk_segment *next;
	for (mk_segment *seg = segments; seg; seg = next) {
		next = seg->next;
		if (seg->free_slices == MK_SLICES - 1 && (all || free_segments > 1)) {
			segment_release(seg);
			continue;
		}
		for (unsigned i = 1; i < MK_SLICES; i += seg->spans[i].slices) {
			mk_span *r = &seg->spans[i];
			if (MK_LOAD(r->state) == MK_SPAN_FREE && r->dirty &&
			    (all || now - r->free_since_ms >= (uint64_t)mk__opt.purge_delay_ms))
				purge_run(seg, i);
		}
	}
}

void mk__segments_purge(bool all)
{
	pthread_mutex_lock(&seg_lock);
	purge_locked(all, mk__now_ms());
	pthread_mutex_unlock(&seg_lock);
}

void mk__span_free(mk_span *s)
{
	mk_segment *seg = mk__segment_of((void *)s);
	uint64_t now = mk__now_ms();
	pthread_mutex_lock(&seg_lock);
	unsigned i = index_of(seg, s), n = s->slices;
	seg->free_slices += n;
	used_slices -= n;
	/* Merge with the free runs on either side. */
	unsigned after = i + n;
	if (after < MK_SLICES && MK_LOAD(seg->spans[after].state) == MK_SPAN_FREE) {
		if (seg->spans[after].dirty)
			dirty_bytes -= (size_t)seg->spans[after].slices * MK_SLICE_SIZE;
		n += seg->spans[after].slices;
	}
	unsigned before = head_of(seg, i - 1);
	if (i > 1 && MK_LOAD(seg->spans[before].state) == MK_SPAN_FREE) {
		if (seg->spans[before].dirty)
			dirty_bytes -= (size_t)seg->spans[before].slices * MK_SLICE_SIZE;
		n += i - before;
		i = before;
	}
	set_run(seg, i, n, 1, now);
	dirty_bytes += (size_t)n * MK_SLICE_SIZE;
	if (seg->free_slices == MK_SLICES - 1)
		free_segments++;
	if (seg != segments) {     /* segments with room first, so allocation finds them early */
		list_remove(seg);
		list_push_front(seg);
	}
	if (mk__opt.purge_delay_ms == 0 || free_segments > 1 || now - last_purge_ms >= (uint64_t)mk__opt.purge_delay_ms)
		purge_locked(mk__opt.purge_delay_ms == 0, now);
	purge_over_budget();
	pthread_mutex_unlock(&seg_lock);
}

/* Links the next page's worth of never-used blocks into the free list, lowest address first: a new span
 * is touched (and becomes resident) only as fast as it is used. */
void mk__span_carve(mk_span *s)
{
	uint32_t n = (uint32_t)(MK_PAGE_SIZE_HINT / s->block_size);
	if (n == 0)
		n = 1;
	if (n > s->capacity - s->carved)
		n = s->capacity - s->carved;
	uintptr_t first = s->start + (uintptr_t)s->carved * s->block_size;
	mk_block *next = s->free;
	for (uint32_t k = n; k-- > 0;) {
		mk_block *b = (mk_block *)(first + (uintptr_t)k * s->block_size);
		b->next = next;
		next = b;
	}
	s->free = next;
	s->carved += n;
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
				if (s->dirty)
					dirty += (size_t)s->slices * MK_SLICE_SIZE;
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
