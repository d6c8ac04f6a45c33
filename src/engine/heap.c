/* Thread heaps: the allocation slow path, frees from other threads, and a thread's memory at its exit.
 *
 * A heap is used by one thread at a time and takes no lock.  Other threads reach its spans in two ways
 * only, both lock-free pushes: onto a span's xfree list, or (for a span the owner parked as full, marked by
 * MK_XFULL in xfree) onto the heap's xblocks list, so that the owner notices the span has room again.
 * A full span's heap field carries a tag bit, so the owner's own free into it leaves the inlined fast path
 * and the span goes back to the active list.
 *
 * Heaps are never unmapped: a thread's exit parks its heap (with whatever blocks are still out) in a pool
 * and the next new thread adopts it, so late remote frees always find a live heap, and 10,000 threads in a
 * row use as many heaps as ran at once.  A few heaps park with their current spans in place, for the next
 * thread to go on with (see "parked heaps that keep their spans"). */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/stats.h"
#include "engine/zero.h"
#include "os/os.h"
#include "prof/prof.h"

mk_span mk__empty_span;  /* free == NULL: every malloc through it takes the slow path */

#define E (&mk__empty_span)
#define E8 E, E, E, E, E, E, E, E
#define E64 E8, E8, E8, E8, E8, E8, E8, E8
const mk_heap mk__empty_heap = { .direct = { E64, E }, .current = { E64, E8, E8, E8 } };
#undef E

static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static mk_heap *pool;            /* abandoned heaps */
static mk_heap *all_heaps;
static size_t heap_count, pool_count;
/* Parked heaps that keep their spans for the next thread (see heap_abandon): at most PARK_KEEP_HEAPS, each
 * with at most PARK_KEEP_BYTES in the spans it keeps. */
#define PARK_KEEP_HEAPS 4
#define PARK_KEEP_BYTES ((size_t)1 << 20)
/* Those heaps (NULL: a free place) and when the oldest one's spans are due back (UINT64_MAX: none), under
 * heaps_lock; park_due_ms is read without it by refill.  park_places counts the places taken: by those
 * heaps, and by exiting threads that took one before collecting their heap and have not parked it yet. */
static mk_heap *park_kept[PARK_KEEP_HEAPS];
static _Atomic unsigned park_places;
static _Atomic uint64_t park_due_ms = UINT64_MAX;
static mk_heap *spare;           /* heaps carved from the last mapping and not used yet */
static size_t spare_left;
static pthread_key_t exit_key;
static _Atomic int exit_key_ready;
/* Set when thread_exit has run on this thread.  Later TLS destructors may still allocate; a heap taken for
 * them would never be parked if that happened in the last round of destructors, so such a thread parks the
 * heap again after each allocation (slow, and only then). */
static __thread int thread_exited;

void mk__heaps_lock(void) { pthread_mutex_lock(&heaps_lock); }
void mk__heaps_unlock(void) { pthread_mutex_unlock(&heaps_lock); }
static void unfull(mk_heap *h, mk_span *s);
static void park_sweep(bool wait);
static void park_unkeep(mk_heap *h);

void mk__heaps_after_fork_child(void)
{
	/* Other threads' heaps may have been mid-update when the fork happened: they stay owned (their
	 * memory is lost to the child, never corrupted).  Pooled heaps were consistent under the lock. */
	pthread_mutex_init(&heaps_lock, NULL);
	/* A thread of the parent may have claimed the notification of one of our full spans (MK_XFULL) and
	 * not yet handed its block to xblocks: that thread does not exist here, so the span would stay
	 * parked while later remote frees pile up in it.  Every full span goes back to the active list,
	 * where the next refill collects it or parks it again. */
	mk_heap *h = mk__tls_heap;
	if (h != &mk__empty_heap)
		while (h->full.first)
			unfull(h, h->full.first);
	for (h = pool; h; h = h->next_in_pool)   /* the same for the parked heaps a child thread may adopt */
		while (h->full.first)
			unfull(h, h->full.first);
	/* A thread of the parent that had taken a place among the heaps that keep spans, and not parked its
	 * heap yet, does not exist here: the places taken are the heaps' that hold them. */
	unsigned places = 0;
	for (unsigned i = 0; i < PARK_KEEP_HEAPS; i++)
		places += park_kept[i] != NULL;
	atomic_store_explicit(&park_places, places, memory_order_relaxed);
}

static mk_heap *owner_of(const mk_span *s) { return (mk_heap *)((uintptr_t)MK_LOAD(s->heap) & ~MK_FULL_TAG); }

/* ---- span lists ---- */

static void list_push(mk_span_list *l, mk_span *s, bool front)
{
	if (front) {
		s->prev = NULL;
		s->next = l->first;
		if (l->first)
			l->first->prev = s;
		else
			l->last = s;
		l->first = s;
	} else {
		s->next = NULL;
		s->prev = l->last;
		if (l->last)
			l->last->next = s;
		else
			l->first = s;
		l->last = s;
	}
}

static void list_remove(mk_span_list *l, mk_span *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->last = s->prev;
	s->next = s->prev = NULL;
}

static mk_span_list *list_of(mk_heap *h, mk_span *s)
{
	return s->state == MK_SPAN_FULL ? &h->full : &h->active[s->cls];
}

static void retire(mk_heap *h, mk_span *s);

/* Makes s the span that malloc of its class takes from, for the inlined path too.  The current span is
 * pinned (one extra count in `used`); the one it replaces is unpinned, and retired if that empties it. */
static void set_current(mk_heap *h, unsigned cls, mk_span *s)
{
	mk_span *old = h->current[cls];
	if (old == s)
		return;
	if (s != &mk__empty_span)
		s->used++;
	h->current[cls] = s;
	for (unsigned d = mk__classes[cls].direct_lo; d < mk__classes[cls].direct_hi; d++)
		h->direct[d] = s;
	if (old != &mk__empty_span && --old->used == 0)
		retire(h, old);
}

/* ---- heaps ---- */

static mk_heap *heap_new_locked(void)
{
	if (spare_left == 0) {
		size_t chunk = 64 * 1024;
		spare = mk__os_map(chunk);
		if (!spare)
			return NULL;
		spare_left = chunk / sizeof(mk_heap);
	}
	mk_heap *h = spare++;
	spare_left--;
	memcpy(h, &mk__empty_heap, sizeof *h);
	h->next_all = all_heaps;
	all_heaps = h;
	heap_count++;
	mk__stat_heap(0);
	return h;
}

static void thread_exit(void *arg);

/* The calling thread's heap, set up on its first call. */
static mk_heap *heap_get(void)
{
	mk_heap *h = mk__tls_heap;
	if (mk_likely(h != &mk__empty_heap))
		return h;
	mk__init();
	pthread_mutex_lock(&heaps_lock);
	h = pool;
	if (h) {
		pool = h->next_in_pool;
		pool_count--;
		if (h->parked_keep)   /* its spans are this thread's now */
			park_unkeep(h);
		mk__stat_heap(1);
	} else {
		h = heap_new_locked();
	}
	if (h) {
		MK_STORE(h->owned, 1);
		MK_STORE(h->generation, h->generation + 1);
	}
	if (h && !atomic_load(&exit_key_ready)) {
		if (pthread_key_create(&exit_key, thread_exit) == 0)
			atomic_store(&exit_key_ready, 1);
	}
	pthread_mutex_unlock(&heaps_lock);
	if (!h)
		return NULL;
	mk__tls_heap = h;
	if (atomic_load(&exit_key_ready) && !thread_exited)
		pthread_setspecific(exit_key, h); /* may call malloc: the heap is in place already */
	return h;
}

/* ---- freeing into a heap's own spans ---- */

/* Gives an empty span back to its segment.  Never the current span of its class: the pin keeps its count
 * above zero, so a program that allocates and frees one block in a loop keeps its span. */
static void give_back(mk_span *s)
{
	MK_STORE(s->heap, NULL);
	atomic_store_explicit(&s->xfree, 0, memory_order_relaxed);
	mk__span_free(s);
}

static void retire(mk_heap *h, mk_span *s)
{
	list_remove(list_of(h, s), s);
	give_back(s);
}

static void class_mark(mk_heap *h, unsigned cls) { h->classes[cls / 64] |= (uint64_t)1 << (cls % 64); }

/* A full span got a block back: it returns to the active list, behind the current span. */
static void unfull(mk_heap *h, mk_span *s)
{
	list_remove(&h->full, s);
	MK_STORE(s->state, MK_SPAN_ACTIVE);
	MK_STORE(s->heap, h);
	list_push(&h->active[s->cls], s, false);
	class_mark(h, s->cls);
	uintptr_t expect = MK_XFULL;
	atomic_compare_exchange_strong(&s->xfree, &expect, 0);
}

/* ---- empty spans kept for a while ---- */

/* At most KEEP_MAX spans of KEEP_SLICES slices in all (1 MiB) per heap, each for the purge delay at most:
 * past that it goes back to its segment (and from there to the system, by the segments' purge). */
#define KEEP_MAX    (sizeof ((mk_heap *)0)->kept / sizeof ((mk_heap *)0)->kept[0])
#define KEEP_SLICES 16

static void kept_drop(mk_heap *h, unsigned i)
{
	h->kept_slices -= h->kept[i]->slices;
	h->nkept--;
	h->kept[i] = h->kept[h->nkept];
	h->kept_ms[i] = h->kept_ms[h->nkept];
}

/* Gives back the kept spans older than the purge delay (all of them when `all`). */
static void kept_release(mk_heap *h, bool all, uint64_t now)
{
	for (unsigned i = h->nkept; i-- > 0;)
		if (all || now - h->kept_ms[i] >= (uint64_t)mk__opt.purge_delay_ms) {
			mk_span *s = h->kept[i];
			kept_drop(h, i);
			give_back(s);
		}
}

/* The owner's thread emptied s (not the current span of its class: that one is pinned).  s leaves its
 * list but stays the heap's, with its free list as it is, so that the next span its class needs is s
 * again, without the segment lock; or it goes back now, when keeping it would pass the bounds. */
static void span_empty(mk_heap *h, mk_span *s)
{
	if (mk__opt.purge_delay_ms <= 0 || s->slices > KEEP_SLICES / 2) {
		retire(h, s);
		return;
	}
	uint64_t now = mk__now_ms();
	kept_release(h, false, now);
	while (h->nkept == KEEP_MAX || h->kept_slices + s->slices > KEEP_SLICES) {
		unsigned oldest = 0;
		for (unsigned i = 1; i < h->nkept; i++)
			if (h->kept_ms[i] < h->kept_ms[oldest])
				oldest = i;
		mk_span *o = h->kept[oldest];
		kept_drop(h, oldest);
		give_back(o);
	}
	list_remove(list_of(h, s), s);
	h->kept[h->nkept] = s;
	h->kept_ms[h->nkept] = now;
	h->nkept++;
	h->kept_slices += s->slices;
}

/* A kept span of class cls, back on its active list; NULL when there is none. */
static mk_span *kept_take(mk_heap *h, unsigned cls)
{
	for (unsigned i = 0; i < h->nkept; i++)
		if (h->kept[i]->cls == cls) {
			mk_span *s = h->kept[i];
			kept_drop(h, i);
			list_push(&h->active[cls], s, true);
			class_mark(h, cls);
			return s;
		}
	return NULL;
}

static void free_local(mk_heap *h, mk_span *s, mk_block *b)
{
	MK_ASAN_FREE(b, s->block_size);
	b->next = s->free;
	b->cookie = mk__cookie(b);
	s->free = b;
	s->used--;
	if (s->state == MK_SPAN_FULL)
		unfull(h, s);
	if (s->used == 0)
		span_empty(h, s);
}

/* From the inlined free: free() keeps errno, and giving the span back may call the system. */
void mk__span_emptied(mk_span *s)
{
	int saved = errno;
	span_empty(owner_of(s), s);
	errno = saved;
}

/* Moves the blocks other threads freed into s onto its free list (without touching them when the free
 * list is empty, the usual case: they were last in another core's cache). */
static bool collect(mk_span *s)
{
	if ((atomic_load_explicit(&s->xfree, memory_order_relaxed) & MK_XPTR_MASK) == 0)
		return false;
	uintptr_t x = atomic_exchange_explicit(&s->xfree, 0, memory_order_acquire);
	mk_block *first = (mk_block *)(x & MK_XPTR_MASK);
	if (!first)
		return false;
	if (s->free) {
		mk_block *last = first;
		while (last->next)
			last = last->next;
		last->next = s->free;
	}
	s->free = first;
	s->used -= (uint32_t)(x >> MK_XCOUNT_SHIFT);
	return true;
}

static void drain_xblocks(mk_heap *h)
{
	mk_block *b = atomic_exchange_explicit(&h->xblocks, NULL, memory_order_acquire);
	while (b) {
		mk_block *next = b->next;
		free_local(h, mk__span_of(mk__segment_of(b), b), b);
		b = next;
	}
}

/* Parks s as full; false when a remote free arrived meanwhile (then the caller collects it). */
static bool park_full(mk_heap *h, mk_span *s)
{
	uintptr_t expect = 0;
	if (!atomic_compare_exchange_strong(&s->xfree, &expect, MK_XFULL))
		return false;
	list_remove(&h->active[s->cls], s);
	MK_STORE(s->state, MK_SPAN_FULL);
	MK_STORE(s->heap, (mk_heap *)((uintptr_t)h | MK_FULL_TAG));
	list_push(&h->full, s, true);
	return true;
}

static mk_span *span_new(mk_heap *h, unsigned cls)
{
	mk_span *s = mk__span_alloc(mk__classes[cls].span_slices, cls);
	if (!s)
		return NULL;
	MK_STORE(s->heap, h);
	list_push(&h->active[cls], s, true);
	class_mark(h, cls);
	return s;
}

/* Finds a span of class cls with a free block, or makes one.  Freed blocks (local or remote) are reused
 * before untouched memory is carved, and carving comes before mapping a new span, so the heap's resident
 * size follows what the program holds.  Spans with nothing left are parked as full. */
static MK_SLOW void *refill(mk_heap *h, unsigned cls)
{
	MK_STAT_OWN_INC(h->stats.cls[cls].refills);
	if (atomic_load_explicit(&h->xblocks, memory_order_relaxed))
		drain_xblocks(h);
	uint64_t due = atomic_load_explicit(&park_due_ms, memory_order_relaxed);
	if (mk_unlikely(due != UINT64_MAX) && due <= mk__now_ms())   /* (a coarse clock: a few ns) */
		park_sweep(false);
	mk_span *s, *next;
	for (s = h->active[cls].first; s; s = next) {
		next = s->next;
		if (s->free || collect(s))
			goto found;
		if (s->carved == s->capacity && !park_full(h, s) && collect(s))
			goto found;
	}
	for (s = h->active[cls].first; s; s = s->next)
		if (s->carved < s->capacity) {
			mk__span_carve(s);
			goto found;
		}
	if (h->nkept) {
		kept_release(h, false, mk__now_ms());
		if ((s = kept_take(h, cls)) != NULL)
			goto found;
	}
	s = span_new(h, cls);
	if (!s)
		return NULL;
	mk__span_carve(s);
found:
	if (h->active[cls].first != s) {
		list_remove(&h->active[cls], s);
		list_push(&h->active[cls], s, true);
	}
	set_current(h, cls, s);
	return mk__span_pop(s);
}

void *mk__heap_alloc_class(mk_heap *h, unsigned cls)
{
	void *b = mk__span_pop(h->current[cls]);
	return mk_likely(b != NULL) ? b : refill(h, cls);
}

/* For the profiler's proxies (prof/sample.c), which cut pieces of the current span's free list: when
 * that list is shorter than `want` and nothing is left to carve, the heap moves on, as refill does once
 * the list is gone, to one of the first few active spans holding at least `want` free blocks (the old
 * current keeps its own for later).  Without it a span that frees come back to a few at a time would
 * bring the slow path back every few allocations.  Returns the current span. */
#define MOVE_ON_LOOK 4

mk_span *mk__heap_move_on(mk_heap *h, unsigned cls, uint32_t want)
{
	mk_span *cur = h->current[cls];
	if (cur == &mk__empty_span || cur->carved < cur->capacity || cur->carved + 1 - cur->used >= want)
		return cur;
	if (collect(cur) && cur->carved + 1 - cur->used >= want)   /* other threads' frees first */
		return cur;
	unsigned looked = 0;
	for (mk_span *s = h->active[cls].first; s && looked < MOVE_ON_LOOK; s = s->next, looked++)
		if (s != cur && (s->free || collect(s)) && s->carved - s->used >= want) {
			list_remove(&h->active[cls], s);
			list_push(&h->active[cls], s, true);
			set_current(h, cls, s);
			return s;
		}
	return cur;
}

static void heap_abandon(mk_heap *h);

/* After thread_exit (see thread_exited): the heap goes back to the pool at once, with the new block out. */
static MK_SLOW void *park_again(mk_heap *h, void *p)
{
	if (mk__tls_heap == h) {
		int saved = errno;
		mk__tls_heap = (mk_heap *)&mk__empty_heap;
		heap_abandon(h);
		errno = saved;
	}
	return p;
}

static void *alloc_in(mk_heap *h, size_t n)
{
	if (n > MK_MEDIUM_MAX) {
		if (n <= MK_LARGE_MAX)
			return mk__large_alloc(n);
		return n > PTRDIFF_MAX ? NULL : mk__huge_alloc(n, 0, false);
	}
	unsigned cls = n <= MK_DIRECT_MAX ? mk__direct_class[(n + 15) >> 4] : mk__class_of(n);
	return mk__heap_alloc_class(h, cls);
}

void *mk__alloc_slow(size_t n)
{
	if (n == 0) {   /* never the inlined path's: direct[0] is always the empty span */
		void *z = mk__zero_alloc();
		if (z)
			return z;
		/* No zero-size area (its 1 GiB reservation refused: RLIMIT_AS, the map count; or 2^26 of them
		 * live): an ordinary smallest block, as glibc gives, rather than NULL for a request that needs
		 * no memory. */
		n = 1;
	}
	mk_heap *h = heap_get();
	if (mk_unlikely(!h))
		return NULL;
#if MK_PROF_COUNT
	if (mk_unlikely(mk__tls.prof_left < 0) && !mk__prof_on)
		mk__tls.prof_left = INT64_MAX;   /* not profiling: the count never reaches 0 again */
#endif
	void *p = mk_unlikely(mk__prof_on) ? mk__prof_alloc_in(h, n) : alloc_in(h, n);
	return mk_unlikely(thread_exited) ? park_again(h, p) : p;
}

static void *alloc_aligned_in(mk_heap *h, size_t align, size_t n)
{
	if (n <= MK_MEDIUM_MAX && align <= MK_SLICE_SIZE) {
		/* Spans start on 64 KiB boundaries, so a class whose size is a multiple of align aligns every
		 * block: no padding, no interior pointer for free() to accept. */
		unsigned cls = mk__class_of(n ? n : 1);
		while (cls < MK_NCLASSES && mk__classes[cls].size % align != 0)
			cls++;
		if (cls < MK_NCLASSES) {
			if (mk_unlikely(mk__prof_on))
				mk__prof_class_release(h, cls);
			return mk__heap_alloc_class(h, cls);
		}
	}
	if (n <= MK_LARGE_MAX && align <= MK_SLICE_SIZE)  /* spans start on 64 KiB boundaries */
		return mk__large_alloc(n);
	return mk__huge_alloc(n ? n : 1, align, false);
}

void *mk__engine_alloc_aligned(size_t align, size_t n)
{
	mk_heap *h = heap_get();   /* first: it initialises the class table read below */
	if (!h)
		return NULL;
	void *p = alloc_aligned_in(h, align, n);
	if (mk_unlikely(mk__prof_on))
		p = mk__prof_note(p, align);
	return mk_unlikely(thread_exited) ? park_again(h, p) : p;
}

/* ---- frees from other threads ---- */

#define PARKED_COLLECT_AT 32

/* Blocks freed into a parked heap (its thread exited) would wait for a new thread to adopt it.  Once a span
 * of such a heap has gathered PARKED_COLLECT_AT of them, the freeing thread collects the span itself, under
 * the heaps lock that keeps the heap parked meanwhile (a try: never wait on the slow path's lock). */
/* The freeing thread has published its block, so s may be gone: another collector may have taken the block,
 * retired s and unmapped its segment.  Only the heap (never unmapped) is read until the lock shows that
 * the heap's generation is still the one read before publishing: then no thread has owned, parked or
 * collected the heap since, so s, which held the published block, is still its span and still mapped.
 * Every collector changes the generation after collecting (and before unlocking): one that took the
 * block did so after it was published, so after the freer read the generation. */
static MK_SLOW void collect_parked(mk_heap *h, mk_span *s, unsigned long generation)
{
	mk__os_point("remote_free.after_publish");
	if (pthread_mutex_trylock(&heaps_lock) != 0)
		return;
	int saved = errno;   /* free keeps errno, and retiring may call the system */
	if (!MK_LOAD(h->owned) && MK_LOAD(h->generation) == generation) {
		mk__os_point("remote_free.collect_parked");
		if (collect(s) && MK_LOAD(s->state) == MK_SPAN_FULL)
			unfull(h, s);
		if (s->used == 0)
			retire(h, s);
		MK_STORE(h->generation, generation + 1);
	}
	pthread_mutex_unlock(&heaps_lock);
	errno = saved;
}

/* The owner parked s as full: claim the notification, then hand the block to the heap itself.  The block
 * keeps s from being retired, so s->heap stays valid until it is taken.  Another freer may claim it first:
 * then the block goes to s's list after all. */
static MK_SLOW void remote_free_full(mk_span *s, mk_heap *owner, mk_block *b)
{
	uintptr_t old = MK_XFULL;
	if (!atomic_compare_exchange_strong_explicit(&s->xfree, &old, 0, memory_order_acq_rel, memory_order_relaxed)) {
		mk__remote_free(s, b);
		return;
	}
	mk__os_point("remote_free.after_claim");
	mk_block *head = atomic_load_explicit(&owner->xblocks, memory_order_relaxed);
	do
		b->next = head;
	while (!atomic_compare_exchange_weak_explicit(&owner->xblocks, &head, b, memory_order_release,
	                                              memory_order_relaxed));
}

/* The freeing thread's count of remote frees (in its own heap: no shared line). */
MK_INLINE void count_remote_free(void)
{
	mk_heap *me = mk__tls_heap;
	if (mk_likely(me != &mk__empty_heap))
		MK_STAT_OWN_INC(me->stats.remote_frees);
	else
		__atomic_fetch_add(&mk__heapless_stats.remote_frees, 1, __ATOMIC_RELAXED);
}

/* One compare-and-swap onto s's xfree; the rare cases (a span parked as full, a parked heap's span that
 * has gathered enough blocks) are tail calls, so the common one saves no register.  owner: owner_of(s),
 * read while b keeps s from being retired (heaps themselves are never unmapped). */
MK_INLINE void remote_push(mk_span *s, mk_heap *owner, mk_block *b)
{
	unsigned long generation = MK_LOAD(owner->generation);
	count_remote_free();
	MK_ASAN_FREE(b, s->block_size);
	b->cookie = mk__cookie(b);
	uintptr_t old = atomic_load_explicit(&s->xfree, memory_order_relaxed), count;
	do {
		if (mk_unlikely(old == MK_XFULL)) {
			remote_free_full(s, owner, b);
			return;
		}
		b->next = (mk_block *)(old & MK_XPTR_MASK);
		count = (old >> MK_XCOUNT_SHIFT) + 1;
	} while (!atomic_compare_exchange_weak_explicit(&s->xfree, &old, (uintptr_t)b | count << MK_XCOUNT_SHIFT,
	                                                memory_order_release, memory_order_relaxed));
	/* b is published: from here on, s may be gone (see collect_parked). */
	if (mk_unlikely(count >= PARKED_COLLECT_AT) && !MK_LOAD(owner->owned))
		collect_parked(owner, s, generation);
}

void mk__remote_free(mk_span *s, mk_block *b) { remote_push(s, owner_of(s), b); }

/* A large block, freed as mk__free_slow frees it once mk__valid_block has checked it: for a live
 * one-block span those checks are these (an active span, its block's start, no cookie); anything else,
 * and every large free while profiling, goes there, to be reported or forgotten by the profiler. */
static bool free_large(mk_span *s, void *p)
{
	if (s->cls != MK_LARGE_CLS || MK_LOAD(s->state) != MK_SPAN_ACTIVE || (uintptr_t)p != s->start ||
	    ((mk_block *)p)->cookie == mk__cookie(p) || MK_LOAD(s->used) == 0 || mk__prof_on)
		return false;
	int saved = errno;   /* free keeps errno, and the segments may call the system */
	s->zeroed = 0;       /* whatever path hands this run out next, it holds data now */
	mk__large_free(s);
	errno = saved;
	return true;
}

/* From the inlined free, for a pointer of our segments in a span that is not a live span of this
 * thread's heap: a block of another thread's heap goes straight to its span (the inlined free's checks,
 * made here with the non-owner's reads), a large block to free_large, everything else (full spans of
 * this heap, free runs, bad pointers, large blocks free_large refuses) to mk__free_slow.  errno is kept
 * (collect_parked and free_large save it). */
void mk__free_other(mk_span *s, void *p)
{
	mk_heap *h = owner_of(s);
	if (mk_unlikely(h == NULL || h == mk__tls_heap || h == &mk__prof_heap || !mk__is_block_start(s, (uintptr_t)p) ||
	                ((mk_block *)p)->cookie == mk__cookie(p))) {   /* &mk__prof_heap: a sampled block (src/prof) */
		if (h == NULL && free_large(s, p))
			return;
		mk__free_slow(p);
		return;
	}
	remote_push(s, h, p);
}

/* Everything the fast free did not take: NULL, huge blocks, other threads' blocks, full spans, errors. */
void mk__free_slow(void *p)
{
	if (!p)
		return;
	int saved = errno;
	static const mk_bad_words words = { "free(): invalid pointer", "free(): interior pointer",
	                                    "free(): double free of" };
	if (mk_unlikely(mk__zero_owns(p))) {
		mk__zero_free(p, &words);
		errno = saved;
		return;
	}
	if (!mk__is_ours(p)) {
		if (mk_unlikely(mk__prof_on))
			mk__prof_forget(p);
		if (!mk__huge_free(p))
			mk__fatal(mk__huge_was_freed(p) ? "free(): double free of" : "free(): invalid pointer", p);
		errno = saved;
		return;
	}
	mk_span *s = mk__valid_block(p, &words);
	mk_block *b = p;
	if (s->cls == MK_LARGE_CLS) {
		if (mk_unlikely(mk__prof_on))
			mk__prof_forget(p);
		s->zeroed = 0;   /* whatever path hands this run out next, it holds data now */
		mk__large_free(s);
		errno = saved;
		return;
	}
	mk_heap *h = owner_of(s);
	if (mk_unlikely(h == &mk__prof_heap))   /* a sampled block */
		mk__prof_forget(p);
	if (h == mk__tls_heap)
		free_local(h, s, b);
	else
		mk__remote_free(s, b);
	errno = saved;
}

/* ---- thread exit and abandoned heaps ---- */

/* Parked heaps that keep their spans.  Retiring a heap's spans at its thread's exit, for the next thread
 * to make new ones, costs span churn (threadchurn: 17,000 spans made for 1,000 threads) and memory: the
 * new spans come from other runs while the old ones wait, dirty, for the purge delay (that workload's peak
 * RSS was twice glibc's).  So a heap parks with its current spans still current, up to PARK_KEEP_BYTES
 * of them, and at most PARK_KEEP_HEAPS heaps at a time do so; the thread that adopts the heap allocates
 * from them at once.  What a parked heap keeps goes back once it has waited the purge delay (seen at the
 * next thread exit, or by the next refill of any thread), or by malloc_trim; with a purge delay of 0,
 * nothing is kept. */

/* Whether the current span of cls stays current as its heap parks, its free blocks counted in *kept (the
 * memory that keeping it holds back from other threads; its uncarved tail may be resident too, cut from
 * dirty slices, but would stay so as well for the purge delay as a free run; with the profiler on, the
 * blocks a proxy holds count as used).  A span with no free block is not kept: it has nothing to give. */
static bool keep_current(mk_heap *h, unsigned cls, size_t *kept)
{
	mk_span *c = h->current[cls];
	if (c == &mk__empty_span || c->state != MK_SPAN_ACTIVE)
		return false;
	collect(c);   /* so that free + used = carved + pin */
	size_t free_bytes = (size_t)(c->carved + 1 - c->used) * c->block_size;
	if (free_bytes == 0 || *kept + free_bytes > PARK_KEEP_BYTES)
		return false;
	*kept += free_bytes;
	return true;
}

/* Whether the drop-in's profiler points direct entries at proxy spans (src/prof/sample.c).  Then a current
 * span must not stay current in a parked heap outside the profiler's own bookkeeping (mk__prof_kept): the
 * next thread would pop its blocks straight through the direct table, unseen by the byte count, as long
 * as its frees keep the span from running dry (a malloc/free loop: its bytes went unsampled). */
static bool proxies_on(void) { return !MK_PROF_COUNT && mk_unlikely(mk__prof_on); }

/* Takes back what other threads freed and gives every empty span to its segment (the current ones too:
 * the next malloc of the heap's thread picks a span again; but with `keep` the current spans stay, up to
 * keep_current's bound, but not with the drop-in's proxies on: see proxies_on; and a heap parked with the
 * profiler on keeps the current spans its proxies hold pieces of, see mk__prof_heap_release).  Returns
 * whether keep_current kept any. */
static bool heap_collect(mk_heap *h, bool parking, bool keep)
{
	if (mk_unlikely(mk__prof_on))
		mk__prof_heap_release(h, parking);
	drain_xblocks(h);
	size_t kept = 0;   /* bytes of free blocks in the current spans kept */
	bool any = false;
	for (unsigned w = 0; w < sizeof h->classes / sizeof h->classes[0]; w++)
		for (uint64_t bits = h->classes[w]; bits; bits &= bits - 1) {
			unsigned cls = w * 64 + (unsigned)__builtin_ctzll(bits);
			if (keep && !proxies_on() && keep_current(h, cls, &kept))
				any = true;
			else if (!(mk_unlikely(mk__prof_on) && parking && mk__prof_kept(h, cls)))
				set_current(h, cls, &mk__empty_span);
			mk_span *next;
			for (mk_span *s = h->active[cls].first; s; s = next) {
				next = s->next;
				collect(s);
				if (s->used == 0)
					retire(h, s);
			}
			if (!h->active[cls].first)   /* a current span is always on its active list */
				h->classes[w] &= ~((uint64_t)1 << (cls % 64));
		}
	mk_span *next;
	for (mk_span *s = h->full.first; s; s = next) {
		next = s->next;
		if (collect(s) || s->free)
			unfull(h, s);
		if (s->used == 0)
			retire(h, s);
	}
	kept_release(h, true, 0);   /* after: draining xblocks may have kept some */
	return any;
}

/* Under heaps_lock: h keeps its spans no longer (adopted, swept, trimmed), and its place is free. */
static void park_unkeep(mk_heap *h)
{
	for (unsigned i = 0; i < PARK_KEEP_HEAPS; i++)
		if (park_kept[i] == h)
			park_kept[i] = NULL;
	h->parked_keep = false;
	atomic_fetch_sub_explicit(&park_places, 1, memory_order_relaxed);
}

/* Under heaps_lock: the parked heaps that have kept their spans for the purge delay give them back. */
static void park_sweep_locked(uint64_t now)
{
	uint64_t delay = (uint64_t)mk__opt.purge_delay_ms, due = UINT64_MAX;
	for (unsigned i = 0; i < PARK_KEEP_HEAPS; i++) {
		mk_heap *h = park_kept[i];
		if (!h)
			continue;
		if (now >= h->parked_ms + delay) {
			heap_collect(h, false, false);
			MK_STORE(h->generation, h->generation + 1);   /* after: see collect_parked */
			park_unkeep(h);
		} else if (h->parked_ms + delay < due) {
			due = h->parked_ms + delay;
		}
	}
	atomic_store_explicit(&park_due_ms, due, memory_order_relaxed);
}

/* The sweep, taking heaps_lock: from refill when some are due, with a try (never waiting on the slow path;
 * the thread holding the lock will see them due in turn), and from mallopt after it set the delay. */
static MK_SLOW void park_sweep(bool wait)
{
	if (wait)
		pthread_mutex_lock(&heaps_lock);
	else if (pthread_mutex_trylock(&heaps_lock) != 0)
		return;
	int saved = errno;   /* retiring may call the system */
	park_sweep_locked(mk__now_ms());
	pthread_mutex_unlock(&heaps_lock);
	errno = saved;
}

void mk__heaps_sweep_parked(void) { park_sweep(true); }

static void heap_abandon(mk_heap *h)
{
	/* A place among the PARK_KEEP_HEAPS, taken before collecting and given back if nothing was kept. */
	bool keep = atomic_fetch_add_explicit(&park_places, 1, memory_order_relaxed) < PARK_KEEP_HEAPS &&
	            mk__opt.purge_delay_ms > 0;   /* 0: freed memory goes back at once */
	keep = heap_collect(h, true, keep) && keep;
	if (!keep)
		atomic_fetch_sub_explicit(&park_places, 1, memory_order_relaxed);
	uint64_t now = mk__now_ms();
	pthread_mutex_lock(&heaps_lock);
	if (keep) {
		unsigned i = 0;
		while (i < PARK_KEEP_HEAPS && park_kept[i])   /* one is free: the places taken count this heap's */
			i++;
		if (i < PARK_KEEP_HEAPS) {
			park_kept[i] = h;
			if (now + (uint64_t)mk__opt.purge_delay_ms < atomic_load_explicit(&park_due_ms, memory_order_relaxed))
				atomic_store_explicit(&park_due_ms, now + (uint64_t)mk__opt.purge_delay_ms, memory_order_relaxed);
		} else {   /* (never: but a heap kept out of park_kept would never be swept) */
			heap_collect(h, false, false);
			atomic_fetch_sub_explicit(&park_places, 1, memory_order_relaxed);
			keep = false;
		}
	}
	h->parked_keep = keep;
	h->parked_ms = now;
	MK_STORE(h->owned, 0);
	MK_STORE(h->generation, h->generation + 1);
	h->next_in_pool = pool;
	pool = h;
	pool_count++;
	if (atomic_load_explicit(&park_due_ms, memory_order_relaxed) <= now)
		park_sweep_locked(now);
	pthread_mutex_unlock(&heaps_lock);
}

static void thread_exit(void *arg)
{
	mk_heap *h = arg;
	if (h != mk__tls_heap)
		return;
	int saved = errno;
	thread_exited = 1;
	mk__tls_heap = (mk_heap *)&mk__empty_heap;
	heap_abandon(h);
	errno = saved;
}

void mk__heaps_collect_abandoned(void)
{
	pthread_mutex_lock(&heaps_lock);
	for (mk_heap *h = pool; h; h = h->next_in_pool) {
		mk__os_point("collect_abandoned.heap");
		heap_collect(h, false, false);
		MK_STORE(h->generation, h->generation + 1);   /* after: see collect_parked */
		if (h->parked_keep)
			park_unkeep(h);
	}
	atomic_store_explicit(&park_due_ms, UINT64_MAX, memory_order_relaxed);
	pthread_mutex_unlock(&heaps_lock);
	mk_heap *mine = mk__tls_heap;
	if (mine != &mk__empty_heap)
		heap_collect(mine, false, false);
	if (mk_unlikely(mk__prof_on)) {   /* freed sampled blocks wait in mk__prof_heap's spans (src/prof) */
		mk__prof_lock();
		heap_collect(&mk__prof_heap, false, false);
		mk__prof_unlock();
	}
}

size_t mk__heaps_count(size_t *abandoned)
{
	pthread_mutex_lock(&heaps_lock);
	size_t n = heap_count;
	*abandoned = pool_count;
	pthread_mutex_unlock(&heaps_lock);
	return n;
}

void mk__heaps_walk(void (*visit)(const mk_heap *h, void *arg), void *arg)
{
	pthread_mutex_lock(&heaps_lock);
	for (mk_heap *h = all_heaps; h; h = h->next_all)
		visit(h, arg);
	pthread_mutex_unlock(&heaps_lock);
}

#define HEAP_ERROR(...)             \
	do {                            \
		mk__message(__VA_ARGS__);   \
		errors++;                   \
	} while (0)

/* Verifies the calling thread's heap: list membership, and every free list (in the span, block-aligned,
 * acyclic, not longer than the blocks carved). */
int mk__heap_check(mk_heap *h)
{
	int errors = 0;
	if (h == &mk__empty_heap)
		return 0;
	for (unsigned cls = 0; cls <= MK_NCLASSES; cls++) {
		mk_span_list *l = cls < MK_NCLASSES ? &h->active[cls] : &h->full;
		mk_span *prev = NULL;
		for (mk_span *s = l->first; s; prev = s, s = s->next) {
			if (s->prev != prev)
				HEAP_ERROR("memkit: check: span %p has a broken back link\n", (void *)s);
			if (owner_of(s) != h)
				HEAP_ERROR("memkit: check: span %p is listed in heap %p but owned by %p\n", (void *)s,
				           (void *)h, (void *)owner_of(s));
			if (cls < MK_NCLASSES && (s->cls != cls || s->state != MK_SPAN_ACTIVE))
				HEAP_ERROR("memkit: check: span %p in the wrong list (class %u, state %u)\n", (void *)s,
				           s->cls, s->state);
			if (cls == MK_NCLASSES && s->state != MK_SPAN_FULL)
				HEAP_ERROR("memkit: check: span %p in the full list is not full\n", (void *)s);
			uint32_t nfree = 0;
			for (mk_block *b = s->free; b; b = b->next) {
				uintptr_t a = (uintptr_t)b;
				if (a < s->start || a >= s->start + (uintptr_t)s->carved * s->block_size ||
				    (a - s->start) % s->block_size != 0) {
					HEAP_ERROR("memkit: check: span %p has a foreign block %p on its free list\n",
					           (void *)s, (void *)b);
					break;
				}
				if (++nfree > s->carved) {
					HEAP_ERROR("memkit: check: span %p free list is cyclic\n", (void *)s);
					break;
				}
			}
			uint32_t pin = h->current[s->cls] == s;
			if (nfree + s->used != s->carved + pin && atomic_load(&s->xfree) <= MK_XFULL)
				HEAP_ERROR("memkit: check: span %p: %u free + %u used != %u carved + %u pinned\n",
				           (void *)s, nfree, s->used, (unsigned)s->carved, pin);
		}
		if (l->last != prev)
			HEAP_ERROR("memkit: check: heap %p list %u has a wrong tail\n", (void *)h, cls);
	}
	for (unsigned cls = 0; cls < MK_NCLASSES; cls++) {
		mk_span *c = h->current[cls];
		if (c != &mk__empty_span && (owner_of(c) != h || c->cls != cls))
			HEAP_ERROR("memkit: check: heap %p current span of class %u is not its own\n", (void *)h, cls);
		bool marked = h->classes[cls / 64] >> (cls % 64) & 1;
		if ((c != &mk__empty_span || h->active[cls].first) && !marked)
			HEAP_ERROR("memkit: check: heap %p has spans of class %u not marked in use\n", (void *)h, cls);
	}
	uint32_t kept_slices = 0;
	for (unsigned i = 0; i < h->nkept; i++) {
		mk_span *k = h->kept[i];
		kept_slices += k->slices;
		if (owner_of(k) != h || k->used != 0 || k->state != MK_SPAN_ACTIVE || h->current[k->cls] == k)
			HEAP_ERROR("memkit: check: heap %p keeps span %p that is not an empty span of its own\n",
			           (void *)h, (void *)k);
	}
	if (h->nkept > KEEP_MAX || kept_slices != h->kept_slices || kept_slices > KEEP_SLICES)
		HEAP_ERROR("memkit: check: heap %p keeps %u spans of %u slices (counted %u)\n", (void *)h,
		           h->nkept, kept_slices, h->kept_slices);
	if (h->direct[0] != &mk__empty_span)
		HEAP_ERROR("memkit: check: heap %p direct entry 0 is not the empty span\n", (void *)h);
	for (unsigned d = 1; d < MK_DIRECT_COUNT; d++)
		if (h->direct[d] != h->current[mk__direct_class[d]] && !mk__prof_direct_ok(h, d))
			HEAP_ERROR("memkit: check: heap %p direct entry %u disagrees with its class\n", (void *)h, d);
	return errors;
}
