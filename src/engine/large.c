/* Large blocks: over MK_MEDIUM_MAX (128 KiB) and up to MK_LARGE_MAX (2 MiB), one block per span.
 *
 * A large span belongs to no heap (its heap field is NULL, so every free of it leaves the inlined path).
 * Freed, it waits in a cache of its thread (LCACHE_SLOTS spans, whoever allocated them), from which a
 * malloc of the same number of slices on that thread takes it back with no lock and no clock read; a
 * malloc of another length gives the whole cache back to the segments first (where any length can reuse
 * its pages), a free into a full cache gives the cache's oldest span back, each stamped with the time it
 * was freed, as are the others when the thread exits and when it calls malloc_trim; with no purge delay
 * there is no cache.  The segment's purge delay and budget then decide when the pages go back
 * to the system.  While cached, a span stays a live one-block span with `used` 0 and the cookie its free
 * wrote: a second free of the block is caught as a double free, and the statistics count it as free and
 * unpurged; the segment's purge budget counts the calling thread's cache as dirty memory, so what a
 * thread's cache holds is bounded by the budget when the thread works, by LCACHE_SLOTS spans (at most
 * 4 MiB) when it stops.  The reuse rule of reuse.c holds for the cache too: the block freed last (by any
 * thread) is not what the next large malloc gets; with two spans cached, a loop that frees a block and
 * allocates one of the same length alternates between them. */
#include <pthread.h>

#include "engine/engine.h"
#include "engine/reuse.h"

#define LCACHE_SLOTS 2

typedef struct lslot {
	mk_span *span;
	uint64_t freed_ms;
} lslot;

/* Slot 0 is the older. */
static __thread lslot lcache[LCACHE_SLOTS];
static __thread size_t lcache_bytes;
/* 0: the exit key is not set for this thread yet; 1: it is (the cache may be used); 2: the thread is
 * exiting, or the key could not be had: no cache. */
static __thread int lcache_state;
static pthread_key_t lcache_key;
static pthread_once_t lcache_once = PTHREAD_ONCE_INIT;
static int lcache_key_ok;

static void make_key(void);

size_t mk__large_cached_bytes(void) { return lcache_bytes; }

void mk__large_flush(void)
{
	for (int k = 0; k < LCACHE_SLOTS; k++)
		if (lcache[k].span) {
			mk_span *s = lcache[k].span;
			lcache[k].span = NULL;
			lcache_bytes -= s->block_size;
			mk__span_free_aged(s, lcache[k].freed_ms);
		}
}

static void thread_exit(void *arg)
{
	(void)arg;
	lcache_state = 2;
	mk__large_flush();
}

static void make_key(void) { lcache_key_ok = pthread_key_create(&lcache_key, thread_exit) == 0; }

/* Whether this thread may cache: once per thread, the key that flushes the cache at its exit is set. */
static bool may_cache(void)
{
	/* Not with no purge delay, nor with a purge limit under what the cache may hold (M_TRIM_THRESHOLD):
	 * then freed memory must go back at once, or nearly. */
	bool allowed = mk__opt.purge_delay_ms != 0 &&
	               (mk__opt.purge_limit == 0 || mk__opt.purge_limit >= (long)(LCACHE_SLOTS * MK_LARGE_MAX));
	if (mk_likely(lcache_state == 1))
		return allowed;
	if (lcache_state == 2)
		return false;
	pthread_once(&lcache_once, make_key);
	lcache_state = lcache_key_ok && pthread_setspecific(lcache_key, lcache) == 0 ? 1 : 2;
	return lcache_state == 1 && allowed;
}

void *mk__large_alloc(size_t n)
{
	unsigned slices = (unsigned)((n + MK_SLICE_SIZE - 1) >> MK_SLICE_SHIFT);
	mk_span *s = NULL;
	bool kept = false;   /* one of this length is cached, but it is the block freed last */
	for (int k = LCACHE_SLOTS - 1; k >= 0; k--) {   /* the newest first: the likeliest still in the caches */
		if (!lcache[k].span || lcache[k].span->slices != slices)
			continue;
		if (mk__reuse_is_last_freed(lcache[k].span->start)) {
			kept = true;
			continue;
		}
		s = lcache[k].span;
		for (int j = k; j + 1 < LCACHE_SLOTS; j++)
			lcache[j] = lcache[j + 1];
		lcache[LCACHE_SLOTS - 1].span = NULL;
		lcache_bytes -= s->block_size;
		s->used = 1;
		break;
	}
	if (!s) {
		/* A miss gives the cache back first: another length could not take its spans, but the
		 * segments can, resident pages included (the same locking as with no cache at all).  Not when
		 * it holds this length: the next malloc of it may take that block, and the one allocated now
		 * joins it, so a loop that frees and allocates alternates between two cached blocks. */
		if (!kept)
			mk__large_flush();
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
	lslot out = { NULL, 0 };
	if (lcache[LCACHE_SLOTS - 1].span) {   /* full: the oldest goes back */
		out = lcache[0];
		for (int j = 0; j + 1 < LCACHE_SLOTS; j++)
			lcache[j] = lcache[j + 1];
		lcache[LCACHE_SLOTS - 1].span = NULL;
		lcache_bytes -= out.span->block_size;
	}
	int k = 0;
	while (lcache[k].span)
		k++;
	s->used = 0;
	uint64_t now = mk__now_ms();
	lcache[k] = (lslot){ s, now };
	lcache_bytes += s->block_size;
	if (out.span)   /* after s is in: the segment's budget counts the cache as it is now */
		mk__span_free_aged(out.span, out.freed_ms);
	else
		mk__segments_maybe_purge(now);   /* the segments' purge round still comes after the delay */
}
