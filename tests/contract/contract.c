/* The engine's contract (docs: DESIGN.md, "The engine's contract"), one case per rule.
 *
 * Compiled twice from this source: with -DMK_TEST_PREFIXED against build/libmemkit-mk.a (the mk_ API), and
 * plain, run under LD_PRELOAD=build/libmemkit.so by contract-preload.sh (the interposed names, plus the __libc_
 * aliases).  MK_EXPECT_MEMKIT=1 in the environment makes a plain run fail unless memkit serves malloc.
 * -DMK_TEST_SANITIZE leaves out the cases that measure RSS or address-space limits, which a sanitizer
 * runtime's own mappings would distort. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "tests/common/test.h"
#include "tests/contract/api.h"
#include "tests/contract/abort.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
/* Beyond any x86-64 user address space, yet below PTRDIFF_MAX: only the allocator's own failure path can
 * refuse it (api.c's size checks let it through). */
#define UNMAPPABLE ((size_t)1 << 50)

static int aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* --- malloc ------------------------------------------------------------------------------------------ */

/* Every size up to past the largest small and medium classes, each kept alive a while among others so that
 * neighbours in the same class are checked against each other. */
static void test_malloc_alignment_every_size(void)
{
	enum { RING = 64 };
	void *ring[RING] = {0};
	size_t usable[RING] = {0};
	for (size_t n = 0; n <= 70000; n++) {
		size_t slot = n % RING;
		if (ring[slot]) {
			/* every usable byte still holds its pattern: no neighbour wrote over it */
			CHECK(test_verify(ring[slot], usable[slot]));
			M(free)(ring[slot]);
		}
		void *p = M(malloc)(n);
		REQUIRE(p != NULL);
		CHECK(aligned_to(p, 16));
		size_t u = M(malloc_usable_size)(p);
		CHECK(u >= n);
		test_fill(p, u); /* the whole usable size is the caller's */
		CHECK(test_verify(p, u));
		ring[slot] = p;
		usable[slot] = u;
	}
	for (int i = 0; i < RING; i++)
		M(free)(ring[i]);
	CHECK(test_heap_check() == 0);
}

static void test_malloc_alignment_huge(void)
{
	const size_t sizes[] = {MiB - 1, MiB, MiB + 1, 2 * MiB + 17, 64 * MiB + 1, 100 * MiB, 256 * MiB + 7, 1024 * MiB};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		char *p = M(malloc)(sizes[i]);
		REQUIRE(p != NULL);
		CHECK(aligned_to(p, 16));
		CHECK(M(malloc_usable_size)(p) >= sizes[i]);
		p[0] = 1;
		p[sizes[i] / 2] = 2;
		p[sizes[i] - 1] = 3;
		CHECK(p[0] == 1 && p[sizes[i] / 2] == 2 && p[sizes[i] - 1] == 3);
		M(free)(p);
	}
	CHECK(test_heap_check() == 0);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static void test_malloc_zero_unique(void)
{
	enum { N = 1000 };
	static void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = M(malloc)(0);
		REQUIRE(p[i] != NULL);
		CHECK(aligned_to(p[i], 16));
	}
	qsort(p, N, sizeof *p, cmp_ptr);
	for (int i = 1; i < N; i++)
		CHECK(p[i] != p[i - 1]);
	for (int i = 0; i < N; i++)
		M(free)(p[i]);
	CHECK(test_heap_check() == 0);
}

static void test_malloc_too_large(void)
{
	const size_t sizes[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX, UNMAPPABLE};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		errno = 0;
		CHECK(M(malloc)(sizes[i]) == NULL);
		CHECK(errno == ENOMEM);
	}
	CHECK(test_heap_check() == 0);
}

/* --- calloc ------------------------------------------------------------------------------------------ */

static int all_zero(const void *p, size_t n)
{
	static const unsigned char zeros[4096];
	const unsigned char *b = p;
	for (size_t off = 0; off < n; off += sizeof zeros)
		if (memcmp(b + off, zeros, n - off < sizeof zeros ? n - off : sizeof zeros) != 0)
			return 0;
	return 1;
}

static void test_calloc_zeroes(void)
{
	const size_t sizes[] = {0, 1, 15, 16, 17, 100, 1000, 4096, 10000, 65536, 100000, 3 * MiB, 70 * MiB};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		char *p = M(calloc)(1, sizes[i]);
		REQUIRE(p != NULL);
		CHECK(aligned_to(p, 16));
		CHECK(all_zero(p, sizes[i]));
		M(free)(p);
		p = M(calloc)(sizes[i], 1);
		REQUIRE(p != NULL);
		CHECK(all_zero(p, sizes[i]));
		M(free)(p);
	}
}

/* A freed block full of garbage is the likeliest thing calloc gets back: it must still read as zeros. */
static void test_calloc_reuses_dirty(void)
{
	const size_t sizes[] = {8, 24, 48, 96, 200, 512, 1000, 3000, 8192, 40000, 200000, 2 * MiB};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		for (int round = 0; round < 20; round++) {
			void *blocks[8];
			for (int k = 0; k < 8; k++) {
				blocks[k] = M(malloc)(sizes[i]);
				REQUIRE(blocks[k] != NULL);
				memset(blocks[k], 0xA5, M(malloc_usable_size)(blocks[k]));
			}
			for (int k = 0; k < 8; k++)
				M(free)(blocks[k]);
			for (int k = 0; k < 8; k++) {
				blocks[k] = M(calloc)(sizes[i] / 8, 8);
				REQUIRE(blocks[k] != NULL);
				CHECK(all_zero(blocks[k], sizes[i]));
			}
			for (int k = 0; k < 8; k++)
				M(free)(blocks[k]);
		}
	}
	CHECK(test_heap_check() == 0);
}

static void test_calloc_overflow(void)
{
	const size_t pairs[][2] = {
		{SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32},
		{1, (size_t)PTRDIFF_MAX + 1}, {(size_t)PTRDIFF_MAX / 2 + 1, 2}, {SIZE_MAX, SIZE_MAX},
	};
	for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
		errno = 0;
		CHECK(M(calloc)(pairs[i][0], pairs[i][1]) == NULL);
		CHECK(errno == ENOMEM);
	}
	errno = 0;
	CHECK(M(calloc)(UNMAPPABLE / 16, 16) == NULL);
	CHECK(errno == ENOMEM);
	void *p = M(calloc)(0, 100), *q = M(calloc)(100, 0);
	CHECK(p != NULL && q != NULL && p != q);
	M(free)(p);
	M(free)(q);
}

/* --- realloc, reallocarray --------------------------------------------------------------------------- */

static void test_realloc_null_is_malloc(void)
{
	for (size_t n = 0; n < 5000; n += 37) {
		char *p = M(realloc)(NULL, n);
		REQUIRE(p != NULL);
		CHECK(aligned_to(p, 16));
		CHECK(M(malloc_usable_size)(p) >= n);
		memset(p, 1, n);
		M(free)(p);
	}
	char *p = M(realloc)(NULL, 5 * MiB);
	REQUIRE(p != NULL);
	memset(p, 2, 5 * MiB);
	M(free)(p);
}

/* Growing then shrinking through every size range; the common prefix must survive each move. */
static void test_realloc_preserves_contents(void)
{
	const size_t up[] = {1, 7, 16, 33, 100, 511, 1000, 4096, 8000, 30000, 70000, 300000, MiB + 5, 3 * MiB,
	                     16 * MiB + 3, 70 * MiB, 130 * MiB};
	const size_t nup = sizeof up / sizeof *up;
	const uintptr_t seed = 0x5eed;
	size_t cur = up[0];
	char *p = M(malloc)(cur);
	REQUIRE(p != NULL);
	test_fill_seed(p, cur, seed);
	/* up, down, then a zigzag between distant ranges */
	size_t path[3 * sizeof up / sizeof *up + 8];
	size_t np = 0;
	for (size_t i = 1; i < nup; i++)
		path[np++] = up[i];
	for (size_t i = nup - 1; i-- > 0;)
		path[np++] = up[i];
	const size_t zig[] = {70 * MiB, 3, 2 * MiB, 100, 100000, 17, 16 * MiB, 40};
	for (size_t i = 0; i < sizeof zig / sizeof *zig; i++)
		path[np++] = zig[i];
	for (size_t i = 0; i < np; i++) {
		size_t n = path[i];
		char *q = M(realloc)(p, n);
		REQUIRE(q != NULL);
		CHECK(aligned_to(q, 16));
		CHECK(M(malloc_usable_size)(q) >= n);
		size_t keep = cur < n ? cur : n;
		if (!test_verify_seed(q, keep, seed)) {
			fprintf(stderr, "  contents lost in realloc %zu -> %zu\n", cur, n);
			test_case_failed = 1;
		}
		test_fill_seed(q, n, seed);
		p = q;
		cur = n;
		CHECK(test_heap_check() == 0);
	}
	M(free)(p);
}

/* Small steps inside one range: the in-place paths. */
static void test_realloc_small_steps(void)
{
	const uintptr_t seed = 77;
	size_t cur = 1;
	char *p = M(malloc)(cur);
	REQUIRE(p != NULL);
	test_fill_seed(p, cur, seed);
	for (size_t n = 2; n < 300000; n += n / 8 + 1) {
		char *q = M(realloc)(p, n);
		REQUIRE(q != NULL);
		CHECK(test_verify_seed(q, cur, seed));
		test_fill_seed(q, n, seed);
		p = q;
		cur = n;
	}
	for (size_t n = cur; n > 1; n -= n / 8 + 1) {
		char *q = M(realloc)(p, n);
		REQUIRE(q != NULL);
		CHECK(test_verify_seed(q, n, seed));
		p = q;
	}
	M(free)(p);
	CHECK(test_heap_check() == 0);
}

/* Shrinking below half the usable size gives the rest back: the block may stay in place only while the new
 * size is at least half of it (mk__realloc_slow), so the result holds less than twice what was asked (16
 * bytes of rounding allowed). */
static void test_realloc_shrink_gives_space_back(void)
{
	const size_t sizes[] = {100, 1000, 5000, 40000, 100000, 300000, MiB, 2 * MiB, 3 * MiB, 40 * MiB};
	const unsigned divs[] = {3, 4, 8, 64};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		for (size_t d = 0; d < sizeof divs / sizeof *divs; d++) {
			char *p = M(malloc)(sizes[i]);
			REQUIRE(p != NULL);
			size_t u = M(malloc_usable_size)(p);
			size_t n = u / divs[d];
			test_fill_seed(p, n, 0x51);
			char *q = M(realloc)(p, n);
			REQUIRE(q != NULL);
			size_t got = M(malloc_usable_size)(q);
			CHECK(got >= n);
			if (test_under_memkit()) { /* memkit's rule; glibc keeps some mapped blocks whole */
				if (got >= 2 * n + 16)
					fprintf(stderr, "  realloc(%zu usable -> %zu) kept %zu usable bytes\n", u, n, got);
				CHECK(got < 2 * n + 16);
			}
			CHECK(test_verify_seed(q, n, 0x51));
			M(free)(q);
		}
	}
	CHECK(test_heap_check() == 0);
}

static void test_realloc_failure_keeps_block(void)
{
	const size_t sizes[] = {100, 5000, 200000, 2 * MiB, 70 * MiB};
	const size_t bad[] = {UNMAPPABLE, (size_t)PTRDIFF_MAX + 1, SIZE_MAX};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		char *p = M(malloc)(sizes[i]);
		REQUIRE(p != NULL);
		test_fill(p, sizes[i]);
		for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
			errno = 0;
			CHECK(M(realloc)(p, bad[k]) == NULL);
			CHECK(errno == ENOMEM);
			CHECK(test_verify(p, sizes[i]));
		}
		errno = 0;
		CHECK(M(reallocarray)(p, UNMAPPABLE / 8, 8) == NULL);
		CHECK(errno == ENOMEM);
		CHECK(test_verify(p, sizes[i]));
		CHECK(test_heap_check() == 0);
		M(free)(p);
	}
}

/* realloc(p, 0) frees p (glibc): freeing p again afterwards is then a double free, which must abort. */
static void realloc_zero_then_free(void *arg)
{
	size_t n = *(size_t *)arg;
	void *p = M(malloc)(n);
	fprintf(stderr, "block %p\n", p);
	if (M(realloc)(p, 0) != NULL)
		return; /* reaching _exit(0) fails the case */
	M(free)(p);
}

static void test_realloc_zero_frees(void)
{
	void *p = M(malloc)(100);
	REQUIRE(p != NULL);
	errno = 0;
	CHECK(M(realloc)(p, 0) == NULL);
	CHECK(test_heap_check() == 0);
	size_t n = 48;
	CHECK(test_expect_bad_free(realloc_zero_then_free, &n, NULL, "free(): double free of"));
	n = 4 * MiB; /* a huge block, kept in the cache of freed mappings: still known as freed */
	CHECK(test_expect_bad_free(realloc_zero_then_free, &n, NULL, "free(): double free of"));
}

static void test_reallocarray(void)
{
	int *a = M(reallocarray)(NULL, 10, sizeof(int));
	REQUIRE(a != NULL);
	for (int i = 0; i < 10; i++)
		a[i] = i * i;
	int *b = M(reallocarray)(a, 100000, sizeof(int));
	REQUIRE(b != NULL);
	for (int i = 0; i < 10; i++)
		CHECK(b[i] == i * i);
	const size_t pairs[][2] = {{SIZE_MAX, 2}, {(size_t)1 << 33, (size_t)1 << 33}, {SIZE_MAX / 4 + 1, 4}};
	for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
		errno = 0;
		CHECK(M(reallocarray)(b, pairs[i][0], pairs[i][1]) == NULL);
		CHECK(errno == ENOMEM);
		for (int k = 0; k < 10; k++)
			CHECK(b[k] == k * k);
		errno = 0;
		CHECK(M(reallocarray)(NULL, pairs[i][0], pairs[i][1]) == NULL);
		CHECK(errno == ENOMEM);
	}
	M(free)(b);
	CHECK(test_heap_check() == 0);
}

/* --- aligned allocation ------------------------------------------------------------------------------ */

static void test_posix_memalign_einval(void)
{
	const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 100, 4097, (size_t)3 << 20, SIZE_MAX};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		void *sentinel = (void *)0x1234;
		void *p = sentinel;
		CHECK(M(posix_memalign)(&p, bad[i], 64) == EINVAL);
		CHECK(p == sentinel);
	}
}

static void test_posix_memalign_enomem(void)
{
	void *sentinel = (void *)0x1234;
	void *p = sentinel;
	CHECK(M(posix_memalign)(&p, 64, (size_t)PTRDIFF_MAX + 1) == ENOMEM);
	CHECK(p == sentinel);
	CHECK(M(posix_memalign)(&p, 4096, UNMAPPABLE) == ENOMEM);
	CHECK(p == sentinel);
	errno = 0;
	CHECK(M(aligned_alloc)(64, SIZE_MAX - 100) == NULL);
	CHECK(errno == ENOMEM);
	errno = 0;
	CHECK(M(memalign)(256, UNMAPPABLE) == NULL);
	CHECK(errno == ENOMEM);
}

static void test_alignments_honoured(void)
{
	const size_t sizes[] = {0, 1, 24, 100, 1000, 4096, 5000, 100000, 2 * MiB + 3};
	for (size_t a = 8; a <= MiB; a *= 2) {
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
			size_t n = sizes[i];
			void *p = NULL;
			REQUIRE(M(posix_memalign)(&p, a, n) == 0);
			void *q = M(aligned_alloc)(a, n);
			void *r = M(memalign)(a, n);
			REQUIRE(p && q && r);
			void *all[3] = {p, q, r};
			for (int k = 0; k < 3; k++) {
				CHECK(aligned_to(all[k], a < 16 ? 16 : a));
				CHECK(M(malloc_usable_size)(all[k]) >= n);
				test_fill(all[k], n);
			}
			for (int k = 0; k < 3; k++) {
				CHECK(test_verify(all[k], n));
				if (k == 1)
					test_free_aligned_sized(all[k], a, n);
				else
					M(free)(all[k]);
			}
		}
		CHECK(test_heap_check() == 0);
	}
	/* small alignments are always met */
	for (size_t a = 1; a <= 8; a *= 2) {
		void *p = M(memalign)(a, 10);
		REQUIRE(p != NULL);
		CHECK(aligned_to(p, 16));
		M(free)(p);
	}
}

/* Many aligned blocks alive together: alignment must not come from luck with an empty heap. */
static void test_aligned_many_live(void)
{
	enum { N = 300 };
	void *p[N];
	size_t n[N];
	uint64_t rng = 42;
	for (int i = 0; i < N; i++) {
		size_t a = (size_t)16 << (test_rand(&rng) % 13); /* 16 .. 64 KiB */
		n[i] = test_rand(&rng) % 20000;
		p[i] = M(aligned_alloc)(a, n[i]);
		REQUIRE(p[i] != NULL);
		CHECK(aligned_to(p[i], a));
		test_fill(p[i], n[i]);
	}
	for (int i = 0; i < N; i += 2) {
		CHECK(test_verify(p[i], n[i]));
		M(free)(p[i]);
	}
	for (int i = 1; i < N; i += 2) {
		CHECK(test_verify(p[i], n[i]));
		M(free)(p[i]);
	}
	CHECK(test_heap_check() == 0);
}

/* memalign rounds a non-power-of-two alignment up (glibc); aligned_alloc refuses one (C17, memkit). */
static void test_memalign_rounds_bad_alignment(void)
{
	char *p = M(memalign)(48, 100);
	REQUIRE(p != NULL);
	CHECK(aligned_to(p, 64));
	M(free)(p);
	p = M(memalign)(3000, 100);
	REQUIRE(p != NULL);
	CHECK(aligned_to(p, 4096));
	M(free)(p);
	if (test_under_memkit()) {
		errno = 0;
		CHECK(M(aligned_alloc)(24, 100) == NULL);
		CHECK(errno == EINVAL);
		errno = 0;
		CHECK(M(aligned_alloc)(0, 100) == NULL);
		CHECK(errno == EINVAL);
	}
}

static void test_valloc_pvalloc(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 100000, 3 * MiB};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		size_t n = sizes[i];
		char *v = M(valloc)(n), *pv = M(pvalloc)(n);
		REQUIRE(v != NULL && pv != NULL);
		CHECK(aligned_to(v, page) && aligned_to(pv, page));
		CHECK(M(malloc_usable_size)(v) >= n);
		/* pvalloc rounds up to whole pages; memkit (not glibc 2.36) gives pvalloc(0) one page too */
		size_t rounded = n == 0 ? (test_under_memkit() ? page : 0) : (n + page - 1) / page * page;
		REQUIRE(M(malloc_usable_size)(pv) >= rounded);
		memset(v, 1, n);
		memset(pv, 2, rounded);
		M(free)(v);
		M(free)(pv);
	}
	errno = 0;
	CHECK(M(pvalloc)(SIZE_MAX - 10) == NULL);
	CHECK(errno == ENOMEM);
	CHECK(test_heap_check() == 0);
}

/* --- usable size, free ------------------------------------------------------------------------------- */

static void test_usable_size_writable(void)
{
	CHECK(M(malloc_usable_size)(NULL) == 0);
	void *held[64];
	size_t held_n[64];
	int nh = 0;
	for (size_t n = 0; n < 300000; n = n < 4096 ? n + 1 : n + n / 16) {
		char *p = M(malloc)(n);
		REQUIRE(p != NULL);
		size_t u = M(malloc_usable_size)(p);
		CHECK(u >= n);
		/* every usable byte written through a volatile pointer and read back */
		volatile unsigned char *v = (volatile unsigned char *)p;
		for (size_t i = 0; i < u; i++)
			v[i] = (unsigned char)(i * 13 + 5);
		size_t bad = 0;
		for (size_t i = 0; i < u; i++)
			bad += v[i] != (unsigned char)(i * 13 + 5);
		CHECK(bad == 0);
		test_fill(p, u);
		if (nh < 64 && n % 97 == 0) {
			held[nh] = p; /* neighbours stay live, so an overrun into them shows in their pattern */
			held_n[nh++] = u;
		} else {
			CHECK(test_verify(p, u));
			M(free)(p);
		}
	}
	for (int i = 0; i < nh; i++) {
		CHECK(test_verify(held[i], held_n[i]));
		M(free)(held[i]);
	}
	CHECK(test_heap_check() == 0);
}

static void test_free_preserves_errno(void)
{
	const size_t sizes[] = {1, 16, 100, 1000, 30000, 200000, 2 * MiB, 70 * MiB};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		void *p = M(malloc)(sizes[i]);
		REQUIRE(p != NULL);
		memset(p, 1, sizes[i]);
		errno = 1234;
		M(free)(p);
		CHECK(errno == 1234);
		p = M(malloc)(sizes[i]);
		REQUIRE(p != NULL);
		errno = 4321;
		test_free_sized(p, sizes[i]);
		CHECK(errno == 4321);
	}
	/* many frees in a row: a free that flushes a cache or returns a span to the OS must keep errno too */
	enum { N = 20000 };
	void **v = M(malloc)(N * sizeof *v);
	REQUIRE(v != NULL);
	for (int i = 0; i < N; i++)
		v[i] = M(malloc)((size_t)(i % 700) * 16 + 1);
	int kept = 1;
	for (int i = 0; i < N; i++) {
		errno = 1234;
		M(free)(v[i]);
		kept &= errno == 1234;
	}
	CHECK(kept);
	errno = 1234;
	M(free)(v);
	M(free)(NULL);
	CHECK(errno == 1234);
	M(malloc_trim)(0);
}

/* free keeps errno even when a call inside it fails.  A munmap fails (ENOMEM) when it would split a mapping
 * while the process is at vm.max_map_count: so the child gives a huge block too big for memkit's cache of
 * freed mappings (unmapped at once by free) a neighbour page on each side, which the kernel merges into
 * one mapping with it, fills the rest of the map count with one-page mappings, and frees the block with
 * errno = 1234.  Exit status: 0 errno kept, 1 errno changed, 2 the munmap did not fail (the block is
 * gone: nothing was shown), 3 the set-up failed.
 * TODO: when src/os/ can fail munmap/madvise on demand (an mk__os_inject_fail_ex or the like), inject that
 * into every kind of free too (small, remote, large, huge, segment release). */
#ifndef MK_TEST_SANITIZE
/* 1 when one mapping (one line of /proc/self/maps) covers [p - 1, p + len + 1), so unmapping [p, p + len)
 * needs a split. */
static int mapping_surrounds(const char *p, size_t len)
{
	static char maps[1 << 20];
	int fd = open("/proc/self/maps", O_RDONLY);
	if (fd < 0)
		return 0;
	size_t got = 0;
	ssize_t r;
	while (got < sizeof maps - 1 && (r = read(fd, maps + got, sizeof maps - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	maps[got] = 0;
	for (char *line = maps; line && *line;) {
		uintptr_t start, end;
		if (sscanf(line, "%lx-%lx", &start, &end) == 2 && start < (uintptr_t)p && end > (uintptr_t)p + len)
			return 1;
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	return 0;
}

static void free_with_failing_munmap(void *arg)
{
	(void)arg;
	size_t n = 70 * MiB, page = 4096, len = (n + page - 1) / page * page;
	char *p = NULL;
	/* a neighbour page on each side (where the place is free; a mapping already there may have merged with
	 * the block too); a block whose mapping does not then reach past both ends is kept and another tried */
	for (int attempt = 0; attempt < 8 && !p; attempt++) {
		char *c = M(malloc)(n);
		if (!c)
			_exit(3);
		memset(c, 1, n);
		const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
		char *lo = mmap(c - page, page, PROT_READ | PROT_WRITE, flags, -1, 0);
		char *hi = mmap(c + len, page, PROT_READ | PROT_WRITE, flags, -1, 0);
		if (lo == c - page)
			lo[0] = 1;
		if (hi == c + len)
			hi[0] = 1;
		if (mapping_surrounds(c, len))
			p = c;
	}
	if (!p)
		_exit(3);
	/* one-page mappings of alternating protection never merge: each costs one map entry */
	for (long k = 0; k < 1000000; k++)
		if (mmap(NULL, page, k % 2 ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
			break;
	errno = 1234;
	M(free)(p);
	int kept = errno == 1234;
	/* the munmap failed: the block's pages are still mapped (msync says ENOMEM for unmapped ones) */
	int still_mapped = msync(p + len / 2 / page * page, page, MS_ASYNC) == 0;
	_exit(!still_mapped ? 2 : kept ? 0 : 1);
}

#endif

/* errno across frees of every kind in a child with MEMKIT_PURGE_DELAY=0, where frees release segments
 * and unmap huge blocks at once.  Exit status: the number of frees that changed errno. */
static void *free_remote_thread(void *arg)
{
	void **v = arg;
	int changed = 0;
	for (int i = 0; i < 2000; i++) {
		errno = 4321;
		M(free)(v[i]);
		changed += errno != 4321;
	}
	return (void *)(intptr_t)changed;
}

static int child_errno(void)
{
	int changed = 0;
	static void *v[2000];
	/* small blocks, freed by another thread */
	for (int i = 0; i < 2000; i++)
		v[i] = M(malloc)((size_t)(i % 50) * 16 + 8);
	pthread_t t;
	if (pthread_create(&t, NULL, free_remote_thread, v) != 0)
		return 100;
	void *r = NULL;
	pthread_join(t, &r);
	changed += (int)(intptr_t)r;
	/* small (own thread, a whole segment's worth so that spans and the segment go back), large, huge */
	const size_t sizes[] = {16, 1000, 100000, 300000, 2 * MiB, 3 * MiB, 40 * MiB, 80 * MiB};
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		size_t count = sizes[k] < MiB ? 12 * MiB / sizes[k] : 4;
		if (count > 2000)
			count = 2000;
		for (size_t i = 0; i < count; i++)
			if ((v[i] = M(malloc)(sizes[k])) != NULL)
				memset(v[i], 1, sizes[k] < 4096 ? sizes[k] : 4096);
		for (size_t i = 0; i < count; i++) {
			errno = 1234;
			M(free)(v[i]);
			changed += errno != 1234;
		}
	}
	return changed;
}

static int run_self(char **env, char *out, size_t cap);

static void test_free_keeps_errno_when_munmap_fails(void)
{
	if (!test_under_memkit())
		return; /* glibc's free makes no such promise */
	char out[4096];
	int st;
#ifndef MK_TEST_SANITIZE /* a sanitizer runtime's own munmap calls would fail at the map-count limit too */
	/* The secure build's huge block starts 16 bytes into its mapping (the header): the child's neighbour
	 * pages cannot be placed against it, so its free never splits a mapping (MK_TEST_SECURE=1). */
	if (!getenv("MK_TEST_SECURE"))
		st = test_capture(free_with_failing_munmap, NULL, out, sizeof out);
	else
		st = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "  child: status %#x (1: errno changed, 2: munmap did not fail, 3: no set-up) %s\n", st,
		        out);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
#endif
	char *env[] = {(char *)"MEMKIT_PURGE_DELAY=0", (char *)"MK_TEST_CHILD=errno", NULL};
	st = run_self(env, out, sizeof out);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "  MEMKIT_PURGE_DELAY=0 child: status %#x (frees that changed errno) %s\n", st, out);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_free_sized_variants(void)
{
	for (size_t n = 1; n < 3 * MiB; n = n * 3 + 1) {
		void *p = M(malloc)(n);
		REQUIRE(p != NULL);
		memset(p, 3, n);
		test_free_sized(p, n);
		p = M(aligned_alloc)(256, n);
		REQUIRE(p != NULL);
		test_free_aligned_sized(p, 256, n);
	}
	test_free_sized(NULL, 0);
	test_free_aligned_sized(NULL, 64, 0);
	CHECK(test_heap_check() == 0);
}

/* --- trim, statistics, options ----------------------------------------------------------------------- */

/* Makes a large heap, every byte written: HEAP_SMALL small blocks, HEAP_LARGE large ones (spans inside
 * segments) and 8 huge ones; then frees them all but a few pins (one small block in PIN_SMALL, one large
 * block in PIN_LARGE), which keep every segment mapped, so that only purging (madvise), not unmapping,
 * can give the freed pages of the segments back.  Trims when asked.  RSS is taken before the heap is made
 * (base), when it is full, and after the frees (and the trim); the pins are freed last. */
enum { HEAP_SMALL = 200000, HEAP_SMALL_SIZE = 256, HEAP_LARGE = 128, PIN_SMALL = 4096, PIN_LARGE = 8 };
#define HEAP_LARGE_SIZE ((size_t)256 * KiB)
#define HEAP_LIVE ((size_t)HEAP_SMALL * HEAP_SMALL_SIZE + HEAP_LARGE * HEAP_LARGE_SIZE + 32 * MiB)
/* What may stay resident after the frees: the pinned blocks (a small one keeps its 64 KiB span), the
 * pointer array, and 4 MiB for the heap's bookkeeping and the rest of the process. */
#define HEAP_RESIDUE ((HEAP_SMALL / PIN_SMALL + 1) * 64 * KiB + HEAP_LARGE / PIN_LARGE * HEAP_LARGE_SIZE + \
                      HEAP_SMALL * sizeof(void *) + 4 * MiB)

struct heap_rss {
	size_t base, full, after;
	int trimmed;      /* what malloc_trim(0) returned, when asked to trim */
	int trimmed_again; /* a second malloc_trim(0) right after, with nothing more to give back */
};

static int fill_and_free_heap(int trim, struct heap_rss *r)
{
	M(malloc_trim)(0);
	r->base = test_rss();
	void **v = M(malloc)(HEAP_SMALL * sizeof *v);
	void *large[HEAP_LARGE], *big[8];
	if (!v)
		return 0;
	for (int i = 0; i < HEAP_SMALL; i++)
		if (!(v[i] = M(malloc)(HEAP_SMALL_SIZE)) || !memset(v[i], 7, HEAP_SMALL_SIZE))
			return 0;
	for (int i = 0; i < HEAP_LARGE; i++)
		if (!(large[i] = M(malloc)(HEAP_LARGE_SIZE)) || !memset(large[i], 9, HEAP_LARGE_SIZE))
			return 0;
	for (int i = 0; i < 8; i++)
		if (!(big[i] = M(malloc)(4 * MiB)) || !memset(big[i], 8, 4 * MiB))
			return 0;
	r->full = test_rss();
	for (int i = 0; i < HEAP_SMALL; i++)
		if (i % PIN_SMALL != 0)
			M(free)(v[i]);
	for (int i = 0; i < HEAP_LARGE; i++)
		if (i % PIN_LARGE != 0)
			M(free)(large[i]);
	for (int i = 0; i < 8; i++)
		M(free)(big[i]);
	if (trim) {
		r->trimmed = M(malloc_trim)(0);
		r->trimmed_again = M(malloc_trim)(0);
	}
	r->after = test_rss();
	fprintf(stderr, "  rss %zu KiB before the heap, %zu KiB full, %zu KiB after %s (freed %zu KiB of %zu)%s\n",
	        r->base / KiB, r->full / KiB, r->after / KiB, trim ? "trim" : "free", HEAP_LIVE / KiB,
	        HEAP_LIVE / KiB, trim ? "" : " (no trim)");
	for (int i = 0; i < HEAP_SMALL; i += PIN_SMALL)
		M(free)(v[i]);
	for (int i = 0; i < HEAP_LARGE; i += PIN_LARGE)
		M(free)(large[i]);
	M(free)(v);
	return 1;
}

/* The freed memory must really leave: RSS back within HEAP_RESIDUE of what it was before the heap. */
static int heap_rss_returned(const struct heap_rss *r)
{
	return r->full >= r->base + HEAP_LIVE / 4 * 3 && r->after <= r->base + HEAP_RESIDUE;
}

#ifndef MK_TEST_SANITIZE
static void test_malloc_trim_returns_memory(void)
{
	struct heap_rss r;
	REQUIRE(fill_and_free_heap(1, &r));
	CHECK(heap_rss_returned(&r));
	/* glibc: 1 when memory was given back to the system, 0 when none could be */
	CHECK(r.trimmed == 1);
	if (test_under_memkit())
		CHECK(r.trimmed_again == 0);
	CHECK(test_heap_check() == 0);
}

/* A steady workload (a million malloc/free pairs of mixed sizes, 1000 blocks live: slots 0-899 hold
 * 1-512 bytes, 900-994 up to 64 KiB, 995-999 up to 3 MiB, so at most about 22 MiB live) must not grow: the
 * peaks of RSS and of the memory the allocator has mapped (mallinfo2 arena + hblkhd) in the second half
 * are within STEADY_GROWTH of those in the first; RSS stays within STEADY_BOUND of where it started (the
 * live data, plus the freed huge mappings memkit keeps resident for reuse: 48 MiB, which is all that
 * its 16 cached mappings of blocks of at most 3 MiB can hold, so the floor's rise to 128 MiB while a
 * program wants back at once what was just purged cannot apply here) and the mapped memory within
 * STEADY_MAPPED (memkit: about 20 segments of 4 MiB, partly purged, and the huge blocks). */
#define STEADY_GROWTH ((size_t)16 * MiB)
#define STEADY_BOUND ((size_t)80 * MiB)
#define STEADY_MAPPED ((size_t)128 * MiB)
static void test_steady_state_memory_bounded(void)
{
	enum { SLOTS = 1000, STEPS = 1000000 };
	static char *p[SLOTS];
	uint64_t rng = 0x51EAD;
	M(malloc_trim)(0);
	size_t base = test_rss(), warm_rss = 0, warm_mapped = 0, max_rss = 0, max_mapped = 0;
	for (int step = 0; step < STEPS; step++) {
		int s = (int)(test_rand(&rng) % SLOTS);
		M(free)(p[s]);
		size_t n = s < 900 ? 1 + test_rand(&rng) % 512 : s < 995 ? 513 + test_rand(&rng) % (64 * KiB)
		                                                       : 64 * KiB + test_rand(&rng) % (3 * MiB - 64 * KiB);
		p[s] = M(malloc)(n);
		REQUIRE(p[s] != NULL);
		for (size_t off = 0; off < n; off += 4096) /* every page touched, so a leak shows in RSS */
			p[s][off] = 1;
		p[s][n - 1] = 2;
		if (step % 10000 == 9999) {
			struct mallinfo2 mi = M(mallinfo2)();
			size_t rss = test_rss(), mapped = mi.arena + mi.hblkhd;
			if (step < STEPS / 2) {
				warm_rss = rss > warm_rss ? rss : warm_rss;
				warm_mapped = mapped > warm_mapped ? mapped : warm_mapped;
			} else {
				max_rss = rss > max_rss ? rss : max_rss;
				max_mapped = mapped > max_mapped ? mapped : max_mapped;
			}
		}
	}
	fprintf(stderr, "  rss %zu KiB at start, peak %zu KiB in the first half, %zu KiB in the second; mapped: peak "
	        "%zu KiB, then %zu KiB\n", base / KiB, warm_rss / KiB, max_rss / KiB, warm_mapped / KiB,
	        max_mapped / KiB);
	CHECK(max_rss <= warm_rss + STEADY_GROWTH);
	CHECK(max_rss <= base + STEADY_BOUND);
	if (test_under_memkit()) { /* glibc counts its arena differently (sbrk top, mmap threshold moving) */
		CHECK(max_mapped <= warm_mapped + STEADY_GROWTH);
		CHECK(max_mapped <= STEADY_MAPPED);
	}
	for (int s = 0; s < SLOTS; s++) {
		M(free)(p[s]);
		p[s] = NULL;
	}
	CHECK(test_heap_check() == 0);
}
#endif

static void test_malloc_trim_after_churn(void)
{
	for (int round = 0; round < 3; round++) {
		int r = M(malloc_trim)(0);
		CHECK(r == 0 || r == 1);
		void *p = M(malloc)(1000);
		REQUIRE(p != NULL);
		memset(p, 1, 1000);
		M(free)(p);
		r = M(malloc_trim)(1 * MiB);
		CHECK(r == 0 || r == 1);
		if (test_under_memkit()) /* nothing was freed since: nothing to give back */
			CHECK(M(malloc_trim)(0) == 0);
	}
	CHECK(test_heap_check() == 0);
}
static void test_mallinfo(void)
{
	enum { N = 1000, SZ = 8192 };
	static void *v[N];
	struct mallinfo2 m0 = M(mallinfo2)();
	for (int i = 0; i < N; i++) {
		v[i] = M(malloc)(SZ);
		REQUIRE(v[i] != NULL);
		memset(v[i], 1, SZ);
	}
	void *big = M(malloc)(16 * MiB);
	REQUIRE(big != NULL);
	struct mallinfo2 m1 = M(mallinfo2)();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* mallinfo is part of the contract */
	struct mallinfo mi = M(mallinfo)();
#pragma GCC diagnostic pop
	size_t live = (size_t)N * SZ + 16 * MiB;
	fprintf(stderr, "  mallinfo2: arena %zu uordblks %zu hblkhd %zu fordblks %zu\n", m1.arena, m1.uordblks,
	        m1.hblkhd, m1.fordblks);
	CHECK(m1.uordblks + m1.hblkhd >= live);
	CHECK(m1.uordblks + m1.hblkhd >= m0.uordblks + m0.hblkhd + live);
	/* the int version is the same figures, clamped */
	CHECK((size_t)mi.uordblks == (m1.uordblks > INT32_MAX ? (size_t)INT32_MAX : m1.uordblks));
	CHECK((size_t)mi.hblkhd == (m1.hblkhd > INT32_MAX ? (size_t)INT32_MAX : m1.hblkhd));
	for (int i = 0; i < N; i++)
		M(free)(v[i]);
	M(free)(big);
	struct mallinfo2 m2 = M(mallinfo2)();
	CHECK(m2.uordblks + m2.hblkhd + live / 2 <= m1.uordblks + m1.hblkhd);
}

/* memkit's statistics report (malloc_stats, MEMKIT_STATS=1 at exit), parsed: lines "memkit[PID]: NAME VALUE
 * UNIT", every one with this child's pid. */
struct mk_report {
	size_t segments, mapped_kib, small_kib, unpurged_kib, huge, huge_kib, cached_kib, heaps, parked;
};

/* The value of the line NAME of the report; 0 when missing (and *ok cleared). */
static size_t report_value(const char *out, const char *name, int *ok)
{
	for (const char *line = strstr(out, "memkit["); line; line = strstr(line + 1, "\nmemkit[")) {
		long pid;
		char key[64];
		unsigned long long v;
		if (*line == '\n')
			line++;
		if (sscanf(line, "memkit[%ld]: %63s %llu", &pid, key, &v) == 3 && strcmp(key, name) == 0)
			return (size_t)v;
	}
	*ok = 0;
	return 0;
}

static int parse_report(const char *out, struct mk_report *r)
{
	int ok = strstr(out, "]: statistics") != NULL;
	r->segments = report_value(out, "segments.current", &ok);
	r->mapped_kib = report_value(out, "segments.bytes", &ok) >> 10;
	r->small_kib = report_value(out, "small.bytes", &ok) >> 10;
	r->unpurged_kib = report_value(out, "free.unpurged", &ok) >> 10;
	r->huge = report_value(out, "huge.blocks", &ok);
	r->huge_kib = report_value(out, "huge.bytes", &ok) >> 10;
	r->cached_kib = report_value(out, "huge.cached_bytes", &ok) >> 10;
	r->heaps = report_value(out, "heaps.current", &ok);
	r->parked = report_value(out, "heaps.parked", &ok);
	return ok;
}

/* A report taken with `huge` huge blocks of huge_kib KiB each live, and some small blocks. */
static int report_plausible(const char *out, size_t huge, size_t huge_kib)
{
	struct mk_report r;
	if (!parse_report(out, &r)) {
		fprintf(stderr, "  no complete statistics report in: %s\n", out);
		return 0;
	}
	int ok = r.segments > 0 && r.mapped_kib >= r.segments * 4096 && r.small_kib > 0 &&
	         r.small_kib <= r.mapped_kib && r.unpurged_kib <= r.mapped_kib && r.huge == huge &&
	         r.huge_kib >= huge * huge_kib && r.huge_kib <= huge * (huge_kib + 64) && r.heaps >= 1 &&
	         r.parked <= r.heaps;
	if (!ok)
		fprintf(stderr, "  implausible report (want %zu huge blocks of %zu KiB): %s\n", huge, huge_kib, out);
	return ok;
}

enum { STATS_HUGE = 3 };
#define STATS_HUGE_SIZE (3 * MiB)

static void stats_child(void *arg)
{
	(void)arg;
	void *p = M(malloc)(1000), *h[STATS_HUGE];
	for (int i = 0; i < STATS_HUGE; i++)
		h[i] = M(malloc)(STATS_HUGE_SIZE);
	M(malloc_stats)();
	M(free)(p);
	for (int i = 0; i < STATS_HUGE; i++)
		M(free)(h[i]);
	_exit(0);
}

static void test_malloc_stats(void)
{
	static char out[65536];   /* the report has a line per size class used */
	int status = test_capture(stats_child, NULL, out, sizeof out);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (test_under_memkit())
		CHECK(report_plausible(out, STATS_HUGE, STATS_HUGE_SIZE / KiB));
	else /* glibc's report */
		CHECK(strstr(out, "system bytes") != NULL && strstr(out, "in use bytes") != NULL);
}

/* glibc: mallopt returns 1 on success, 0 on error.  memkit accepts every parameter glibc knows, whatever the
 * value, and ignores it (1); it refuses the ones glibc does not know (0), where glibc itself says 1. */
static void test_mallopt(void)
{
	const int known[] = {M_MXFAST, M_NLBLKS, M_GRAIN, M_KEEP, M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD,
	                     M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB, M_ARENA_TEST, M_ARENA_MAX};
	for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
		int r = M(mallopt)(known[i], 64);
		if (r != 1)
			fprintf(stderr, "  mallopt(%d, 64) = %d\n", known[i], r);
		CHECK(r == 1);
		if (test_under_memkit()) {
			CHECK(M(mallopt)(known[i], 0) == 1);
			CHECK(M(mallopt)(known[i], -1) == 1);
			CHECK(M(mallopt)(known[i], 1 << 30) == 1);
		}
	}
	if (test_under_memkit()) {
		const int unknown[] = {0, 5, -9, 12345, -12345};
		for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++)
			CHECK(M(mallopt)(unknown[i], 1) == 0);
	}
	void *p = M(malloc)(100); /* the allocator still works after being "tuned" */
	CHECK(p != NULL);
	M(free)(p);
}

/* Runs this program again as a child (argv[1] = "--work") with extra environment, capturing stderr. */
static void exec_self(void *env)
{
	for (char **e = env; *e; e++)
		putenv(*e);
	execl("/proc/self/exe", "contract", "--work", (char *)NULL);
	_exit(127);
}

/* env: a NULL-terminated list of NAME=VALUE. */
static int run_self(char **env, char *out, size_t cap) { return test_capture(exec_self, env, out, cap); }

static int child_work(void)
{
	void *v[1000];
	for (int i = 0; i < 1000; i++)
		v[i] = M(malloc)((size_t)i * 40);
	for (int i = 0; i < 1000; i++)
		M(free)(v[i]);
	return test_heap_check() == 0 ? 0 : 1;
}

/* MK_TEST_CHILD=stats: exits with small blocks and STATS_HUGE huge ones live, for the report at exit. */
static int child_stats(void)
{
	for (int i = 0; i < 100; i++)
		if (!M(malloc)(100))
			return 1;
	for (int i = 0; i < STATS_HUGE; i++)
		if (!M(malloc)(STATS_HUGE_SIZE))
			return 1;
	return 0;
}

/* The child of MEMKIT_PURGE_DELAY=0: freed pages go back at once, without malloc_trim. */
static int child_purge(void)
{
	struct heap_rss r;
	if (!fill_and_free_heap(0, &r))
		return 2;
	return heap_rss_returned(&r) ? 0 : 1;
}

/* A line of out that starts with `start` and contains each of the words (NULL-terminated). */
static int has_line(const char *out, const char *start, const char *const *words)
{
	for (const char *line = out; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[1024];
		if (len < sizeof buf) {
			memcpy(buf, line, len);
			buf[len] = 0;
			int ok = strncmp(buf, start, strlen(start)) == 0;
			for (const char *const *w = words; ok && *w; w++)
				ok = strstr(buf, *w) != NULL;
			if (ok)
				return 1;
		}
		line = end ? end + 1 : NULL;
	}
	return 0;
}

static void test_env_options(void)
{
	static char out[65536];
	char *none[] = {NULL};
	int st = run_self(none, out, sizeof out);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(strlen(out) == 0);
	if (strlen(out))
		fprintf(stderr, "  unexpected output without options: %s\n", out);
	if (!test_under_memkit())
		return;
	/* the report at exit, with what was live then */
	char *stats[] = {(char *)"MEMKIT_STATS=1", (char *)"MK_TEST_CHILD=stats", NULL};
	st = run_self(stats, out, sizeof out);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(report_plausible(out, STATS_HUGE, STATS_HUGE_SIZE / KiB));
	/* verbose: one line of options at start, with the defaults */
	char *verbose[] = {(char *)"MEMKIT_VERBOSE=1", NULL};
	st = run_self(verbose, out, sizeof out);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	const char *defaults[] = {"purge delay 10 ms", "purge limit adaptive", "statistics at exit off", NULL};
	CHECK(has_line(out, "memkit: ", defaults));
	CHECK(strstr(out, "]: statistics") == NULL);
	/* and with the values set */
	char *all[] = {(char *)"MEMKIT_VERBOSE=1", (char *)"MEMKIT_STATS=1", (char *)"MEMKIT_PURGE_DELAY=25",
	               (char *)"MEMKIT_PURGE_LIMIT=2M", (char *)"MK_TEST_CHILD=stats", NULL};
	st = run_self(all, out, sizeof out);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	const char *set[] = {"purge delay 25 ms", "purge limit 2097152 bytes", "statistics at exit on", NULL};
	CHECK(has_line(out, "memkit: ", set));
	CHECK(report_plausible(out, STATS_HUGE, STATS_HUGE_SIZE / KiB));
	if (!has_line(out, "memkit: ", set))
		fprintf(stderr, "  MEMKIT_VERBOSE output: %s\n", out);
#ifndef MK_TEST_SANITIZE
	char *purge[] = {(char *)"MEMKIT_PURGE_DELAY=0", (char *)"MK_TEST_CHILD=purge", NULL};
	st = run_self(purge, out, sizeof out);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "  MEMKIT_PURGE_DELAY=0 child: status %#x, %s", st, out);
	else
		fprintf(stderr, "%s", out);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
#endif
}

/* --- bad input --------------------------------------------------------------------------------------- */

static void do_free(void *p) { M(free)(p); }

static void double_free(void *p)
{
	M(free)(p);
	M(free)(p);
}

static void double_free_between(void *p)
{
	M(free)(p);
	void *other = M(malloc)(16); /* a different class: the freed block is not handed out again */
	M(free)(p);
	M(free)(other);
}

static char static_block[256] __attribute__((aligned(64)));

static void free_stack(void *arg)
{
	(void)arg;
	char local[128] __attribute__((aligned(16)));
	memset(local, 0, sizeof local);
	fprintf(stderr, "stack %p\n", (void *)local);
	M(free)(local);
}

static void test_double_free_small(void)
{
	const size_t sizes[] = {8, 64, 1000, 20000};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		void *p = M(malloc)(sizes[i]);
		REQUIRE(p != NULL);
		CHECK(test_expect_bad_free(double_free, p, p, "free(): double free of"));
		CHECK(test_expect_bad_free(double_free_between, p, p, "free(): double free of"));
		M(free)(p);
	}
}

/* A large block (a span of its own) and a huge one that the cache of freed mappings keeps are still known
 * after free: a second free is a double free.  A huge block too big for that cache (over 64 MiB) is unmapped
 * at once, so its second free is of a pointer memkit no longer knows: invalid pointer. */
static void test_double_free_large(void)
{
	const struct { size_t n; const char *what; } cases[] = {
		{300000, "free(): double free of"}, {2 * MiB, "free(): double free of"},
		{40 * MiB, "free(): double free of"}, {70 * MiB, "free(): invalid pointer"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		void *p = M(malloc)(cases[i].n);
		REQUIRE(p != NULL);
		CHECK(test_expect_bad_free(double_free, p, p, cases[i].what));
		M(free)(p);
	}
}

static void test_free_stack_pointer(void)
{
	/* the child prints its stack address first; the abort line must name that address */
	CHECK(test_expect_bad_free(free_stack, NULL, NULL, "free(): invalid pointer"));
}

static void test_free_foreign_pointer(void)
{
	CHECK(test_expect_bad_free(do_free, static_block, static_block, "free(): invalid pointer"));
	char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(m != MAP_FAILED);
	CHECK(test_expect_bad_free(do_free, m, m, "free(): invalid pointer"));
	CHECK(test_expect_bad_free(do_free, m + 4096, m + 4096, "free(): invalid pointer"));
	munmap(m, 1 << 16);
#ifdef MK_TEST_PREFIXED
	/* in this build malloc is the C library's: its blocks are another allocator's */
	void *g = malloc(100);
	CHECK(test_expect_bad_free(do_free, g, g, "free(): invalid pointer"));
	free(g);
#endif
}

static void test_free_interior_pointer(void)
{
	char *p = M(malloc)(64);
	REQUIRE(p != NULL);
	CHECK(test_expect_bad_free(do_free, p + 16, p + 16, "free(): interior pointer"));
	M(free)(p);
	p = M(malloc)(3000);
	REQUIRE(p != NULL);
	CHECK(test_expect_bad_free(do_free, p + 1024, p + 1024, "free(): interior pointer"));
	M(free)(p);
	p = M(malloc)(300000); /* a large block: a span of its own */
	REQUIRE(p != NULL);
	CHECK(test_expect_bad_free(do_free, p + 4096, p + 4096, "free(): interior pointer"));
	M(free)(p);
	/* inside a huge block: memkit knows huge blocks by their start only, so this pointer is none of its */
	p = M(malloc)(4 * MiB);
	REQUIRE(p != NULL);
	CHECK(test_expect_bad_free(do_free, p + 8192, p + 8192, "free(): invalid pointer"));
	M(free)(p);
	CHECK(test_heap_check() == 0);
}

/* --- randomized workload ----------------------------------------------------------------------------- */

static size_t random_size(uint64_t *rng)
{
	uint64_t r = test_rand(rng) % 1000;
	if (r < 700)
		return test_rand(rng) % 513;
	if (r < 900)
		return 512 + test_rand(rng) % 65536;
	if (r < 985)
		return 65536 + test_rand(rng) % (2 * MiB);
	return 2 * MiB + test_rand(rng) % (8 * MiB);
}

static void test_random_workload_checked(void)
{
	enum { SLOTS = 256, STEPS = 4000 };
	static char *p[SLOTS];
	static size_t n[SLOTS];
	uint64_t rng = 0x1234567;
	for (int step = 0; step < STEPS; step++) {
		int s = (int)(test_rand(&rng) % SLOTS);
		int op = (int)(test_rand(&rng) % 6);
		if (p[s]) {
			if (!test_verify(p[s], n[s])) {
				fprintf(stderr, "  block %p (%zu bytes) corrupted at step %d\n", (void *)p[s], n[s], step);
				test_case_failed = 1;
			}
			if (op == 0) {
				size_t m = random_size(&rng);
				char *q = M(realloc)(p[s], m ? m : 1);
				REQUIRE(q != NULL);
				size_t keep = n[s] < m ? n[s] : m;
				CHECK(test_verify_seed(q, keep, (uintptr_t)p[s]));
				p[s] = q;
				n[s] = m ? m : 1;
			} else {
				M(free)(p[s]);
				p[s] = NULL;
				continue;
			}
		} else {
			n[s] = random_size(&rng);
			if (op == 1)
				p[s] = M(calloc)(1, n[s]);
			else if (op == 2)
				p[s] = M(aligned_alloc)((size_t)32 << (test_rand(&rng) % 8), n[s]);
			else
				p[s] = M(malloc)(n[s]);
			REQUIRE(p[s] != NULL);
			if (op == 1)
				CHECK(all_zero(p[s], n[s]));
		}
		test_fill(p[s], n[s]);
		int bad = test_heap_check();
		if (bad) {
			fprintf(stderr, "  check() found %d broken invariants after step %d\n", bad, step);
			test_case_failed = 1;
			return;
		}
	}
	for (int s = 0; s < SLOTS; s++) {
		if (p[s])
			CHECK(test_verify(p[s], n[s]));
		M(free)(p[s]);
		p[s] = NULL;
	}
	CHECK(test_heap_check() == 0);
}

/* --- the interposed names ---------------------------------------------------------------------------- */

#ifndef MK_TEST_PREFIXED
static const char *const exported[] = {
	"malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign",
	"valloc", "pvalloc", "malloc_usable_size", "free_sized", "free_aligned_sized", "malloc_trim",
	"malloc_stats", "mallinfo", "mallinfo2", "mallopt", "mk_check", "__libc_malloc", "__libc_free",
	"__libc_calloc", "__libc_realloc", "__libc_memalign", "__libc_valloc", "__libc_pvalloc",
	"__posix_memalign", "malloc_info", "mk_stats_print", "mk_stats_get",
};

static void test_names_resolve_to_memkit(void)
{
	for (size_t i = 0; i < sizeof exported / sizeof *exported; i++) {
		void *f = dlsym(RTLD_DEFAULT, exported[i]);
		Dl_info info;
		memset(&info, 0, sizeof info);
		if (!f || !dladdr(f, &info) || !info.dli_fname || !strstr(info.dli_fname, "libmemkit")) {
			fprintf(stderr, "  %s resolves to %p in %s\n", exported[i], f,
			        info.dli_fname ? info.dli_fname : "(nothing)");
			test_case_failed = 1;
		}
	}
}

static void test_libc_aliases_work(void)
{
	void *(*lmalloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
	void (*lfree)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
	void *(*lcalloc)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_calloc");
	void *(*lrealloc)(void *, size_t) = (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "__libc_realloc");
	void *(*lmemalign)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
	void *(*lvalloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_valloc");
	void *(*lpvalloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_pvalloc");
	int (*lposix)(void **, size_t, size_t) = (int (*)(void **, size_t, size_t))dlsym(RTLD_DEFAULT, "__posix_memalign");
	REQUIRE(lmalloc && lfree && lcalloc && lrealloc && lmemalign && lvalloc && lpvalloc && lposix);
	/* blocks from one name freed through another: all one allocator */
	char *a = lmalloc(100);
	REQUIRE(a != NULL);
	test_fill_seed(a, 100, 9);
	a = lrealloc(a, 100000);
	REQUIRE(a != NULL);
	CHECK(test_verify_seed(a, 100, 9));
	CHECK(malloc_usable_size(a) >= 100000);
	free(a);
	char *c = lcalloc(100, 10);
	REQUIRE(c != NULL);
	CHECK(all_zero(c, 1000));
	lfree(c);
	void *m = lmemalign(4096, 10), *v = lvalloc(10), *pv = lpvalloc(10), *pm = NULL;
	CHECK(lposix(&pm, 512, 10) == 0);
	REQUIRE(m && v && pv && pm);
	CHECK(aligned_to(m, 4096) && aligned_to(v, 4096) && aligned_to(pv, 4096) && aligned_to(pm, 512));
	free(m);
	lfree(v);
	free(pv);
	lfree(pm);
	void *x = malloc(77);
	lfree(x);
	CHECK(test_heap_check() == 0);
}

static void test_memkit_loaded(void)
{
	CHECK(test_under_memkit());
}
#endif

static void cases(void)
{
#ifndef MK_TEST_PREFIXED
	const char *expect = getenv("MK_EXPECT_MEMKIT");
	if (expect && strcmp(expect, "1") == 0) {
		RUN(test_memkit_loaded);
		RUN(test_names_resolve_to_memkit);
		RUN(test_libc_aliases_work);
	}
#endif
	RUN(test_malloc_alignment_every_size);
	RUN(test_malloc_alignment_huge);
	RUN(test_malloc_zero_unique);
	RUN(test_malloc_too_large);
	RUN(test_calloc_zeroes);
	RUN(test_calloc_reuses_dirty);
	RUN(test_calloc_overflow);
	RUN(test_realloc_null_is_malloc);
	RUN(test_realloc_preserves_contents);
	RUN(test_realloc_small_steps);
	RUN(test_realloc_shrink_gives_space_back);
	RUN(test_realloc_failure_keeps_block);
	RUN(test_realloc_zero_frees);
	RUN(test_reallocarray);
	RUN(test_posix_memalign_einval);
	RUN(test_posix_memalign_enomem);
	RUN(test_alignments_honoured);
	RUN(test_aligned_many_live);
	RUN(test_memalign_rounds_bad_alignment);
	RUN(test_valloc_pvalloc);
	RUN(test_usable_size_writable);
	RUN(test_free_preserves_errno);
	RUN(test_free_keeps_errno_when_munmap_fails);
	RUN(test_free_sized_variants);
#ifndef MK_TEST_SANITIZE
	RUN(test_malloc_trim_returns_memory);
	RUN(test_steady_state_memory_bounded);
#endif
	RUN(test_malloc_trim_after_churn);
	RUN(test_mallinfo);
	RUN(test_malloc_stats);
	RUN(test_mallopt);
	RUN(test_env_options);
	RUN(test_double_free_small);
	RUN(test_double_free_large);
	RUN(test_free_stack_pointer);
	RUN(test_free_foreign_pointer);
	RUN(test_free_interior_pointer);
	RUN(test_random_workload_checked);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--work") == 0) {
		const char *child = getenv("MK_TEST_CHILD");
		if (child && strcmp(child, "purge") == 0)
			return child_purge();
		if (child && strcmp(child, "stats") == 0)
			return child_stats();
		if (child && strcmp(child, "errno") == 0)
			return child_errno();
		return child_work();
	}
	return test_main(cases);
}
