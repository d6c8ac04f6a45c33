/* Unit tests of the engine's internals: size classes, the divisibility test, span bookkeeping, remote
 * frees, purging, huge blocks, and error detection.  mk_check() runs after each step that changes state. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "memkit.h"
#include "engine/engine.h"
#include "os/os.h"
#include "../common/test.h"

static size_t rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (size_t)res * 4;
}

static void test_classes_round_trip(void)
{
	mk_free(mk_malloc(1)); /* initialises the tables */
	for (size_t n = 0; n <= MK_MEDIUM_MAX; n++) {
		unsigned c = mk__class_of(n);
		REQUIRE(c < MK_NCLASSES);
		size_t size = mk__classes[c].size;
		CHECK(size >= n);
		if (c > 0)
			CHECK(mk__classes[c - 1].size < (n ? n : 1));  /* the smallest class that fits */
		size_t rounded = n < 16 ? 16 : (n + 15) & ~(size_t)15;
		CHECK((size - rounded) * 8 <= rounded);          /* at most 12.5% over the aligned request */
		CHECK(size % 16 == 0);
		if (n <= MK_DIRECT_MAX) {
			unsigned d = (unsigned)((n + 15) >> 4);
			CHECK(mk__direct_class[d] == c);
			/* direct[0] is never a class's: malloc(0) goes to the no-access area (zero.c) */
			CHECK(d == 0 ? mk__classes[c].direct_lo == 1
			             : mk__classes[c].direct_lo <= d && d < mk__classes[c].direct_hi);
		}
		if (test_case_failed) {
			fprintf(stderr, "  at size %zu (class %u of %zu bytes)\n", n, c, size);
			return;
		}
	}
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		const mk_class_info *ci = &mk__classes[c];
		CHECK(mk__class_of(ci->size) == c);
		size_t span = (size_t)ci->span_slices * MK_SLICE_SIZE;
		CHECK(span / ci->size >= 8 || ci->span_slices == 1);
		CHECK((span % ci->size) * 8 <= span);           /* the unusable tail of a span is under 1/8 */
		CHECK(ci->span_slices < MK_SLICES);
	}
}

/* The block test is exact: true iff p is start + k * size with k below carved, for every class, for
 * carved anywhere from 0 to capacity, for offsets past the span, below it, and 2^47 away. */
static void test_block_start_is_exact(void)
{
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		const mk_class_info *ci = &mk__classes[c];
		size_t span = (size_t)ci->span_slices * MK_SLICE_SIZE;
		uint64_t capacity = span / ci->size;
		uint64_t carveds[] = { 0, 1, capacity / 3, capacity - 1, capacity };
		for (unsigned k = 0; k < sizeof carveds / sizeof carveds[0]; k++) {
			mk_span s = { .start = (uintptr_t)1 << 30, .div_mul = ci->div_mul, .div_shift = ci->div_shift,
			              .carved = carveds[k] };
			for (size_t off = 0; off < span + 2 * ci->size; off += 16) {
				bool want = off % ci->size == 0 && off / ci->size < s.carved;
				if (mk__is_block_start(&s, s.start + off) != want ||
				    mk__is_block_start(&s, s.start + off + ((uintptr_t)1 << 47)) ||
				    (off && mk__is_block_start(&s, s.start - off))) {
					CHECK(!"the block test disagrees with %");
					fprintf(stderr, "  class %u size %u offset %zu carved %llu\n", c, ci->size, off,
					        (unsigned long long)s.carved);
					return;
				}
			}
		}
	}
}

static void test_spans_fill_and_empty(void)
{
	enum { N = 20000 };
	static void *p[N];
	struct mallinfo2 before = mk_mallinfo2();
	for (int i = 0; i < N; i++) {
		p[i] = mk_malloc(48);
		REQUIRE(p[i] != NULL);
		memset(p[i], i & 0xff, 48);
		if (i % 2000 == 0)
			CHECK(mk_check() == 0);
	}
	/* 20,000 blocks of 48 bytes span several 64 KiB spans; blocks never overlap */
	for (int i = 1; i < N; i++)
		CHECK((char *)p[i] >= (char *)p[i - 1] + 48 || (char *)p[i] + 48 <= (char *)p[i - 1]);
	for (int i = 0; i < N; i++) {   /* free in a scrambled order */
		int k = (int)(((unsigned)i * 7919u) % N);
		CHECK(((unsigned char *)p[k])[47] == (k & 0xff));
		mk_free(p[k]);
		if (i % 2000 == 0)
			CHECK(mk_check() == 0);
	}
	CHECK(mk_check() == 0);
	mk_malloc_trim(0);
	struct mallinfo2 after = mk_mallinfo2();
	CHECK(after.uordblks <= before.uordblks + 64 * 1024);
	CHECK(after.arena <= before.arena + MK_SEG_SIZE);
}

static void test_pinned_span_survives_churn(void)
{
	void *p = mk_malloc(200);
	mk_free(p);
	struct mallinfo2 a = mk_mallinfo2();
	for (int i = 0; i < 100000; i++) {
		void *q = mk_malloc(200);
		CHECK(q == p);        /* the same block comes back: the span was kept */
		mk_free(q);
	}
	struct mallinfo2 b = mk_mallinfo2();
	CHECK(a.arena == b.arena);
	CHECK(mk_check() == 0);
}

static void test_medium_spans_coalesce(void)
{
	enum { N = 64 };
	void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = mk_malloc(100000 + (size_t)i * 400);  /* multi-slice spans of different classes */
		REQUIRE(p[i] != NULL);
		memset(p[i], 0x5a, 100000);
	}
	CHECK(mk_check() == 0);
	for (int i = 0; i < N; i += 2)
		mk_free(p[i]);
	CHECK(mk_check() == 0);
	for (int i = 1; i < N; i += 2)
		mk_free(p[i]);
	CHECK(mk_check() == 0);
	mk_malloc_trim(0);
	CHECK(mk_check() == 0);
	struct mallinfo2 mi = mk_mallinfo2();
	CHECK(mi.arena <= 2 * MK_SEG_SIZE);   /* wholly free segments were unmapped */
}

static void *alloc_many(void *arg)
{
	void **p = arg;
	for (int i = 0; i < 5000; i++)
		p[i] = mk_malloc(64);
	return NULL;
}

static void test_remote_frees_come_back(void)
{
	static void *p[5000];
	pthread_t t;
	/* a thread allocates and exits: its heap is parked with 5000 blocks out */
	pthread_create(&t, NULL, alloc_many, p);
	pthread_join(t, NULL);
	for (int i = 0; i < 5000; i++)
		mk_free(p[i]);            /* remote frees into a parked heap */
	CHECK(mk_check() == 0);
	/* the next thread adopts the parked heap and gets those blocks back rather than new memory */
	struct mallinfo2 before = mk_mallinfo2();
	static void *q[5000];
	pthread_create(&t, NULL, alloc_many, q);
	pthread_join(t, NULL);
	struct mallinfo2 after = mk_mallinfo2();
	CHECK(after.arena == before.arena);
	for (int i = 0; i < 5000; i++)
		mk_free(q[i]);
	mk_malloc_trim(0);
	CHECK(mk_check() == 0);
}

static void test_parked_heap_collected_by_freer(void)
{
	static void *p[5000];
	mk_malloc_trim(0);
	struct mallinfo2 before = mk_mallinfo2();
	pthread_t t;
	pthread_create(&t, NULL, alloc_many, p);   /* 5000 x 64 bytes, then the thread exits */
	pthread_join(t, NULL);
	CHECK(mk_mallinfo2().uordblks >= before.uordblks + 5000 * 64);
	for (int i = 0; i < 5000; i++)
		mk_free(p[i]);
	/* no trim, no new thread: the freeing thread collected the parked heap's spans, which leaves at most
	 * 31 blocks (under the threshold of 32) waiting in each of the 5 spans that 5000 blocks of 64 took */
	struct mallinfo2 after = mk_mallinfo2();
	CHECK(after.uordblks <= before.uordblks + 5 * 31 * 64);
	if (test_case_failed)
		fprintf(stderr, "  in use: before %zu, after %zu\n", before.uordblks, after.uordblks);
	CHECK(mk_check() == 0);
}

/* ---- heaps that park with their current spans (heap.c) ---- */

static void *use_and_free(void *arg)
{
	(void)arg;
	void *p[100];
	for (int i = 0; i < 100; i++)
		p[i] = mk_malloc(48);
	for (int i = 0; i < 100; i++)
		mk_free(p[i]);
	return NULL;
}

static void *first_block(void *arg)
{
	*(void **)arg = mk_malloc(48);
	return NULL;
}

struct keeping { int heaps; size_t most_bytes; };

static void count_keeping(const mk_heap *h, void *arg)
{
	struct keeping *k = arg;
	if (!h->parked_keep)
		return;
	k->heaps++;
	size_t bytes = 0;   /* free blocks in the current spans, as heap.c's keep_current counts them */
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		const mk_span *s = h->current[c];
		if (s != &mk__empty_span)
			bytes += (size_t)(s->carved + 1 - s->used) * s->block_size;
	}
	if (bytes > k->most_bytes)
		k->most_bytes = bytes;
}

static struct keeping keeping(void)
{
	struct keeping k = { 0, 0 };
	mk__heaps_walk(count_keeping, &k);
	return k;
}

static uint64_t stat_of(const char *name)
{
	uint64_t v = 0;
	CHECK(mk_stats_get(name, &v) == 0);
	return v;
}

/* A thread's exit parks its heap with its current spans: the next thread allocates from them at once (no
 * new span), and once the heap has waited the purge delay the next refill of any thread gives them back. */
static void test_parked_heap_keeps_spans(void)
{
	mk_malloc_trim(0);
	REQUIRE(keeping().heaps == 0);
	pthread_t t;
	pthread_create(&t, NULL, use_and_free, NULL);
	pthread_join(t, NULL);
	CHECK(keeping().heaps == 1);
	uint64_t made = stat_of("small.spans_made");
	void *q = NULL;
	pthread_create(&t, NULL, first_block, &q);   /* adopts that heap */
	pthread_join(t, NULL);
	CHECK(q != NULL && stat_of("small.spans_made") == made);
	CHECK(keeping().heaps == 1);                  /* parked again, with q out */
	mk_free(q);                                   /* a remote free into the kept span */
	CHECK(mk_check() == 0);
	/* After the delay, the next refill (a class this thread has no current span of, after the trim) sees
	 * the heap due. */
	test_sleep_ms(3 * mk__opt.purge_delay_ms + 5);
	void *r = mk_malloc(3000);
	CHECK(keeping().heaps == 0);
	mk_free(r);
	CHECK(mk_check() == 0);
	/* malloc_trim gives them back at once */
	pthread_create(&t, NULL, use_and_free, NULL);
	pthread_join(t, NULL);
	CHECK(keeping().heaps == 1);
	mk_malloc_trim(0);
	CHECK(keeping().heaps == 0);
	CHECK(mk_check() == 0);
}

static pthread_barrier_t all_up;

static void *use_many_classes(void *arg)
{
	(void)arg;
	enum { N = 40 };
	void *p[N];
	for (int i = 0; i < N; i++)   /* 8 KiB to 128 KiB: spans of 8 blocks, up to 1 MiB each */
		p[i] = mk_malloc((size_t)(8 + 3 * i) * 1024);
	pthread_barrier_wait(&all_up);   /* six heaps at once, not one adopted six times */
	for (int i = 0; i < N; i++)
		mk_free(p[i]);
	return NULL;
}

/* At most 4 heaps park with spans, each with at most 1 MiB of free blocks in them (PARK_KEEP_HEAPS and
 * PARK_KEEP_BYTES in heap.c). */
static void test_parked_spans_are_bounded(void)
{
	enum { T = 6 };
	long delay = mk__opt.purge_delay_ms;
	mk__opt.purge_delay_ms = 10000;   /* threads that exit a delay apart would sweep the first heaps kept */
	mk_malloc_trim(0);
	pthread_barrier_init(&all_up, NULL, T);
	pthread_t t[T];
	for (int i = 0; i < T; i++)
		pthread_create(&t[i], NULL, use_many_classes, NULL);
	for (int i = 0; i < T; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&all_up);
	struct keeping k = keeping();
	CHECK(k.heaps == 4);
	CHECK(k.most_bytes > 0 && k.most_bytes <= (size_t)1 << 20);
	if (test_case_failed)
		fprintf(stderr, "  %d heaps keep spans, at most %zu bytes free in them\n", k.heaps, k.most_bytes);
	CHECK(mk_check() == 0);
	mk_malloc_trim(0);
	CHECK(keeping().heaps == 0);
	mk__opt.purge_delay_ms = delay;
}

/* The purge delay set by mallopt applies at once to what parked heaps keep. */
static void test_parked_spans_follow_mallopt(void)
{
	long delay = mk__opt.purge_delay_ms;
	REQUIRE(mk_mallopt(MEMKIT_M_PURGE_DELAY, 3600000) == 1);
	mk_malloc_trim(0);
	pthread_t t;
	pthread_create(&t, NULL, use_and_free, NULL);
	pthread_join(t, NULL);
	CHECK(keeping().heaps == 1);
	REQUIRE(mk_mallopt(MEMKIT_M_PURGE_DELAY, 0) == 1);   /* due at once by the new delay */
	CHECK(keeping().heaps == 0);
	CHECK(mk_check() == 0);
	REQUIRE(mk_mallopt(MEMKIT_M_PURGE_DELAY, (int)delay) == 1);
}

static void test_trim_gives_memory_back(void)
{
	enum { N = 100000 };
	static void *p[N];
	size_t base = rss_kib();
	for (int i = 0; i < N; i++) {
		p[i] = mk_malloc(500);
		memset(p[i], 1, 500);
	}
	size_t full = rss_kib();
	CHECK(full > base + 40000);  /* ~50 MB live */
	for (int i = 0; i < N; i++)
		mk_free(p[i]);
	CHECK(mk_malloc_trim(0) == 1);
	size_t after = rss_kib();
	CHECK(after < base + 4096);
	if (test_case_failed)
		fprintf(stderr, "  rss: base %zu KiB, full %zu KiB, after trim %zu KiB\n", base, full, after);
}

static void test_huge_cache_and_remap(void)
{
	size_t n = 3u << 20;
	char *p = mk_malloc(n);
	REQUIRE(p != NULL);
	CHECK(((uintptr_t)p & (MK_PAGE_SIZE - 1)) == 0);
	CHECK(mk_malloc_usable_size(p) >= n);
	memset(p, 7, n);
	mk_free(p);
	char *q = mk_malloc(n);
	CHECK(q == p);             /* the cached mapping is reused */
	memset(q, 9, 1000);
	for (size_t i = 0; i < n; i += 4096)
		q[i] = (char)(i >> 12);
	char *r = mk_realloc(q, 64u << 20);   /* grows by mremap: pages move, contents stay */
	REQUIRE(r != NULL);
	for (size_t i = 0; i < n; i += 4096)
		CHECK(r[i] == (char)(i >> 12));
	char *s = mk_realloc(r, 1000);        /* back to a small block */
	REQUIRE(s != NULL);
	CHECK(s[0] == 0 && s[1] == 9 && s[999] == 9);  /* the first 1000 bytes came along */
	mk_free(s);
	char *z = mk_calloc(1, 5u << 20);
	REQUIRE(z != NULL);
	for (size_t i = 0; i < (5u << 20); i += 512)
		CHECK(z[i] == 0);
	mk_free(z);
	CHECK(mk_check() == 0);
}

static void test_aligned_blocks_are_real_blocks(void)
{
	for (size_t align = 32; align <= (1u << 20); align <<= 1)
		for (size_t n = 1; n < 300000; n = n * 3 + 7) {
			void *p = mk_aligned_alloc(align, n);
			REQUIRE(p != NULL);
			CHECK(((uintptr_t)p & (align - 1)) == 0);
			memset(p, 3, n);
			mk_free(p);     /* aborts if p were an interior pointer */
		}
	CHECK(mk_check() == 0);
}

static void test_os_failure_gives_enomem(void)
{
	mk_malloc_trim(0);
	mk__os_inject_fail(0, 1000000);
	long before = mk__os_injected_failures();
	errno = 0;
	void *big = mk_malloc(10u << 20);
	CHECK(big == NULL && errno == ENOMEM);
	/* small classes whose spans are not yet in use need a fresh segment: refused too */
	void *ps[2000];
	int got_null = 0;
	for (int i = 0; i < 2000; i++) {
		errno = 0;
		ps[i] = mk_malloc(70000 + (size_t)i * 16);
		if (!ps[i]) {
			CHECK(errno == ENOMEM);
			got_null = 1;
			break;
		}
	}
	mk__os_inject_fail(-1, 0);
	CHECK(got_null);
	CHECK(mk__os_injected_failures() > before);
	for (int i = 0; i < 2000 && ps[i]; i++)
		mk_free(ps[i]);
	void *ok = mk_malloc(10u << 20);
	CHECK(ok != NULL);
	mk_free(ok);
	CHECK(mk_check() == 0);
}

static void do_double_free(void *arg) { (void)arg; void *p = mk_malloc(40); mk_free(p); mk_free(p); }
static void do_interior(void *arg) { (void)arg; char *p = mk_malloc(100); mk_free(p + 16); }
static void do_stack(void *arg) { (void)arg; int x; mk_free(&x); }
static void do_foreign(void *arg)
{
	(void)arg;
	char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mk_free(m + 64);
}
static void do_header(void *arg) { (void)arg; char *p = mk_malloc(32); mk_free(mk__segment_of(p)); }
static void do_huge_double(void *arg) { (void)arg; void *p = mk_malloc(1 << 20); mk_free(p); mk_free(p); }

static void test_bad_frees_abort_with_one_line(void)
{
	CHECK(test_expect_abort(do_double_free, NULL, "double free of 0x"));
	CHECK(test_expect_abort(do_interior, NULL, "interior pointer 0x"));
	CHECK(test_expect_abort(do_stack, NULL, "invalid pointer 0x"));
	CHECK(test_expect_abort(do_foreign, NULL, "invalid pointer 0x"));
	CHECK(test_expect_abort(do_header, NULL, "invalid pointer 0x"));
	CHECK(test_expect_abort(do_huge_double, NULL, "double free of 0x"));
}

static void *free_twice_remote(void *arg)
{
	mk_free(arg);
	mk_free(arg);
	return NULL;
}

static void do_cross_thread_double(void *arg)
{
	(void)arg;
	pthread_t t;
	void *p = mk_malloc(24);
	pthread_create(&t, NULL, free_twice_remote, p);
	pthread_join(t, NULL);
}

static void do_interior_verbose(void *arg)
{
	(void)arg;
	mk__opt.verbose = 1;   /* as MEMKIT_VERBOSE=1 sets it at start */
	char *p = mk_malloc(100);
	mk_free(p + 48);
}

static void test_verbose_explains_bad_free(void)
{
	/* the one-line error, then where the pointer lies: 112-byte class, 48 bytes into its block */
	CHECK(test_expect_abort(do_interior_verbose, NULL, "interior pointer 0x"));
	CHECK(test_expect_abort(do_interior_verbose, NULL, "is in a span of 112-byte blocks"));
	CHECK(test_expect_abort(do_interior_verbose, NULL, "48 bytes into the block at 0x"));
}

static void test_remote_double_free_detected(void)
{
	CHECK(test_expect_abort(do_cross_thread_double, NULL, "double free of 0x"));
}

static void cases(void)
{
	RUN(test_classes_round_trip);
	RUN(test_block_start_is_exact);
	RUN(test_spans_fill_and_empty);
	RUN(test_pinned_span_survives_churn);
	RUN(test_medium_spans_coalesce);
	RUN(test_remote_frees_come_back);
	RUN(test_parked_heap_collected_by_freer);
	RUN(test_parked_heap_keeps_spans);
	RUN(test_parked_spans_are_bounded);
	RUN(test_parked_spans_follow_mallopt);
	RUN(test_trim_gives_memory_back);
	RUN(test_huge_cache_and_remap);
	RUN(test_aligned_blocks_are_real_blocks);
	RUN(test_os_failure_gives_enomem);
	RUN(test_bad_frees_abort_with_one_line);
	RUN(test_remote_double_free_detected);
	RUN(test_verbose_explains_bad_free);
}

int main(void)
{
	return test_main(cases);
}
