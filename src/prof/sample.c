/* Sampling: the byte countdown, the proxy spans that bring it to the slow path, and the sampled blocks'
 * own heap.  This is the one file of the profiler that knows how thread heaps keep their spans (the
 * direct table, current spans and their pin, `used`): adapting to a change there is local to it.
 *
 * Two builds.  In the profiling build (MK_PROF_COUNT, libmemkit-prof.so) the inlined malloc counts the
 * bytes itself (engine.h) and alloc_direct below samples: no proxies.  What follows is the drop-in's.
 *
 * Zero cost when off.  The inlined malloc pops from h->direct[(n + 15) >> 4] and calls the slow path when
 * that span has no free block; the inlined free pushes onto the block's own span when the heap owns it.
 * Neither is changed.  When profiling is on, the slow path (mk__prof_alloc) points a heap's direct entries
 * for a class at a proxy span of its own, holding a piece of the current span's free list cut to as many
 * blocks as fit before the next sample point (countdown / block size).  The fast path pops them without
 * knowing; when they are gone it calls the slow path, which counts what was popped (all of them), draws
 * the sample if the next block reaches the point, and cuts the next piece.  Frees go to the real span as
 * before (the proxy is never a block's span), so a malloc/free loop cannot hide bytes from the count: it
 * runs through the proxy's few blocks and comes back here, once per countdown / block size allocations.
 * The stolen blocks count in the real span's `used` until popped or given back, so the span cannot be
 * retired under them; mk_check's invariant (free + used = carved + pin) holds throughout.
 *
 * Sizes over MK_DIRECT_MAX always take the slow path, where they are counted directly.  A sampled small
 * block is taken from mk__prof_heap, a heap no thread owns: its free fails the fast path's owner test and
 * reaches mk__free_slow, which calls mk__prof_forget.  Large and huge blocks always free on a slow path. */
#include <errno.h>
#include <string.h>

#include "os/os.h"
#include "prof/prof.h"

bool mk__prof_on;
mk_heap mk__prof_heap;

typedef struct prof_heap {
	mk_heap *heap;                    /* the thread heap these proxies belong to, for ever */
	struct prof_heap *next;
	int64_t countdown;                /* bytes before the next point, of what is counted block by block */
	uint64_t rng;
	/* Bytes of class cls before its next sample point, for the classes the proxies serve (-1: not drawn
	 * yet).  One countdown per class, not one per heap: a proxy is cut to what fits before its class's
	 * point, so that its blocks can be popped unseen; with a shared countdown, every class's proxy would
	 * be cut to the same point, and the pops of one would pass points the others' had counted on (the
	 * points missed would go unsampled).  Independent Poisson processes of one rate over disjoint bytes
	 * are one over all of them: every byte still has the same chance. */
	int64_t left[MK_NCLASSES];
	mk_span *from[MK_NCLASSES];       /* the span the proxy's blocks were cut from, or NULL */
	uint32_t taken[MK_NCLASSES];      /* how many were cut */
	uint8_t pieces[MK_NCLASSES];      /* pieces cut so far, up to CARVE_AFTER */
	mk_span proxy[MK_NCLASSES];
} prof_heap;

/* Appended to, never removed from (heaps are never unmapped): found without a lock, so that
 * mk__prof_heap_release can run under the heaps lock without taking the profiler's. */
static _Atomic(prof_heap *) states;
static __thread prof_heap *mine;
/* The countdown of the classes over MK_DIRECT_MAX, which reach mk__alloc_slow on every allocation: per
 * thread, so that the check is inlined there (mk__prof_alloc_in).  A second Poisson process of the same
 * rate over other bytes: every byte still has the same chance.  -1: not drawn yet. */
__thread int64_t mk__prof_mid_left = -1;
/* Set while this thread captures a stack: an allocation made by the unwinder itself is not sampled. */
__thread int mk__prof_busy;
_Atomic long mk__prof_capture_allocs;
/* Blocks allocated with no thread heap (huge calloc before the first malloc of a thread): under the lock. */
static int64_t global_countdown = -1;
static uint64_t global_rng = 88172645463325252ull;

static uint64_t next_random(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* The gap to the next sample point: floor of an exponential of mean `rate`, i.e. geometric over bytes,
 * so that each byte is a point with the same probability, independently of the others. */
static int64_t gap(uint64_t *rng)
{
	double u = (double)((next_random(rng) >> 11) + 1) * (1.0 / 9007199254740992.0);   /* (0, 1] */
	return (int64_t)(-mk__prof_ln(u) * (double)mk__prof_opt.rate);
}

/* Counts an allocation of size bytes; true when a sample point falls in it. */
static bool take(int64_t *countdown, uint64_t *rng, size_t size)
{
	if (*countdown < 0)
		*countdown = gap(rng);
	if ((uint64_t)*countdown >= size) {
		*countdown -= (int64_t)size;
		return false;
	}
	/* The points are a Bernoulli process over bytes: those after the block's end do not depend on those
	 * inside it, so the next one is a fresh gap away (one draw, however many points a huge block holds). */
	*countdown = gap(rng);
	return true;
}

static prof_heap *state_of(mk_heap *h, bool create)
{
	prof_heap *st = mine;
	if (st && st->heap == h)
		return st;
	for (st = atomic_load_explicit(&states, memory_order_acquire); st; st = st->next)
		if (st->heap == h)
			break;
	if (!st && create) {
		st = mk__os_map(sizeof *st);
		if (!st)
			return NULL;
		st->heap = h;
		st->rng = (mk__secret ^ (uintptr_t)h) | 1;
		st->countdown = gap(&st->rng);
		for (unsigned c = 0; c < MK_NCLASSES; c++)
			st->left[c] = -1;
		st->next = atomic_load_explicit(&states, memory_order_relaxed);
		while (!atomic_compare_exchange_weak_explicit(&states, &st->next, st, memory_order_release,
		                                              memory_order_relaxed))
			;
	}
	if (create)
		mine = st;
	return st;
}

#if !MK_PROF_COUNT   /* the drop-in's proxies, down to is_direct: the profiling build has none */
/* Counts on the class's countdown what the inlined malloc popped from its proxy (the pops count in the
 * proxy's `used`: no walk to count; used <= taken, so they fit before the point), leaving a piece of the
 * blocks not popped. */
static void count_popped(prof_heap *st, unsigned cls)
{
	mk_span *px = &st->proxy[cls];
	st->left[cls] -= (int64_t)px->used * px->block_size;
	st->taken[cls] -= px->used;
	px->used = 0;
}

static void point_direct(mk_heap *h, unsigned cls, mk_span *s)
{
	for (unsigned d = mk__classes[cls].direct_lo; d < mk__classes[cls].direct_hi; d++)
		h->direct[d] = s;
}

/* The proxy of cls is empty (or about to be abandoned): counts what was popped from it and gives what was
 * not back to the span it came from. */
static void reconcile(prof_heap *st, unsigned cls)
{
	mk_span *from = st->from[cls], *px = &st->proxy[cls];
	if (!from)
		return;
	/* What is left joins the span's own free list, walking the shorter of the two to its end: the
	 * span's holds carved + pin - used blocks (the stolen ones count in used), pin 1 while current. */
	count_popped(st, cls);
	uint32_t left = st->taken[cls];
	if (left) {
		uint64_t own = from->carved + (st->heap->current[cls] == from) - from->used;
		if (!from->free) {
			from->free = px->free;
		} else if (own < left && own <= from->capacity) {
			mk_block *last = from->free;      /* the span's own (freed since: warmer) first */
			while (last->next)
				last = last->next;
			last->next = px->free;
		} else {
			mk_block *last = px->free;
			while (last->next)
				last = last->next;
			last->next = from->free;
			from->free = px->free;
		}
	}
	px->free = NULL;
	st->from[cls] = NULL;
	from->used -= left;
	if (from->used == 0)       /* no longer current (no pin), and every block came back */
		mk__span_emptied(from);
}

#define PIECE_MIN 32
#define CARVE_AFTER 8

/* Cuts the next piece of the current span's free list into the proxy, and makes the proxy what the
 * inlined malloc of cls sees. */
static void install(prof_heap *st, mk_heap *h, unsigned cls)
{
	mk_span *s = h->current[cls], *px = &st->proxy[cls];
	uint32_t bs = mk__classes[cls].size;
	uint64_t room = st->left[cls] > 0 ? (uint64_t)st->left[cls] / bs : 0;
	uint64_t want = room < PIECE_MIN ? room : PIECE_MIN;
	uint32_t k = 0;
	s = mk__heap_move_on(h, cls, (uint32_t)want);
	/* A short list would bring the slow path back after a few allocations (a class of 1 KiB blocks has 4
	 * in a page): the span's untouched tail is carved on, a page at a time, until a piece holds
	 * PIECE_MIN blocks (or all that fit before the point).  At most PIECE_MIN blocks per class and heap
	 * become resident earlier than they would have.  Only for a class this heap keeps coming back for
	 * (CARVE_AFTER pieces): a short-lived thread's few blocks of a class are not worth the pages. */
	if (st->pieces[cls] < CARVE_AFTER) {
		st->pieces[cls]++;
	} else if (s != &mk__empty_span) {
		while (s->carved < s->capacity && s->carved + 1 - s->used < want)
			mk__span_carve(s);
	}
	mk_block *first = s->free, *rest = NULL;
	/* The current span's free list holds carved + pin - used blocks (the invariant mk_check verifies; a
	 * remote free changes neither side until it is collected).  When it all fits before the sample point
	 * it moves whole, without a walk; otherwise the first `room` blocks are cut off (once per sample). */
	uint64_t len = s != &mk__empty_span && first ? s->carved + 1 - s->used : 0;
	if (len && len <= room && len <= s->capacity) {
		k = (uint32_t)len;
	} else if (first) {
		mk_block *last = NULL;
		for (mk_block *b = first; b && k < room; b = b->next) {
			last = b;
			k++;
		}
		if (k)
			rest = last->next, last->next = NULL;
	}
	px->free = NULL;
	px->used = 0;
	px->block_size = bs;
	if (k) {
		s->free = rest;
		s->used += k;
		px->free = first;
		st->from[cls] = s;
		st->taken[cls] = k;
	}
	point_direct(h, cls, px);
}

static bool is_direct(unsigned cls) { return mk__classes[cls].direct_lo < mk__classes[cls].direct_hi; }

#endif

/* A sampled block of class cls, from mk__prof_heap, recorded with the caller's stack. */
static void *sample_small(unsigned cls)
{
	uintptr_t frames[PROF_MAX_FRAMES];
	int n = mk__prof_backtrace(frames, PROF_MAX_FRAMES);
	mk__os_point("prof.sample");      /* between the capture and the record (tests/prof/fork.c) */
	mk__prof_lock();
	void *p = mk__heap_alloc_class(&mk__prof_heap, cls);
	if (p)
		mk__prof_record((uintptr_t)p, mk__classes[cls].size, frames, n);
	mk__prof_unlock();
	mk__prof_after_sample();
	return p;
}

static void sample_big(void *p, size_t size)
{
	uintptr_t frames[PROF_MAX_FRAMES];
	int n = mk__prof_backtrace(frames, PROF_MAX_FRAMES);
	mk__prof_lock();
	mk__prof_record((uintptr_t)p, size, frames, n);
	mk__prof_unlock();
	mk__prof_after_sample();
}

static size_t big_size(void *p)
{
	return mk__is_ours(p) ? mk__span_of(mk__segment_of(p), p)->block_size : mk__huge_usable(p);
}

/* While this thread captures a stack (the unwinder's own allocations), bytes are counted and proxies kept
 * in place, but nothing is sampled. */
static bool sampled_on(int64_t *countdown, prof_heap *st, size_t size)
{
	if (mk_unlikely(mk__prof_busy == 2))
		atomic_fetch_add_explicit(&mk__prof_capture_allocs, 1, memory_order_relaxed);
	return take(countdown, &st->rng, size) && !mk__prof_busy;
}

static bool sampled(prof_heap *st, size_t size) { return sampled_on(&st->countdown, st, size); }

#if MK_PROF_COUNT
/* The profiling build: the inlined malloc counted the block's size down to the next point (mk__tls), unless
 * its span had no free block; a count below 0 means a point fell in the block it was about to hand out.
 * One countdown per thread for all the direct classes (no proxies, so nothing to hide one class's points
 * from another's). */
static __thread bool drawn;      /* this thread's first gap is drawn */

static void *alloc_direct(prof_heap *st, mk_heap *h, unsigned cls)
{
	if (mk_unlikely(mk__prof_busy == 2))
		atomic_fetch_add_explicit(&mk__prof_capture_allocs, 1, memory_order_relaxed);
	if (mk_unlikely(!drawn)) {
		drawn = true;
		mk__tls.prof_left = gap(&st->rng);
	}
	if (mk__tls.prof_left >= 0)      /* the span had no free block: not counted yet */
		mk__tls.prof_left -= (int64_t)mk__classes[cls].size;
	if (mk__tls.prof_left < 0) {
		/* The points are a Bernoulli process over bytes: the next one is a fresh gap past the block. */
		mk__tls.prof_left = gap(&st->rng);
		if (!mk__prof_busy) {
			void *p = sample_small(cls);
			if (p)
				return p;
		}
	}
	return mk__heap_alloc_class(h, cls);
}
#endif

static void *alloc_counted(prof_heap *st, mk_heap *h, size_t n)
{
	if (mk_unlikely(!st || st->heap != h))
		st = state_of(h, true);
	if (n > MK_MEDIUM_MAX) {
		void *p = n <= MK_LARGE_MAX ? mk__large_alloc(n) : n > PTRDIFF_MAX ? NULL : mk__huge_alloc(n, 0, false);
		if (p && st && sampled(st, big_size(p)))
			sample_big(p, big_size(p));
		return p;
	}
	bool direct = n <= MK_DIRECT_MAX;
	unsigned cls = direct ? mk__direct_class[(n + 15) >> 4] : mk__class_of(n);
	if (!st) {
#if MK_PROF_COUNT
		mk__tls.prof_left = INT64_MAX;   /* no state for this heap (out of memory): no more samples */
#endif
		return mk__heap_alloc_class(h, cls);
	}
	if (!direct)   /* counted on the thread's own countdown (mk__prof_alloc_in) */
		return sampled_on(&mk__prof_mid_left, st, mk__classes[cls].size) ? sample_small(cls)
		                                                                  : mk__heap_alloc_class(h, cls);
#if MK_PROF_COUNT
	return alloc_direct(st, h, cls);
#else
	reconcile(st, cls);
	void *p = sampled_on(&st->left[cls], st, mk__classes[cls].size) ? sample_small(cls)
	                                                                 : mk__heap_alloc_class(h, cls);
	install(st, h, cls);
	return p;
#endif
}

void *mk__prof_alloc(mk_heap *h, size_t n)
{
	return alloc_counted(mine, h, n);
}

void *mk__prof_note(void *p, size_t align)
{
	(void)align;
	if (!p)
		return p;
	mk_heap *h = mk__tls_heap;
	prof_heap *st = h != &mk__empty_heap ? state_of(h, true) : NULL;
	bool small = mk__is_ours(p) && mk__span_of(mk__segment_of(p), p)->cls != MK_LARGE_CLS;
	size_t size = big_size(p);
	bool hit;
	if (st) {
		hit = sampled(st, size);
	} else {
		mk__prof_lock();
		hit = take(&global_countdown, &global_rng, size) && !mk__prof_busy;
		mk__prof_unlock();
	}
	if (small) {
		unsigned cls = mk__span_of(mk__segment_of(p), p)->cls;
		if (hit) {
			/* Blocks of mk__prof_heap's spans of the same class are aligned as well (spans start
			 * on 64 KiB boundaries and the class size is a multiple of the alignment). */
			void *q = sample_small(cls);
			if (q) {
				mk__engine_free(p);
				p = q;
			}
		}
		/* The aligned allocation gave the class's piece back first (mk__prof_class_release) and may
		 * have refilled the class, pointing its direct entries at the real span again. */
#if !MK_PROF_COUNT
		if (st && is_direct(cls) && h->direct[mk__classes[cls].direct_lo] != &st->proxy[cls]) {
			reconcile(st, cls);
			install(st, h, cls);
		}
#endif
	} else if (hit) {
		sample_big(p, size);
	}
	return p;
}

void mk__prof_forget(const void *p)
{
	if (!mk__prof_maybe_sampled((uintptr_t)p))
		return;
	mk__prof_lock();
	mk__prof_unrecord((uintptr_t)p);
	mk__prof_unlock();
}

/* Before heap_collect.  A heap whose thread exits goes to the pool with its proxies' blocks (parking):
 * giving them back would walk one of two lists to its end for each class, cold blocks most of them
 * (1,000 thread exits of larsonsrv walked 500,000), and the next thread of the heap pops them as they
 * are.  What was popped is counted now, so that the piece left is a new one of `taken` blocks.  The
 * piece's span stays the current one of its class, pinned (heap_collect asks mk__prof_kept), as it is
 * whenever a piece is out: the blocks count in its `used`, and the pin keeps the next thread's frees of
 * what it pops from emptying and retiring it under the proxy.  At most one span per class stays, until
 * the heap is used again or malloc_trim collects it (parking false: everything back). */
void mk__prof_heap_release(mk_heap *h, bool parking)
{
#if !MK_PROF_COUNT
	prof_heap *st = state_of(h, false);
	if (!st)
		return;
	for (unsigned cls = 0; cls < MK_NCLASSES; cls++) {
		mk_span *px = &st->proxy[cls];
		if (parking && st->from[cls] && px->used < st->taken[cls] && st->from[cls] == h->current[cls] &&
		    h->direct[mk__classes[cls].direct_lo] == px) {
			count_popped(st, cls);
			continue;
		}
		reconcile(st, cls);
		if (h->direct[mk__classes[cls].direct_lo] == px)
			point_direct(h, cls, h->current[cls]);
	}
#else
	(void)h, (void)parking;   /* no proxies in the profiling build */
#endif
}

/* An aligned allocation takes a block of the class from its current span by the slow path's own means
 * (mk__heap_alloc_class), not through the proxy.  With the span's free list cut off into the proxy, that
 * refill would find the span carved to its end with nothing free and park it as full while the proxy
 * still held its blocks; giving them back to the full span afterwards left a free span marked full in
 * the heap's lists, and the lists broke (mk_check, then faults and false "invalid pointer" aborts).  So
 * the piece goes back first; the next malloc of the class cuts a new one.  The profiling build has no
 * proxies: nothing to give back. */
void mk__prof_class_release(mk_heap *h, unsigned cls)
{
#if !MK_PROF_COUNT
	prof_heap *st = state_of(h, false);
	if (st && is_direct(cls))
		reconcile(st, cls);
#else
	(void)h, (void)cls;
#endif
}

bool mk__prof_kept(const mk_heap *h, unsigned cls)
{
	prof_heap *st = state_of((mk_heap *)h, false);
	return st && st->from[cls];
}

bool mk__prof_direct_ok(const mk_heap *h, unsigned d)
{
	prof_heap *st = state_of((mk_heap *)h, false);
	return st && h->direct[d] == &st->proxy[mk__direct_class[d]];
}

void mk__prof_heap_init(void)
{
	memcpy(&mk__prof_heap, &mk__empty_heap, sizeof mk__prof_heap);
	mk__prof_heap.owned = 1;     /* never collected as a parked heap */
}
