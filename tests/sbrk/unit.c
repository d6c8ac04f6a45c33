/* Unit tests of the sbrk allocator (src/classic/sbrk.c).  Linked with build/libmemkit-sbrk.a's objects, so
 * that this whole process, stdio included, runs on the allocator under test, as a preloaded program would.
 * Each property of the design has its own case; check() runs after every step that changes the heap. */
#include <malloc.h>
#include <stdint.h>

#include "classic/sbrk.h"
#include "os/os.h"
#include "../common/test.h"

static struct mk_sbrk_counters counters(void)
{
	struct mk_sbrk_counters c;
	mk__sbrk_counters(&c);
	return c;
}

static size_t block_of(const void *p) { return malloc_usable_size((void *)p) + MK_SBRK_HEADER; }

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7);
}

static int filled(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed * 131 + i * 7))
			return 0;
	return 1;
}

/* Leaves a free block of at least `size` bytes at the head of the free list (LIFO: the last one freed),
 * so that the next allocations, while they fit in it, are carved from it one after another. */
static void fresh_area(size_t size)
{
	void *p = mymalloc(size);
	myfree(p);
}

static void test_alignment_and_overhead(void)
{
	for (size_t n = 0; n <= 600; n += 7) {
		unsigned char *p = mymalloc(n);
		REQUIRE(p != NULL);
		CHECK((uintptr_t)p % 16 == 0);
		size_t usable = malloc_usable_size(p);
		CHECK(usable >= n);
		/* one 8-byte header plus rounding to 16, never more than a minimum block */
		CHECK(block_of(p) == (n + MK_SBRK_HEADER + 15) / 16 * 16 || block_of(p) == MK_SBRK_MIN_BLOCK);
		fill(p, n, (unsigned)n);
		myfree(p);
		CHECK(mk__sbrk_check() == 0);
	}
	void *a = mymalloc(0), *b = mymalloc(0);
	CHECK(a != NULL && b != NULL && a != b);
	myfree(a);
	myfree(b);
}

static void test_break_goes_down_when_top_freed(void)
{
	size_t big = 4 * MK_SBRK_TRIM_AT;
	void *before = mk__os_sbrk(0);
	struct mk_sbrk_counters c0 = counters();
	char *p = mymalloc(big);
	REQUIRE(p != NULL);
	char *grown = mk__os_sbrk(0);
	CHECK(grown + c0.top_free >= (char *)before + big);   /* a free top block is extended */
	CHECK(p + big <= grown);
	myfree(p);
	char *after = mk__os_sbrk(0);
	struct mk_sbrk_counters c1 = counters();
	CHECK(after <= grown - big + MK_SBRK_TRIM_KEEP);
	CHECK(grown - after >= 4096);
	CHECK(c1.shrink_calls > c0.shrink_calls);
	CHECK(c1.top_free < MK_SBRK_TRIM_AT);
	CHECK((uintptr_t)after == c1.heap_end);
	CHECK(mk__sbrk_check() == 0);
}

static void test_brk_growth_is_batched(void)
{
	enum { N = 8192, SIZE = 24 };
	static void *ptrs[N];
	struct mk_sbrk_counters c0 = counters();
	for (int i = 0; i < N; i++) {
		ptrs[i] = mymalloc(SIZE);
		REQUIRE(ptrs[i] != NULL);
	}
	struct mk_sbrk_counters c1 = counters();
	size_t bytes = (size_t)N * block_of(ptrs[0]);
	unsigned long calls = c1.grow_calls - c0.grow_calls;
	/* the free space we started with covers part; each growth adds at least GROW_MIN */
	size_t missing = bytes > c0.free_bytes ? bytes - c0.free_bytes : 0;
	CHECK(calls >= 1);
	CHECK(calls <= missing / MK_SBRK_GROW_MIN + 1);
	CHECK(c1.brk_bytes_grown - c0.brk_bytes_grown >= missing);
	fprintf(stderr, "  %d mallocs of %d bytes: %lu brk growths, %zu bytes grown\n", N, SIZE, calls,
	        c1.brk_bytes_grown - c0.brk_bytes_grown);
	for (int i = 0; i < N; i++)
		myfree(ptrs[i]);
	CHECK(mk__sbrk_check() == 0);
}

struct found {
	uintptr_t at;
	size_t size;
	int kind;   /* -1: no block starts there */
};

static void match_block(void *arg, uintptr_t at, size_t size, int kind)
{
	struct found *f = arg;
	if (at == f->at) {
		f->size = size;
		f->kind = kind;
	}
}

static struct found find_block(uintptr_t at)
{
	struct found f = { .at = at, .size = 0, .kind = -1 };
	mk__sbrk_walk(match_block, &f);
	return f;
}

static void test_free_coalesces_neighbours(void)
{
	enum { N = 40 };
	char *p[N];
	size_t total = 0;
	fresh_area(16384);
	struct mk_sbrk_counters c0 = counters();
	for (int i = 0; i < N; i++) {
		p[i] = mymalloc(16 + (size_t)i * 24);
		REQUIRE(p[i] != NULL);
		if (i)
			REQUIRE(p[i] == p[i - 1] + block_of(p[i - 1]));   /* carved one after another */
		total += block_of(p[i]);
	}
	/* free in a scrambled order, so that every case (left, right, both, none) is met */
	for (int k = 0; k < N; k++) {
		int i = (k * 17) % N;
		myfree(p[i]);
		CHECK(mk__sbrk_check() == 0);
	}
	struct mk_sbrk_counters c1 = counters();
	CHECK(c1.free_blocks == c0.free_blocks);
	/* the first block's head now begins a free block that covers all of them */
	struct found f = find_block((uintptr_t)(p[0] - MK_SBRK_HEADER));
	CHECK(f.kind == MK_SBRK_FREE);
	CHECK(f.size >= total);
}

static void test_lifo_reuse(void)
{
	fresh_area(4096);
	void *guard = mymalloc(48);
	void *a = mymalloc(100);
	void *s1 = mymalloc(16);
	void *b = mymalloc(100);
	void *s2 = mymalloc(16);
	myfree(a);
	myfree(b);
	CHECK(mk__sbrk_check() == 0);
	void *c = mymalloc(100);
	void *d = mymalloc(100);
	CHECK(c == b);   /* the most recently freed first */
	CHECK(d == a);
	myfree(c);
	myfree(d);
	myfree(s1);
	myfree(s2);
	myfree(guard);
	CHECK(mk__sbrk_check() == 0);
}

static void test_realloc_in_place(void)
{
	fresh_area(8192);
	unsigned char *p = mymalloc(200);
	unsigned char *q = mymalloc(200);
	unsigned char *guard = mymalloc(16);
	REQUIRE(p && q && guard);
	fill(p, 200, 1);
	CHECK(myrealloc(p, 50) == p);                  /* shrink: the tail becomes a free block */
	CHECK(mk__sbrk_check() == 0);
	CHECK(block_of(p) < 200);
	CHECK(myrealloc(p, 150) == p);                 /* grow back into that free tail */
	CHECK(filled(p, 50, 1));
	fill(p, 150, 2);
	myfree(q);
	CHECK(myrealloc(p, 390) == p);                 /* grow into the freed neighbour */
	CHECK(filled(p, 150, 2));
	CHECK(mk__sbrk_check() == 0);
	unsigned char *moved = myrealloc(p, 4000);     /* the guard is in the way: it moves */
	CHECK(moved != p);
	CHECK(filled(moved, 150, 2));
	myfree(moved);
	myfree(guard);

	/* The last block grows by moving the break. */
	size_t big = 2 * MK_SBRK_TRIM_AT;
	unsigned char *r = mymalloc(big);
	REQUIRE(r != NULL);
	fill(r, 64, 3);
	struct mk_sbrk_counters c0 = counters();
	CHECK(myrealloc(r, 2 * big) == r);
	struct mk_sbrk_counters c1 = counters();
	CHECK(c1.grow_calls > c0.grow_calls);
	CHECK(filled(r, 64, 3));
	CHECK(mk__sbrk_check() == 0);
	myfree(r);
	CHECK(mk__sbrk_check() == 0);
}

static void test_calloc_zeroes_reused_memory(void)
{
	size_t n = 3000;
	unsigned char *p = mymalloc(n);
	REQUIRE(p != NULL);
	memset(p, 0xaa, n);
	myfree(p);
	unsigned char *z = mycalloc(n / 4, 4);
	REQUIRE(z != NULL);
	CHECK(z == p);   /* reused, so the zeroes are calloc's doing */
	size_t nonzero = 0;
	for (size_t i = 0; i < n; i++)
		nonzero += z[i] != 0;
	CHECK(nonzero == 0);
	myfree(z);
}

static void test_overflow_gives_enomem(void)
{
	errno = 0;
	CHECK(mymalloc(SIZE_MAX) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(mymalloc(PTRDIFF_MAX) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(mycalloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
	unsigned char *p = mymalloc(100);
	REQUIRE(p != NULL);
	fill(p, 100, 4);
	errno = 0;
	CHECK(myrealloc(p, (size_t)PTRDIFF_MAX + 1) == NULL && errno == ENOMEM);
	CHECK(filled(p, 100, 4));
	void *m = (void *)1;
	CHECK(posix_memalign(&m, 24, 16) == EINVAL && m == (void *)1);
	myfree(p);
	CHECK(mk__sbrk_check() == 0);
}

static void test_aligned_allocations(void)
{
	void *ps[40];
	int k = 0;
	for (size_t align = 32; align <= 65536; align *= 2)
		for (size_t n = 1; n < 5000; n += 1700) {
			void *p = NULL;
			REQUIRE(posix_memalign(&p, align, n) == 0);
			CHECK((uintptr_t)p % align == 0);
			memset(p, 0x5a, n);
			ps[k++] = p;
			CHECK(mk__sbrk_check() == 0);
		}
	void *v = valloc(10);
	CHECK(v && (uintptr_t)v % 4096 == 0);
	myfree(v);
	while (k)
		myfree(ps[--k]);
	CHECK(mk__sbrk_check() == 0);
}

static void test_trim_returns_top(void)
{
	void *p = mymalloc(MK_SBRK_TRIM_AT / 2);
	REQUIRE(p != NULL);
	myfree(p);
	struct mk_sbrk_counters c0 = counters();
	int r = malloc_trim(0);
	struct mk_sbrk_counters c1 = counters();
	CHECK(r == (c0.top_free >= MK_PAGE_SIZE + MK_SBRK_MIN_BLOCK));
	CHECK(c1.top_free < MK_PAGE_SIZE + MK_SBRK_MIN_BLOCK);
	CHECK(mk__sbrk_check() == 0);
	struct mallinfo2 mi = mallinfo2();
	CHECK(mi.arena == c1.heap_end - c1.heap_start);
	CHECK(mi.uordblks + mi.fordblks + 8 == mi.arena);   /* blocks tile the heap up to the epilogue */
	CHECK(mi.ordblks == c1.free_blocks);
}

/* A random mix of every call, contents verified, invariants checked after each step. */
static void test_random_workload_checked(void)
{
	enum { SLOTS = 256, STEPS = 6000 };
	static unsigned char *slot[SLOTS];
	static size_t len[SLOTS];
	uint64_t rng = 0x2545f4914f6cdd1dull;
	int broken = 0;
	for (int step = 0; step < STEPS && !broken; step++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		int i = (int)(rng % SLOTS);
		size_t n = (rng >> 16) % (rng >> 60 ? 300 : 20000);
		if (slot[i]) {
			CHECK(filled(slot[i], len[i], (unsigned)i));
			if ((rng >> 40) % 3 == 0) {
				unsigned char *q = myrealloc(slot[i], n + 1);
				REQUIRE(q != NULL);
				size_t keep = len[i] < n + 1 ? len[i] : n + 1;
				CHECK(filled(q, keep, (unsigned)i));
				slot[i] = q;
				len[i] = n + 1;
				fill(q, n + 1, (unsigned)i);
			} else {
				myfree(slot[i]);
				slot[i] = NULL;
			}
		} else {
			int how = (int)((rng >> 50) % 3);
			if (how == 0)
				slot[i] = mymalloc(n);
			else if (how == 1)
				slot[i] = mycalloc(1, n);
			else
				slot[i] = memalign((size_t)64 << ((rng >> 54) % 4), n);
			REQUIRE(slot[i] != NULL);
			for (size_t k = 0; how == 1 && k < n; k++)
				CHECK(slot[i][k] == 0);
			len[i] = n;
			fill(slot[i], n, (unsigned)i);
		}
		broken = mk__sbrk_check() != 0;
	}
	CHECK(!broken);
	for (int i = 0; i < SLOTS; i++) {
		myfree(slot[i]);
		slot[i] = NULL;
	}
	CHECK(mk__sbrk_check() == 0);
}

static void test_exhaustion_by_injection(void)
{
	struct mk_sbrk_counters c0 = counters();
	size_t big = c0.free_bytes + 4 * MK_SBRK_TRIM_AT;   /* nothing free can hold it */
	long failed0 = mk__os_injected_failures();
	mk__os_inject_fail(0, 1);
	errno = 0;
	void *p = mymalloc(big);
	CHECK(p == NULL && errno == ENOMEM);
	CHECK(mk__os_injected_failures() == failed0 + 1);
	CHECK(mk__sbrk_check() == 0);

	/* a realloc that needs the break keeps the old block when the kernel says no */
	unsigned char *q = mymalloc(100);
	REQUIRE(q != NULL);
	fill(q, 100, 5);
	mk__os_inject_fail(0, 3);
	CHECK(myrealloc(q, big) == NULL);
	mk__os_inject_fail(0, 0);
	CHECK(mk__os_injected_failures() > failed0 + 1);
	CHECK(filled(q, 100, 5));
	CHECK(mk__sbrk_check() == 0);
	p = mymalloc(big);   /* and it works again afterwards */
	CHECK(p != NULL);
	myfree(p);
	myfree(q);
	CHECK(mk__sbrk_check() == 0);
}

/* check() is only worth calling after every step if it notices damage: break a footer, then a link. */
static void test_check_detects_damage(void)
{
	fresh_area(4096);
	char *a = mymalloc(200);
	char *guard = mymalloc(16);
	REQUIRE(a && guard);
	myfree(a);
	REQUIRE(mk__sbrk_check() == 0);
	struct found f = find_block((uintptr_t)(a - MK_SBRK_HEADER));
	REQUIRE(f.kind == MK_SBRK_FREE);
	uint64_t *footer = (uint64_t *)(f.at + f.size - 8);
	uint64_t saved = *footer;
	*footer ^= 0x10;
	int found_footer = mk__sbrk_check();
	*footer = saved;
	void **link = (void **)a;   /* the free block's next link sits where the payload was */
	void *saved_link = *link;
	*link = guard;
	int found_link = mk__sbrk_check();
	*link = saved_link;
	CHECK(found_footer >= 1);
	CHECK(found_link >= 1);
	CHECK(mk__sbrk_check() == 0);
	myfree(guard);
}

/* ---- bad pointers must abort with one line that names them ---- */

static char expect[128];

static void do_double_free(void *p)
{
	myfree(p);
	myfree(p);
}
static void do_free(void *p) { myfree(p); }
static void do_realloc(void *p) { myrealloc(p, 10); }
static void do_overflow_then_free(void *p)
{
	memset(p, 0x41, block_of(p) + 8);   /* runs over the next block's head */
	myfree(p);
}

static void expect_abort(void (*fn)(void *), void *arg, const char *what, const void *named)
{
	snprintf(expect, sizeof expect, "memkit-sbrk: %s %p", what, named);
	CHECK(test_expect_abort(fn, arg, expect));
}

static void test_invalid_frees_abort(void)
{
	char *p = mymalloc(64);
	char *q = mymalloc(64);
	REQUIRE(p && q);
	int on_stack;
	expect_abort(do_double_free, p, "double free of", p);
	expect_abort(do_free, &on_stack, "invalid pointer", &on_stack);
	expect_abort(do_free, p + 16, "invalid pointer", p + 16);
	expect_abort(do_free, p + 1, "invalid pointer", p + 1);
	expect_abort(do_overflow_then_free, p, "heap corruption (overflow?) after", p);
	void *r = mymalloc(64);
	myfree(r);
	expect_abort(do_realloc, r, "use after free of", r);
	/* a double free of a block that has since been merged into its left neighbour is still recognised */
	myfree(p);
	myfree(q);
	CHECK(find_block((uintptr_t)(q - MK_SBRK_HEADER)).kind == -1);
	expect_abort(do_free, q, "double free of", q);
	CHECK(mk__sbrk_check() == 0);
}

static void count_fences(void *arg, uintptr_t at, size_t size, int kind)
{
	struct found *f = arg;
	if (kind == MK_SBRK_FENCE) {
		f->at = at;
		f->size = size;
		f->kind++;
	}
}

/* Someone else moves the break between two growths: the foreign bytes are fenced off, never handed out,
 * and the heap is still trimmed down to them but not below.  Last, because the fence stays. */
static void test_foreign_sbrk_is_fenced(void)
{
	struct mk_sbrk_counters c0 = counters();
	char *foreign = mk__os_sbrk(4096);
	REQUIRE(foreign != (void *)-1);
	REQUIRE((uintptr_t)foreign >= c0.heap_end);
	char *p = mymalloc(c0.free_bytes + 2 * MK_SBRK_TRIM_AT);
	REQUIRE(p != NULL);
	CHECK(p > foreign);
	CHECK(mk__sbrk_check() == 0);
	struct found fence = { .kind = 0 };
	mk__sbrk_walk(count_fences, &fence);
	CHECK(fence.kind == 1);
	CHECK(fence.at < (uintptr_t)foreign && fence.at + fence.size >= (uintptr_t)foreign + 4096);
	memset(foreign, 0x77, 4096);   /* the foreign page is its owner's to write */
	CHECK(mk__sbrk_check() == 0);
	expect_abort(do_free, foreign + 16, "invalid pointer", foreign + 16);
	myfree(p);
	CHECK((char *)mk__os_sbrk(0) >= foreign + 4096);
	CHECK(counters().top_free < MK_SBRK_TRIM_AT);
	CHECK(mk__sbrk_check() == 0);
	void *q = mymalloc(100);   /* LIFO: carved from the top block just freed, above the fence */
	CHECK(q != NULL && (char *)q > foreign);
	myfree(q);
}

static void cases(void)
{
	RUN(test_alignment_and_overhead);
	RUN(test_break_goes_down_when_top_freed);
	RUN(test_brk_growth_is_batched);
	RUN(test_free_coalesces_neighbours);
	RUN(test_lifo_reuse);
	RUN(test_realloc_in_place);
	RUN(test_calloc_zeroes_reused_memory);
	RUN(test_overflow_gives_enomem);
	RUN(test_aligned_allocations);
	RUN(test_trim_returns_top);
	RUN(test_random_workload_checked);
	RUN(test_exhaustion_by_injection);
	RUN(test_check_detects_damage);
	RUN(test_invalid_frees_abort);
	RUN(test_foreign_sbrk_is_fenced);
}

int main(void)
{
	return test_main(cases);
}
