/* A fully static program (-static) linked with build/libmemkit.a: memkit's malloc must replace the C
 * library's everywhere, including inside libc itself (stdio buffers, strdup, thread start-up), with no
 * duplicate symbols at link time.  The checks tell memkit from glibc by behaviour only memkit has. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "memkit.h"
#include "tests/common/test.h"
#include "tests/contract/abort.h"

/* malloc is memkit's when memkit's own introspection knows its blocks: the usable sizes agree and a
 * pointer from libc's internals (strdup, which calls malloc inside libc.a) passes mk_check's walk. */
static void test_malloc_is_memkit(void)
{
	for (size_t n = 1; n < 100000; n = n * 2 + 3) {
		unsigned char *p = malloc(n);
		REQUIRE(p != NULL);
		CHECK(malloc_usable_size(p) == mk_malloc_usable_size(p));
		for (size_t i = 0; i < n; i++)
			p[i] = (unsigned char)(i * 7 + n);
		size_t bad = 0;
		for (size_t i = 0; i < n; i++)
			bad += p[i] != (unsigned char)(i * 7 + n);
		CHECK(bad == 0);
		mk_free(p); /* memkit's free takes malloc's block: one allocator */
	}
	char *s = strdup("allocated inside libc");
	REQUIRE(s != NULL);
	CHECK(strcmp(s, "allocated inside libc") == 0);
	CHECK(mk_malloc_usable_size(s) >= strlen(s) + 1);
	free(s);
	CHECK(mk_check() == 0);
}

/* mallinfo2 is memkit's figures: they move with mk_malloc's allocations. */
static void test_mallinfo_is_memkit(void)
{
	struct mallinfo2 a = mallinfo2();
	char *p = mk_malloc(8 << 20);
	REQUIRE(p != NULL);
	memset(p, 0x3C, 8 << 20);
	struct mallinfo2 b = mallinfo2();
	CHECK(b.uordblks + b.hblkhd >= a.uordblks + a.hblkhd + (8 << 20));
	size_t bad = 0;
	for (size_t i = 0; i < (8 << 20); i += 4096)
		bad += p[i] != 0x3C || p[i + 4095] != 0x3C;
	CHECK(bad == 0);
	mk_free(p);
}

static void bad_free(void *arg)
{
	free(arg);
}

/* An invalid free gets memkit's diagnosis, not glibc's. */
static void test_bad_free_diagnosed_by_memkit(void)
{
	static char not_heap[64] __attribute__((aligned(16)));
	CHECK(test_expect_bad_free(bad_free, not_heap, not_heap, "free(): invalid pointer"));
}

/* Each byte of block i holds the byte i, written when it was allocated and read back before it is freed,
 * once every block of the round is live (so an overlap between two blocks shows). */
static void *thread_work(void *arg)
{
	uintptr_t seed = (uintptr_t)arg;
	unsigned char *v[200];
	size_t len[200];
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 200; i++) {
			len[i] = (size_t)((seed + (uintptr_t)i * 37 + (uintptr_t)round) % 3000) + 1;
			v[i] = malloc(len[i]);
			if (!v[i])
				return (void *)1;
			memset(v[i], i, len[i]);
		}
		for (int i = 0; i < 200; i++) {
			for (size_t k = 0; k < len[i]; k++)
				if (v[i][k] != (unsigned char)i)
					return (void *)2;
			free(v[i]);
		}
	}
	char *msg = NULL;
	if (asprintf(&msg, "thread %lu", (unsigned long)seed) < 0)
		return (void *)1;
	return msg; /* freed by the main thread */
}

static void test_threads(void)
{
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		REQUIRE(pthread_create(&t[i], NULL, thread_work, (void *)(uintptr_t)(i + 1)) == 0);
	for (int i = 0; i < 8; i++) {
		char *r = NULL;
		pthread_join(t[i], (void **)&r);
		char want[32];
		snprintf(want, sizeof want, "thread %d", i + 1);
		int good = r != NULL && r != (char *)1 && r != (char *)2;
		if (!good)
			fprintf(stderr, "  thread %d: %s\n", i + 1, r == (char *)2 ? "a block lost its contents" : "malloc failed");
		CHECK(good && strcmp(r, want) == 0);
		if (good)
			free(r);
	}
	CHECK(mk_check() == 0);
}

static void cases(void)
{
	RUN(test_malloc_is_memkit);
	RUN(test_mallinfo_is_memkit);
	RUN(test_bad_free_diagnosed_by_memkit);
	RUN(test_threads);
}

int main(void)
{
	return test_main(cases);
}
