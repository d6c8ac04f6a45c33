/* Large blocks: over MK_MEDIUM_MAX (128 KiB) and up to MK_LARGE_MAX (2 MiB), one block per span.
 *
 * A large span belongs to no heap (its heap field is NULL, so every free of it leaves the inlined path).
 * Freed, it waits in a cache of its thread (up to LCACHE_SLOTS spans and a quarter of the segments'
 * purge budget, at least LCACHE_MIN and at most LCACHE_BYTES bytes, whoever allocated them: with a small
 * heap a bigger cache would leave the segments no budget for the dirty memory other lengths reuse), from which a malloc on that thread takes one back with no lock and no clock read: one
 * of the same number of slices, or failing that one of up to 1/8 more (the waste a size class allows; the
 * block's usable size is then the span's).  A miss leaves the cache as it is and takes a span from the
 * segments; a free that makes the cache hold too much gives its oldest spans back, each stamped with the
 * time it was freed, as are those that waited the purge delay (at the thread's next free), and all of
 * them when the thread exits and when it calls malloc_trim; with no purge delay there is no cache.  The segment's purge delay and budget then decide when the pages go back
 * to the system.  While cached, a span stays a live one-block span with `used` 0 and the cookie its free
 * wrote: a second free of the block is caught as a double free, and the statistics count it as free and
 * unpurged; the segment's purge budget counts the calling thread's cache as dirty memory, so what a
 * thread's cache holds is bounded by the budget when the thread works, by LCACHE_BYTES (4 MiB) when it
 * stops.  The reuse rule of reuse.c holds for the cache too: the block freed last (by any thread) is not
 * what the next large malloc gets; with two spans of a length cached, a loop that frees a block and
 * allocates one of the same length alternates between them. */
#include <pthread.h>

#include "engine/engine.h"
#include "engine/reuse.h"

#define LCACHE_SLOTS 8
#define LCACHE_BYTES (2 * MK_LARGE_MAX)
#define LCACHE_MIN   ((size_t)1 << 20)

/* The span's start and length are copied here: a lookup then reads no descriptor (each its own cache
 * miss, in a heap of many segments). */
typedef struct lslot {
	mk_span *span;
	uint64_t freed_ms;
	uint64_t seq;         /* the order of the frees (the clock's milliseconds do not tell it) */
	uintptr_t start;
	unsigned slices;
} lslot;

/* One thread-local object, so that the library finds it with one offset.  Slots [0, count) are in use,
 * in no order (taking one out moves the last into its place). */
static __thread struct {
	lslot slot[LCACHE_SLOTS];
	unsigned count;
	/* 0: the exit key is not set for this thread yet; 1: it is (the cache may be used); 2: the thread
	 * is exiting, or the key could not be had: no cache. */
	int state;
	size_t bytes;
	uint64_t oldest_ms;   /* at or before the oldest slot's freed_ms: the purge delay's check without a scan */
	uint64_t seq;         /* frees into the cache so far */
} lc;
static pthread_key_t lcache_key;
static pthread_once_t lcache_once = PTHREAD_ONCE_INIT;
static int lcache_key_ok;

static void make_key(void);

size_t mk__large_cached_bytes(void) { return lc.bytes; }

static inline __attribute__((always_inline)) lslot take_slot(unsigned k)
{
	lslot out = lc.slot[k];
	lc.slot[k] = lc.slot[--lc.count];
	lc.bytes -= (size_t)out.slices << MK_SLICE_SHIFT;
	return out;
}

/* The slot freed the longest ago (count > 0). */
static unsigned oldest_slot(void)
{
	unsigned o = 0;
	for (unsigned k = 1; k < lc.count; k++)
		if (lc.slot[k].seq < lc.slot[o].seq)
			o = k;
	return o;
}

void mk__large_flush(void)
{
	while (lc.count) {
		lslot o = take_slot(lc.count - 1);
		mk__span_free_aged(o.span, o.freed_ms);
	}
}

static void thread_exit(void *arg)
{
	(void)arg;
	lc.state = 2;
	mk__large_flush();
}

static void make_key(void) { lcache_key_ok = pthread_key_create(&lcache_key, thread_exit) == 0; }

/* Whether this thread may cache: once per thread, the key that flushes the cache at its exit is set. */
static bool may_cache(void)
{
	/* Not with no purge delay, nor with a purge limit under what the cache may hold (M_TRIM_THRESHOLD):
	 * then freed memory must go back at once, or nearly. */
	bool allowed = mk__opt.purge_delay_ms != 0 && (mk__opt.purge_limit == 0 || mk__opt.purge_limit >= (long)LCACHE_BYTES);
	if (mk_likely(lc.state == 1))
		return allowed;
	if (lc.state == 2)
		return false;
	pthread_once(&lcache_once, make_key);
	lc.state = lcache_key_ok && pthread_setspecific(lcache_key, &lc) == 0 ? 1 : 2;
	return lc.state == 1 && allowed;
}

/* The cached span to serve `slices` from: one of exactly that length, else the shortest of up to `most`;
 * never the block freed last.  -1: none. */
static int cache_find(unsigned slices, unsigned most)
{
	int best = -1;
	unsigned best_len = most + 1;
	uintptr_t last = mk__reuse_last_freed();
	for (int k = (int)lc.count - 1; k >= 0; k--) {
		const lslot *c = &lc.slot[k];
		if (c->slices < slices || c->slices >= best_len || c->start == last)
			continue;
		if (c->slices == slices)
			return k;
		best = k;
		best_len = c->slices;
	}
	return best;
}

void *mk__large_alloc(size_t n)
{
	unsigned slices = (unsigned)((n + MK_SLICE_SIZE - 1) >> MK_SLICE_SHIFT);
	mk_span *s;
	unsigned most = slices + slices / 8;
	int k = cache_find(slices, most);
	if (k >= 0) {
		s = take_slot((unsigned)k).span;
		s->used = 1;
	} else {
		s = mk__reuse_avoid_large(mk__span_alloc(slices, MK_LARGE_CLS), slices);   /* reuse.c */
	}
	if (!s)
		return NULL;
	mk_block *b = (mk_block *)s->start;
	MK_ASAN_LIVE(b, s->block_size);
	b->cookie = 0;   /* the memory may have held a freed small block: it must not look freed */
	return b;
}

/* The cookie stays in the freed block (until it is purged or reused), so a second free of the block is
 * reported as a double free rather than as an unknown pointer. */
void mk__large_free(mk_span *s)
{
	MK_ASAN_FREE((void *)s->start, s->block_size);
	((mk_block *)s->start)->cookie = mk__cookie((void *)s->start);
	mk__reuse_freed_large(s);
	if (!may_cache()) {
		mk__large_flush();   /* what it kept before MEMKIT_M_PURGE_DELAY or M_TRIM_THRESHOLD changed */
		mk__span_free(s);
		return;
	}
	s->used = 0;
	uint64_t now = mk__now_ms();
	/* Room first, oldest out, and out with what waited the purge delay (the segments purge it at once,
	 * by the time it was freed): the span comes in after, so that the segments' budget counts the cache
	 * as it will be.  The budget is looked at only when the cache would pass LCACHE_MIN. */
	uint64_t delay = (uint64_t)mk__opt.purge_delay_ms;
	size_t room = LCACHE_MIN;
	if (lc.bytes + s->block_size > room) {
		room = mk__segments_budget() / 4;
		room = room < LCACHE_MIN ? LCACHE_MIN : room > LCACHE_BYTES ? LCACHE_BYTES : room;
	}
	lslot out[LCACHE_SLOTS];
	unsigned nout = 0;
	if (lc.count && (lc.count == LCACHE_SLOTS || lc.bytes + s->block_size > room || now - lc.oldest_ms >= delay)) {
		for (unsigned o; lc.count; ) {
			o = oldest_slot();
			lc.oldest_ms = lc.slot[o].freed_ms;
			if (lc.count < LCACHE_SLOTS && lc.bytes + s->block_size <= room &&
			    (now < lc.slot[o].freed_ms || now - lc.slot[o].freed_ms < delay))
				break;
			out[nout++] = take_slot(o);
		}
	}
	if (!lc.count)
		lc.oldest_ms = now;
	lc.slot[lc.count++] = (lslot){ s, now, ++lc.seq, s->start, s->slices };
	lc.bytes += s->block_size;
	for (unsigned j = 0; j < nout; j++)
		mk__span_free_aged(out[j].span, out[j].freed_ms);
	if (!nout)
		mk__segments_maybe_purge(now);   /* the segments' purge round still comes after the delay */
}
