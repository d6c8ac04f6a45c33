/* The engine's backend functions besides the inlined malloc and free (see src/override/backend.h). */
#include <string.h>

#include "engine/engine.h"
#include "engine/zero.h"
#include "prof/prof.h"

/* A free run's memory may be poisoned for AddressSanitizer (what blocks it held): reading a word of it to
 * tell what a bad pointer was is the allocator's business. */
static MK_NO_ASAN uintptr_t peek_cookie(const void *p) { return ((const mk_block *)p)->cookie; }

mk_span *mk__valid_block(const void *p, const mk_bad_words *words)
{
	mk_segment *seg = mk__segment_of(p);
	mk_span *s = mk__span_of(seg, p);
	uint8_t state = MK_LOAD(s->state);
	if (state != MK_SPAN_ACTIVE && state != MK_SPAN_FULL) {
		/* A large block freed a moment ago: its run is free, but until it is purged or reused its first
		 * slice still holds the cookie that its free wrote (a purged page reads 0, never a cookie). */
		bool freed_large = state == MK_SPAN_FREE && ((uintptr_t)p & (MK_SLICE_SIZE - 1)) == 0 &&
		                   peek_cookie(p) == mk__cookie(p);
		mk__fatal(freed_large ? words->freed : words->invalid, p);
	}
	uint64_t index = mk__block_index(s, (uintptr_t)p);
	if (index >= MK_LOAD(s->carved))   /* a block boundary never handed out (not carved, or the tail slack), or none */
		mk__fatal(s->cls != MK_LARGE_CLS && index <= s->capacity ? words->invalid : words->interior, p);
	/* A large span with no block out waits in its thread's cache (large.c): its block was freed, even if
	 * a use after free wrote over the cookie (accepted, it would go into a cache twice). */
	if (((const mk_block *)p)->cookie == mk__cookie(p) || (s->cls == MK_LARGE_CLS && MK_LOAD(s->used) == 0))
		mk__fatal(words->freed, p);
	return s;
}

static const mk_bad_words usable_words = { "malloc_usable_size(): invalid pointer",
                                           "malloc_usable_size(): interior pointer",
                                           "malloc_usable_size(): use after free of" };
static const mk_bad_words realloc_words = { "realloc(): invalid pointer", "realloc(): interior pointer",
                                            "realloc(): use after free of" };

void *mk__engine_alloc_zero(size_t n)
{
	if (n > MK_LARGE_MAX) {
		if (n > PTRDIFF_MAX)
			return NULL;
		mk__init();   /* huge blocks need no thread heap, only the options */
		void *p = mk__huge_alloc(n, 0, true);
		return mk_unlikely(mk__prof_on) ? mk__prof_note(p, 0) : p;
	}
	void *p = mk__engine_alloc(n);
	if (!p)
		return NULL;
	if (n > MK_MEDIUM_MAX) {
		/* A large block: a span of its own.  Taken from slices that were purged or never used, it reads
		 * zero already (its cookie word was just cleared; the first word was never written): clearing
		 * it would only fault its pages in. */
		mk_span *s = mk__span_of(mk__segment_of(p), p);
		if (s->zeroed) {
			s->zeroed = 0;
			return p;
		}
	}
	memset(p, 0, n);
	return p;
}

size_t mk__engine_usable_size(const void *p)
{
	if (mk__is_ours(p))
		return mk__valid_block(p, &usable_words)->block_size;
	if (mk__zero_owns(p)) {
		mk__zero_check(p, &usable_words);
		return 0;
	}
	size_t n = mk__huge_usable(p);
	if (!n)
		mk__fatal("malloc_usable_size(): invalid pointer", p);
	return n;
}

void *mk__realloc_slow(void *p, size_t n)
{
	size_t old;
	if (mk__zero_owns(p)) {   /* a zero-size block: nothing to copy */
		mk__zero_check(p, &realloc_words);
		void *q = mk__engine_alloc(n);
		if (q)
			mk__zero_free(p, &realloc_words);
		return q;
	}
	if (mk__is_ours(p)) {
		old = mk__valid_block(p, &realloc_words)->block_size;
		if (n <= old && n >= old / 2)   /* fits, without holding on to more than twice the need */
			return p;
	} else {
		old = mk__huge_usable(p);
		if (!old)
			mk__fatal(mk__huge_was_freed(p) ? "realloc(): double free of" : "realloc(): invalid pointer", p);
		if (n > MK_LARGE_MAX) {
			if (mk_unlikely(mk__prof_on)) {   /* profiled as a free and a new allocation */
				mk__prof_forget(p);
				return mk__prof_note(mk__huge_realloc(p, n), 0);
			}
			return mk__huge_realloc(p, n);
		}
	}
	/* A block that outgrows its size by realloc usually goes on growing (string builders, vectors): moving
	 * it to half again its old size saves copies and spares the size classes in between. */
	size_t want = n;
	if (n > old && n < old + old / 2 && old + old / 2 <= MK_LARGE_MAX)
		want = old + old / 2;
	void *q = mk__engine_alloc(want);
	if (!q)
		return NULL;
	memcpy(q, p, n < old ? n : old);
	mk__engine_free(p);
	return q;
}

int mk__engine_trim(size_t pad)
{
	(void)pad;
	size_t before_mapped, before_used, before_dirty, before_n, after_mapped, after_dirty;
	size_t hn, hb, before_cached, after_cached;
	mk__segments_info(&before_mapped, &before_used, &before_dirty, &before_n);
	mk__huge_info(&hn, &hb, &before_cached);
	mk__heaps_collect_abandoned();
	mk__segments_purge(true);
	mk__huge_purge(true);
	mk__segments_info(&after_mapped, &before_used, &after_dirty, &before_n);
	mk__huge_info(&hn, &hb, &after_cached);
	return after_mapped < before_mapped || after_dirty < before_dirty || after_cached < before_cached;
}

void mk__engine_info(struct mallinfo2 *mi)
{
	size_t mapped, used, dirty, nseg, hn, hbytes, hcached;
	mk__segments_info(&mapped, &used, &dirty, &nseg);
	mk__huge_info(&hn, &hbytes, &hcached);
	mi->arena = mapped;
	mi->ordblks = nseg;
	mi->hblks = hn;
	mi->hblkhd = hbytes;            /* as glibc: mapped blocks count here, not in uordblks */
	mi->uordblks = used;
	mi->fordblks = mapped - used;
	mi->keepcost = dirty + hcached;
}

int mk__engine_check(void)
{
	int errors = 0;
	mk__segments_check(&errors);
	errors += mk__heap_check(mk__tls_heap);
	errors += mk__huge_check();
	return errors;
}
