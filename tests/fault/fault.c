/* Exhaustion: the OS layer refuses memory (mk__os_inject_fail) and the engine must answer NULL with
 * errno = ENOMEM, never crash or corrupt itself, and work again once memory is back.
 *
 * Linked with build/libmemkit-mk.a, so the mk_ names are the engine and plain malloc is the C library's:
 * the test's own bookkeeping uses malloc and is never refused. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "memkit.h"
#include "os/os.h"
#include "tests/common/test.h"
#include "tests/contract/api.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define FOREVER (1L << 40)

/* Blocks kept while the OS refuses: each holds test_pattern(seed, i) in all of its n bytes. */
struct held {
	void **p;
	size_t *n;
	uintptr_t *seed;
	size_t count, cap;
};

static void hold_seed(struct held *h, void *p, size_t n, uintptr_t seed)
{
	if (h->count == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 1024;
		h->p = realloc(h->p, h->cap * sizeof *h->p);
		h->n = realloc(h->n, h->cap * sizeof *h->n);
		h->seed = realloc(h->seed, h->cap * sizeof *h->seed);
		if (!h->p || !h->n || !h->seed)
			abort();
	}
	h->p[h->count] = p;
	h->n[h->count] = n;
	h->seed[h->count++] = seed;
}

/* A block filled with test_fill (the pattern seeded by its address). */
static void hold(struct held *h, void *p, size_t n) { hold_seed(h, p, n, (uintptr_t)p); }

/* Frees everything held, verifying every byte of each block's pattern first; returns how many were
 * damaged. */
static size_t release_all(struct held *h)
{
	size_t bad = 0;
	for (size_t i = 0; i < h->count; i++) {
		if (!test_verify_seed(h->p[i], h->n[i], h->seed[i])) {
			if (bad < 5)
				fprintf(stderr, "  block %p of %zu bytes damaged\n", h->p[i], h->n[i]);
			bad++;
		}
		mk_free(h->p[i]);
	}
	free(h->p);
	free(h->n);
	free(h->seed);
	memset(h, 0, sizeof *h);
	return bad;
}

/* Allocates blocks of n bytes until the allocator says no; caches and already-mapped space may satisfy
 * some first, but with the OS refusing everything a NULL must come within `budget` bytes.  Returns 1 when
 * it came, with ENOMEM. */
static int allocate_until_refused(struct held *h, size_t n, size_t budget)
{
	for (size_t used = 0; used <= budget; used += n) {
		errno = 0;
		void *p = mk_malloc(n);
		if (!p) {
			if (errno != ENOMEM)
				fprintf(stderr, "  malloc(%zu) failed with errno %d, not ENOMEM\n", n, errno);
			return errno == ENOMEM;
		}
		test_fill(p, n);
		hold(h, p, n);
	}
	fprintf(stderr, "  malloc(%zu) never failed within %zu bytes while the OS refused\n", n, budget);
	return 0;
}

/* Runs first, before any other mk_ call: the engine must survive failing to initialise. */
static void test_refused_from_the_start(void)
{
	struct held h = {0};
	mk__os_inject_fail(0, FOREVER);
	const size_t sizes[] = {16, 100, 1000, 20000, 200000, 2 * MiB, 100 * MiB};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		CHECK(allocate_until_refused(&h, sizes[i], 256 * MiB));
	mk__os_inject_fail(0, 0);
	CHECK(mk__os_injected_failures() > 0);
	CHECK(mk_check() == 0);
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		void *p = mk_malloc(sizes[i]);
		CHECK(p != NULL);
		if (p) {
			test_fill(p, sizes[i]);
			hold(&h, p, sizes[i]);
		}
	}
	CHECK(release_all(&h) == 0);
	CHECK(mk_check() == 0);
}

/* Every entry point refuses cleanly while the OS does, after the heap has been in use. */
static void test_refused_everywhere(void)
{
	struct held h = {0};
	char *keep_small = mk_malloc(100), *keep_large = mk_malloc(3 * MiB);
	REQUIRE(keep_small && keep_large);
	test_fill(keep_small, 100);
	test_fill(keep_large, 3 * MiB);
	long before = mk__os_injected_failures();
	mk__os_inject_fail(0, FOREVER);
	const size_t sizes[] = {8, 48, 512, 3000, 40000, 300000, 4 * MiB, 80 * MiB};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		CHECK(allocate_until_refused(&h, sizes[i], 256 * MiB));
	errno = 0;
	CHECK(mk_malloc(200 * MiB) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(mk_calloc(1, 200 * MiB) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(mk_aligned_alloc(MiB, 200 * MiB) == NULL && errno == ENOMEM);
	void *q = (void *)0x1234;
	CHECK(mk_posix_memalign(&q, 4096, 200 * MiB) == ENOMEM && q == (void *)0x1234);
	errno = 0;
	CHECK(mk_realloc(keep_small, 200 * MiB) == NULL && errno == ENOMEM);
	CHECK(test_verify(keep_small, 100));
	errno = 0;
	CHECK(mk_realloc(keep_large, 200 * MiB) == NULL && errno == ENOMEM);
	CHECK(test_verify(keep_large, 3 * MiB));
	CHECK(mk_check() == 0);
	CHECK(release_all(&h) == 0); /* freeing while the OS refuses must work too */
	CHECK(mk_check() == 0);
	mk__os_inject_fail(0, 0);
	CHECK(mk__os_injected_failures() > before);
	char *grown = mk_realloc(keep_large, 200 * MiB);
	REQUIRE(grown != NULL);
	CHECK(test_verify_seed(grown, 3 * MiB, (uintptr_t)keep_large));
	mk_free(grown);
	mk_free(keep_small);
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		void *p = mk_malloc(sizes[i]);
		CHECK(p != NULL);
		mk_free(p);
	}
	CHECK(mk_check() == 0);
}

/* One refusal at each point in turn: whichever OS call of a growth path fails (a reservation, a commit, a
 * remap), the engine must unwind to a consistent state. */
static void test_single_refusal_sweep(void)
{
	/* every byte of each block is written and verified, so the huge ones are kept to a few MiB */
	const size_t sizes[] = {24, 200, 1500, 9000, 50000, 700000, 3 * MiB, 9 * MiB};
	int refused = 0;
	for (long skip = 0; skip < 48; skip++) {
		for (long count = 1; count <= 3; count += 2) {
			struct held h = {0};
			mk__os_inject_fail(skip, count);
			for (int round = 0; round < 4; round++) {
				for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
					size_t n = sizes[i] + (size_t)round * 4096;
					errno = 0;
					void *p = round % 2 ? mk_aligned_alloc(4096, n) : mk_malloc(n);
					if (!p) {
						refused++;
						CHECK(errno == ENOMEM);
						continue;
					}
					test_fill_seed(p, n, 0xFA);
					void *r = mk_realloc(p, n * 3);
					if (r)
						p = r;
					else
						CHECK(errno == ENOMEM);
					CHECK(test_verify_seed(p, n, 0xFA)); /* moved or refused, the data stays */
					hold_seed(&h, p, n, 0xFA);  /* and is checked again, all n bytes, when freed */
				}
			}
			mk__os_inject_fail(0, 0);
			CHECK(release_all(&h) == 0);
			int bad = mk_check();
			if (bad) {
				fprintf(stderr, "  check() found %d broken invariants after refusal at call %ld\n", bad, skip);
				test_case_failed = 1;
				return;
			}
			mk_malloc_trim(0); /* next round starts from an empty heap, so growth paths run again */
		}
	}
	CHECK(refused > 0);
}

static _Atomic int stop_threads;
static _Atomic long thread_damage, thread_nulls;

struct worker_arg {
	uint64_t seed;
	long iterations; /* 0: until stop_threads */
};

static void *refused_worker(void *argp)
{
	struct worker_arg *arg = argp;
	uint64_t rng = arg->seed;
	void *ring[64] = {0};
	size_t sz[64] = {0};
	for (long it = 0; arg->iterations ? it < arg->iterations : !atomic_load(&stop_threads); it++) {
		unsigned s = (unsigned)it % 64;
		if (ring[s]) {
			if (!test_verify(ring[s], sz[s]))
				atomic_fetch_add(&thread_damage, 1);
			mk_free(ring[s]);
		}
		sz[s] = test_rand(&rng) % 64 == 0 ? 1 + test_rand(&rng) % (2 * MiB) : 1 + test_rand(&rng) % 2000;
		errno = 0;
		ring[s] = mk_malloc(sz[s]);
		if (!ring[s]) {
			atomic_fetch_add(&thread_nulls, 1);
			if (errno != ENOMEM)
				atomic_fetch_add(&thread_damage, 1);
			continue;
		}
		test_fill(ring[s], sz[s]);
	}
	for (int s = 0; s < 64; s++)
		mk_free(ring[s]);
	return NULL;
}

/* Threads allocate while refusals come and go in bursts; short-lived threads start (and set up their
 * heaps) in the middle of refusals too. */
static void test_refusals_under_threads(void)
{
	enum { T = 3, BURSTS = 200 };
	pthread_t t[T];
	struct worker_arg args[T];
	atomic_store(&stop_threads, 0);
	for (int i = 0; i < T; i++) {
		args[i] = (struct worker_arg){.seed = (uint64_t)i + 3, .iterations = 0};
		REQUIRE(pthread_create(&t[i], NULL, refused_worker, &args[i]) == 0);
	}
	long before = mk__os_injected_failures();
	for (int burst = 0; burst < BURSTS; burst++) {
		mk__os_inject_fail(burst % 7, 1 + burst % 5);
		struct worker_arg extra_arg = {.seed = 100 + (uint64_t)burst, .iterations = 300};
		pthread_t extra;
		REQUIRE(pthread_create(&extra, NULL, refused_worker, &extra_arg) == 0);
		pthread_join(extra, NULL);
	}
	atomic_store(&stop_threads, 1);
	mk__os_inject_fail(0, 0);
	for (int i = 0; i < T; i++)
		pthread_join(t[i], NULL);
	fprintf(stderr, "  %ld refusals injected, %ld allocations refused\n", mk__os_injected_failures() - before,
	        atomic_load(&thread_nulls));
	CHECK(mk__os_injected_failures() > before);
	CHECK(atomic_load(&thread_damage) == 0);
	CHECK(mk_check() == 0);
}

static void cases(void)
{
	RUN(test_refused_from_the_start);
	RUN(test_refused_everywhere);
	RUN(test_single_refusal_sweep);
	RUN(test_refusals_under_threads);
}

int main(void)
{
	return test_main(cases);
}
