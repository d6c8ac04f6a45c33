/* Unit tests of segment.c's indexes (src/engine/runs.h): the bins of free runs by length and the queue of
 * dirty slices by age, first on an index of their own over segment headers mapped for the test, then in
 * the engine, where mk_check() must find a corrupted index, and where a span goes after a free; and the
 * per-thread cache of large blocks. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memkit.h"
#include "engine/engine.h"
#include "engine/runs.h"
#include "os/os.h"
#include "../common/test.h"

#define KiB ((size_t)1 << 10)

/* Segment headers for an index of the test's own: 4 MiB-aligned mappings (only their headers are touched). */
static mk_segment *fake_segment(void)
{
	mk_segment *seg = mk__os_map_aligned(MK_SEG_SIZE, MK_SEG_SIZE);
	if (seg)
		memset(seg, 0, sizeof *seg);
	return seg;
}

static void test_bins_best_fit_and_bitmap(void)
{
	mk_runs x = { 0 };
	mk_segment *a = fake_segment(), *b = fake_segment();
	REQUIRE(a && b);
	unsigned at = 0;
	CHECK(mk__bin_find(&x, 1, &at) == 0);          /* nothing free */
	mk__bin_insert(&x, a, 1, 10);
	mk__bin_insert(&x, a, 20, 3);
	mk__bin_insert(&x, b, 5, 40);
	CHECK(x.bin_mask == ((1ull << 10) | (1ull << 3) | (1ull << 40)));
	CHECK(mk__bin_find(&x, 2, &at) == mk__sref(a, 20) && at == 20);   /* shortest that fits, its start */
	CHECK(mk__bin_find(&x, 3, &at) == mk__sref(a, 20) && at == 20);
	CHECK(mk__bin_find(&x, 4, &at) == mk__sref(a, 1) && at == 1);
	CHECK(mk__bin_find(&x, 11, &at) == mk__sref(b, 5) && at == 5);
	CHECK(mk__bin_find(&x, 41, &at) == 0);
	mk__bin_remove(&x, a, 20, 3);
	CHECK(x.bin_mask == ((1ull << 10) | (1ull << 40)) && x.bin[3] == 0);
	CHECK(mk__bin_find(&x, 2, &at) == mk__sref(a, 1));
	/* Same length: of the runs with a dirty slice, the last one inserted comes first, and a run with none
	 * goes behind them all; removing from the middle keeps the rest linked. */
	b->dirty_mask = mk__slice_bits(50, 1);
	a->dirty_mask = mk__slice_bits(40, 1);
	mk__bin_insert(&x, b, 50, 10);
	mk__bin_insert(&x, a, 40, 10);
	mk__bin_insert(&x, a, 25, 10);   /* clean */
	CHECK(x.bin[10] == mk__sref(a, 40) && x.bin_last[10] == mk__sref(a, 25));
	CHECK(mk__bin_find(&x, 10, &at) == mk__sref(a, 40));
	mk__bin_remove(&x, b, 50, 10);
	CHECK(x.bin[10] == mk__sref(a, 40) && a->run_link[40].next == mk__sref(a, 1) && a->run_link[1].prev == mk__sref(a, 40));
	mk__bin_remove(&x, a, 25, 10);
	mk__bin_remove(&x, a, 40, 10);
	mk__bin_remove(&x, a, 1, 10);
	a->dirty_mask = b->dirty_mask = 0;
	mk__bin_remove(&x, b, 5, 40);
	CHECK(x.bin_mask == 0);
	mk__os_unmap(a, MK_SEG_SIZE);
	mk__os_unmap(b, MK_SEG_SIZE);
}

static void test_bins_prefer_resident_runs(void)
{
	mk_runs x = { 0 };
	mk_segment *a = fake_segment();
	REQUIRE(a);
	unsigned at = 0;
	mk__bin_insert(&x, a, 1, 16);    /* A: the best fit for 16 */
	mk__bin_insert(&x, a, 20, 18);   /* B: 16 + 16/8 slices, within the 1/8 */
	mk__bin_insert(&x, a, 40, 19);   /* C: beyond it */
	a->dirty_mask = mk__slice_bits(22, 16) | mk__slice_bits(40, 16);
	CHECK(mk__bin_find(&x, 16, &at) == mk__sref(a, 20) && at == 22);   /* a dirty end within 1/8 beats the best fit */
	a->dirty_mask = mk__slice_bits(40, 16);
	CHECK(mk__bin_find(&x, 16, &at) == mk__sref(a, 1) && at == 1);     /* one beyond it does not */
	a->dirty_mask = 0;
	CHECK(mk__bin_find(&x, 16, &at) == mk__sref(a, 1) && at == 1);
	/* 17 slices (up to 19 looked at): no run has 17 dirty at an end, the cut covering the most wins, the
	 * shorter run on a tie. */
	a->dirty_mask = mk__slice_bits(21, 3) | mk__slice_bits(40, 5);
	CHECK(mk__bin_find(&x, 17, &at) == mk__sref(a, 40) && at == 40);   /* 5 dirty beat 3 */
	a->dirty_mask = mk__slice_bits(21, 3) | mk__slice_bits(56, 3);
	CHECK(mk__bin_find(&x, 17, &at) == mk__sref(a, 20) && at == 20);   /* a tie: B, at its start */
	a->dirty_mask = mk__slice_bits(20, 3);
	CHECK(mk__bin_find(&x, 17, &at) == mk__sref(a, 20) && at == 20);   /* its start covers more than its end */
	a->dirty_mask = mk__slice_bits(36, 2);
	CHECK(mk__bin_find(&x, 17, &at) == mk__sref(a, 20) && at == 21);   /* its end does */
	/* The window is the request's 1/8, not the first bin's: with runs of 17 (clean) and 19 (dirty), 16
	 * slices come from the 17 (19 > 16 + 2). */
	mk_runs z = { 0 };
	mk__bin_insert(&z, a, 1, 17);
	mk__bin_insert(&z, a, 20, 19);
	a->dirty_mask = mk__slice_bits(20, 19);
	CHECK(mk__bin_find(&z, 16, &at) == mk__sref(a, 1) && at == 1);
	CHECK(mk__bin_find(&z, 17, &at) == mk__sref(a, 20) && at == 20);   /* 19 <= 17 + 2 */
	/* Short requests (n / 8 = 0): the best fit alone, however resident a longer run is. */
	mk_runs y = { 0 };
	mk__bin_insert(&y, a, 1, 5);
	mk__bin_insert(&y, a, 10, 6);
	a->dirty_mask = mk__slice_bits(10, 6);
	CHECK(mk__bin_find(&y, 4, &at) == mk__sref(a, 1) && at == 1);
	CHECK(mk__bin_find(&y, 5, &at) == mk__sref(a, 1) && at == 1);
	CHECK(mk__bin_find(&y, 6, &at) == mk__sref(a, 10) && at == 10);
	a->dirty_mask = mk__slice_bits(2, 4);   /* and of the best fit, the resident end */
	CHECK(mk__bin_find(&y, 4, &at) == mk__sref(a, 1) && at == 2);
	mk__os_unmap(a, MK_SEG_SIZE);
}

static void test_dirty_queue_order(void)
{
	mk_runs x = { 0 };
	mk_segment *a = fake_segment(), *b = fake_segment();
	REQUIRE(a && b);
	mk__dirty_add(&x, a, mk__slice_bits(3, 2), 100);   /* a3 a4 */
	mk__dirty_add(&x, b, mk__slice_bits(7, 1), 105);   /* b7 */
	mk__dirty_add(&x, a, mk__slice_bits(9, 2), 110);   /* a9 a10 */
	CHECK(x.ndirty == 5 && a->dirty_mask == (mk__slice_bits(3, 2) | mk__slice_bits(9, 2)) && b->dirty_mask == 1u << 7);
	mk_sref want[] = { mk__sref(a, 3), mk__sref(a, 4), mk__sref(b, 7), mk__sref(a, 9), mk__sref(a, 10) };
	uint64_t since[] = { 100, 100, 105, 110, 110 };
	mk_sref r = x.dirty_first;
	for (int i = 0; i < 5; i++, r = mk__dirty_next(r)) {
		CHECK(r == want[i]);
		if (r != want[i])
			return;
		CHECK(mk__dirty_since(r) == since[i]);
	}
	CHECK(r == 0 && x.dirty_last == mk__sref(a, 10));
	/* Clearing: only the slices that are dirty count, the rest stay linked in order. */
	CHECK(mk__dirty_clear(&x, a, mk__slice_bits(2, 3)) == 2);   /* a2 was never dirty */
	CHECK(x.ndirty == 3 && x.dirty_first == mk__sref(b, 7) && a->dirty_link[9].prev == mk__sref(b, 7));
	CHECK(mk__dirty_clear(&x, a, mk__slice_bits(10, 1)) == 1 && x.dirty_last == mk__sref(a, 9));
	CHECK(mk__dirty_clear(&x, b, ~(uint64_t)1) == 1 && mk__dirty_clear(&x, a, ~(uint64_t)1) == 1);
	CHECK(x.ndirty == 0 && x.dirty_first == 0 && x.dirty_last == 0 && a->dirty_mask == 0 && b->dirty_mask == 0);
	mk__os_unmap(a, MK_SEG_SIZE);
	mk__os_unmap(b, MK_SEG_SIZE);
}

/* In the engine: after random large-block traffic every index is consistent (mk_check), and a corrupted
 * bin link or an out-of-order dirty slice is found. */
static void test_check_finds_broken_indexes(void)
{
	enum { N = 200 };
	static void *p[N];
	unsigned seed = 7;
	for (int step = 0; step < 4000; step++) {
		int k = (int)(rand_r(&seed) % N);
		mk_free(p[k]);
		p[k] = mk_malloc(130 * KiB + (size_t)(rand_r(&seed) % (1900 * KiB)));
		REQUIRE(p[k]);
		if (step % 500 == 0)
			CHECK(mk_check() == 0);
	}
	CHECK(mk_check() == 0);
	/* Two large blocks with a live one between them, freed and past the thread's cache: two free runs. */
	char *a = mk_malloc(300 * KiB), *keep = mk_malloc(300 * KiB), *b = mk_malloc(300 * KiB);
	REQUIRE(a && keep && b);
	mk_free(a);
	mk_malloc_trim(0);          /* a's run: free, clean, in its bin */
	mk_free(b);
	mk__large_flush();          /* b out of its thread's cache: its run is dirty */
	CHECK(mk_check() == 0);
	mk_segment *seg = mk__segment_of(a);
	unsigned i = 1;   /* a free run of a's segment (there is a's, at least), by the walk mk_check makes */
	while (i < MK_SLICES && MK_LOAD(seg->spans[i].state) != MK_SPAN_FREE)
		i += seg->spans[i].slices;
	REQUIRE(i < MK_SLICES);
	mk_slice_link saved = seg->run_link[i];
	seg->run_link[i].prev = mk__sref(seg, i);   /* a run that names itself as its predecessor */
	CHECK(mk_check() > 0);
	seg->run_link[i] = saved;
	CHECK(mk_check() == 0);
	mk_segment *bseg = mk__segment_of(b);
	unsigned bi = (unsigned)(((uintptr_t)b - (uintptr_t)bseg) >> MK_SLICE_SHIFT);
	REQUIRE((bseg->dirty_mask >> bi) & 1);
	uint64_t when = bseg->dirty_since_ms[bi];
	bool has_next = bseg->dirty_link[bi].next != 0, has_prev = bseg->dirty_link[bi].prev != 0;
	REQUIRE(has_next || has_prev);
	bseg->dirty_since_ms[bi] = has_next ? UINT64_MAX : 0;   /* newer than the next one, or older than the last */
	CHECK(mk_check() > 0);
	bseg->dirty_since_ms[bi] = when;
	CHECK(mk_check() == 0);
	mk_free(keep);
	for (int k = 0; k < N; k++)
		mk_free(p[k]);
	CHECK(mk_check() == 0);
}

/* Freed large blocks come back from their thread's cache, but never the one freed last (reuse.c's rule):
 * a thread that frees two blocks of one length gets the older back first; a miss keeps the cache; the
 * cache's slack (1/8 more slices) and its bound in bytes. */
static void test_large_cache_reuses(void)
{
	void *a = mk_malloc(256 * KiB), *b = mk_malloc(256 * KiB);
	REQUIRE(a && b);
	mk_free(a);
	mk_free(b);
	void *q = mk_malloc(256 * KiB);
	CHECK(q == a);             /* from the cache, and not b, freed last */
	memset(q, 1, 256 * KiB);
	mk_free(q);
	void *r = mk_malloc(256 * KiB);
	CHECK(r == b);             /* a was freed last now */
	mk_free(r);
	size_t cached = mk__large_cached_bytes();
	void *t = mk_malloc(600 * KiB);   /* another length: from the segments, the cache kept as it is */
	CHECK(t != NULL && cached >= 512 * KiB && mk__large_cached_bytes() == cached);
	mk_free(t);
	CHECK(mk_check() == 0);
	/* A cached span of up to 1/8 more slices serves a request: 9 slices for 8, usable as 9. */
	void *p = mk_malloc(576 * KiB), *other = mk_malloc(300 * KiB);
	REQUIRE(p && other);
	mk_free(p);
	mk_free(other);   /* freed last: p may come back now */
	void *q8 = mk_malloc(512 * KiB);
	CHECK(q8 == p && mk_malloc_usable_size(q8) >= 576 * KiB);
	mk_free(q8);
	/* The cache holds at most 4 MiB: six blocks of 1 MiB freed leave 4 cached, the oldest two in their
	 * segments. */
	void *m[6];
	for (int k = 0; k < 6; k++)
		REQUIRE((m[k] = mk_malloc(1024 * KiB)) != NULL);
	for (int k = 0; k < 6; k++)
		mk_free(m[k]);
	CHECK(mk__large_cached_bytes() <= 4096 * KiB);
	CHECK(MK_LOAD(mk__span_of(mk__segment_of(m[0]), m[0])->state) == MK_SPAN_FREE);
	CHECK(MK_LOAD(mk__span_of(mk__segment_of(m[5]), m[5])->state) != MK_SPAN_FREE);   /* cached: live */
	mk_malloc_trim(0);
	CHECK(mk__large_cached_bytes() == 0 && mk_check() == 0);
	/* The oldest go first, also among blocks freed within one millisecond: of 12 blocks of 192 KiB (at
	 * most 8 stay cached), the first 4 are back in their segments, the last is cached. */
	void *x[12];
	for (int k = 0; k < 12; k++)
		REQUIRE((x[k] = mk_malloc(130 * KiB)) != NULL);
	for (int k = 0; k < 12; k++)
		mk_free(x[k]);
	for (int k = 0; k < 4; k++)
		CHECK(MK_LOAD(mk__span_of(mk__segment_of(x[k]), x[k])->state) == MK_SPAN_FREE);
	CHECK(MK_LOAD(mk__span_of(mk__segment_of(x[11]), x[11])->state) != MK_SPAN_FREE);
	mk_malloc_trim(0);
}

/* A span that fits where the span freed last lay goes exactly there (its first pages are the resident
 * ones), even where the bins hold a better fit that is resident too (a's run, freed before): spans of a
 * multi-slice class, taken and given back as a heap does. */
static void test_next_span_where_the_last_was_freed(void)
{
	mk_free(mk_malloc(1));   /* the class table */
	unsigned cls = mk__class_of(100000);
	mk_span *keep = mk__span_alloc(10, cls), *a = mk__span_alloc(5, cls), *g = mk__span_alloc(1, cls);
	mk_span *s = mk__span_alloc(10, cls), *g2 = mk__span_alloc(1, cls);
	REQUIRE(keep && a && g && s && g2);
	uintptr_t start = s->start, a_start = a->start;
	mk__span_free(a);
	mk__span_free(s);
	mk_span *t = mk__span_alloc(5, cls);
	REQUIRE(t);
	CHECK(t->start == start);
	if (t->start != start)
		fprintf(stderr, "  span at %#lx, the one freed last at %#lx (a's at %#lx)\n", (unsigned long)t->start,
		        (unsigned long)start, (unsigned long)a_start);
	mk__span_free(t);
	mk__span_free(g2);
	mk__span_free(g);
	mk__span_free(keep);
	CHECK(mk_check() == 0);
}

static void *cache_and_exit(void *arg)
{
	void **out = arg;
	*out = mk_malloc(512 * KiB);
	mk_free(*out);   /* cached in this thread: at its exit, back to the segment */
	return NULL;
}

/* A thread's cached large blocks go back to their segments when it exits: the cached block's run is then
 * free memory of its segment (a free of it is refused as a double free either way). */
static void test_large_cache_flushed_at_exit(void)
{
	void *p = NULL;
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, cache_and_exit, &p) == 0);
	pthread_join(t, NULL);
	REQUIRE(p);
	if (mk__is_ours(p))   /* else its segment was wholly free and is unmapped: flushed as well */
		CHECK(MK_LOAD(mk__span_of(mk__segment_of(p), p)->state) == MK_SPAN_FREE);
	CHECK(mk_check() == 0);
}

static void cases(void)
{
	RUN(test_bins_best_fit_and_bitmap);
	RUN(test_bins_prefer_resident_runs);
	RUN(test_dirty_queue_order);
	RUN(test_check_finds_broken_indexes);
	RUN(test_large_cache_reuses);
	RUN(test_next_span_where_the_last_was_freed);
	RUN(test_large_cache_flushed_at_exit);
}

int main(void)
{
	setenv("MEMKIT_PURGE_DELAY", "100000", 1);   /* nothing purged behind the tests' backs */
	return test_main(cases);
}
