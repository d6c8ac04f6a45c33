/* The engine's common paths of issue 8 (docs/ARCHITECTURE.md, "The engine, by data flow"): calloc of a
 * large block taken from untouched or purged slices touches none of its pages, and one of reused memory
 * is still all zeros; a block freed by another thread (the inlined free's remote branch) is taken back by
 * its owner, and bad pointers freed from another thread get the same one-line reports as on the owner's;
 * thread exit gives back every span of the classes it used.  mk_ API, linked with libmemkit-mk.a. */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memkit.h"
#include "tests/common/test.h"
#include "tests/contract/abort.h"

#define LARGE ((size_t)1 << 20)
#define NLARGE 40

static size_t resident_pages(const void *p, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), count = 0;
	unsigned char vec[LARGE / 4096 + 1];
	if (n / page > sizeof vec || mincore((void *)p, n, vec) != 0)
		return SIZE_MAX;
	for (size_t i = 0; i < n / page; i++)
		count += vec[i] & 1;
	return count;
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Large blocks taken from fresh slices read zero without calloc clearing them: at most the page of the
 * block's first words is resident.  (The free memory left by earlier cases may serve a few of them, and
 * those are cleared: most of 40 MiB must come from fresh slices.) */
static void test_calloc_fresh_large_untouched(void)
{
	void *p[NLARGE];
	int untouched = 0;
	for (int i = 0; i < NLARGE; i++) {
		p[i] = mk_calloc(1, LARGE);
		REQUIRE(p[i] != NULL);
		REQUIRE(((uintptr_t)p[i] & 4095) == 0);
		untouched += resident_pages(p[i], LARGE) <= 1;
	}
	CHECK(untouched >= NLARGE - 8);
	for (int i = 0; i < NLARGE; i++) {
		CHECK(all_zero(p[i], LARGE));
		mk_free(p[i]);
	}
	CHECK(mk_check() == 0);
}

/* Freed large blocks are resident and dirty until purged (10 ms): calloc of the same sizes reuses them
 * at once, and must clear them. */
static void test_calloc_reused_large_zeroed(void)
{
	void *p[8];
	for (int i = 0; i < 8; i++) {
		p[i] = mk_malloc(LARGE);
		REQUIRE(p[i] != NULL);
		memset(p[i], 0xab, LARGE);
	}
	for (int i = 0; i < 8; i++)
		mk_free(p[i]);
	for (int i = 0; i < 8; i++) {
		p[i] = mk_calloc(LARGE / 16, 16);
		REQUIRE(p[i] != NULL);
		CHECK(all_zero(p[i], LARGE));
	}
	for (int i = 0; i < 8; i++) {   /* and a large block first malloc'ed, then freed, then calloc'ed */
		memset(p[i], 0xcd, LARGE);
		mk_free(p[i]);
		p[i] = mk_calloc(1, LARGE);
		REQUIRE(p[i] != NULL);
		CHECK(all_zero(p[i], LARGE));
		mk_free(p[i]);
	}
}

struct batch { void **p; int n; };

static void *free_batch(void *arg)
{
	struct batch *b = arg;
	for (int i = 0; i < b->n; i++)
		mk_free(b->p[i]);
	return NULL;
}

static void free_in_thread(void **p, int n)
{
	struct batch b = { p, n };
	pthread_t t;
	if (pthread_create(&t, NULL, free_batch, &b) == 0)
		pthread_join(t, NULL);
	else
		free_batch(&b);
}

/* 20,000 blocks of 8 sizes freed by another thread: the owner takes them back (the same addresses come
 * back, and no more memory is in use than before), and the heap stays consistent. */
static void test_remote_frees_come_back(void)
{
	enum { N = 20000 };
	static void *p[N];
	struct mallinfo2 before = mk_mallinfo2();
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			p[i] = mk_malloc(16 + (size_t)(i % 8) * 100);
			REQUIRE(p[i] != NULL);
			memset(p[i], i & 0xff, 16);
		}
		free_in_thread(p, N);
		CHECK(mk_check() == 0);
	}
	struct mallinfo2 after = mk_mallinfo2();
	CHECK(after.uordblks <= before.uordblks + ((size_t)N * 800) + (1 << 20));
	CHECK(mk_check() == 0);
}

static void *bad;
static void free_bad_in_thread(void *arg)
{
	(void)arg;
	free_in_thread(&bad, 1);
}

static void test_remote_double_free(void)
{
	bad = mk_malloc(48);
	void *keep = mk_malloc(48);   /* the span stays live */
	free_in_thread(&bad, 1);
	CHECK(test_expect_bad_free(free_bad_in_thread, NULL, bad, "free(): double free of"));
	mk_free(keep);
}

static void test_remote_interior_pointer(void)
{
	void *p = mk_malloc(48);
	bad = (char *)p + 16;
	CHECK(test_expect_bad_free(free_bad_in_thread, NULL, bad, "free(): interior pointer"));
	mk_free(p);
}

/* A block boundary past everything carved in the span: never handed out. */
static void test_remote_never_carved(void)
{
	void *p = mk_malloc(48);
	bad = (char *)p + 48 * 1000;
	CHECK(test_expect_bad_free(free_bad_in_thread, NULL, bad, "free(): invalid pointer"));
	mk_free(p);
}

/* realloc within the block stays in place in a span parked as full (every block of a span of four
 * 16 KiB blocks out: the inlined realloc's owner test masks the tag), and a freed block of such a span is
 * still refused: freed by another thread, so that the span stays parked (the owner's own free would take
 * it off the full list first).  Content survives; the heap checks out. */
static void realloc_freed(void *arg) { (void)mk_realloc(arg, 15000); }

static void test_realloc_in_full_span(void)
{
	enum { N = 16 };
	char *p[N];
	for (int i = 0; i < N; i++) {
		REQUIRE((p[i] = mk_malloc(16000)) != NULL);
		memset(p[i], 'a' + i, 16000);
	}
	for (int i = 0; i < N; i++) {
		char *q = mk_realloc(p[i], 16384 - 16 * (size_t)i);
		CHECK(q == p[i]);
		CHECK(q[0] == 'a' + i && q[15999] == 'a' + i);
	}
	CHECK(mk_check() == 0);
	void *first = p[0];
	free_in_thread(&first, 1);   /* onto the heap's xblocks: p[0]'s span keeps its tag */
	CHECK(test_expect_bad_free(realloc_freed, p[0], p[0], "realloc(): use after free of"));
	CHECK(mk_realloc(p[1], 16000) == p[1]);   /* a live block of the same parked span */
	for (int i = 1; i < N; i++)
		mk_free(p[i]);
	CHECK(mk_check() == 0);
}

/* A large block freed, its cookie word then overwritten (a use after free), freed again: its span waits
 * in the thread's cache with no block out (used 0), so the second free is still a double free, not a
 * second entry of the same span in the cache (handed out twice after).  found by review */
static void large_free_twice(void *arg)
{
	char *a = arg;
	mk_free(a);
	memset(a, 0, 16);
	mk_free(a);
	fprintf(stderr, "second free accepted\n");
}

static void test_large_double_free_after_write(void)
{
	char *a = mk_malloc(256 * 1024);
	REQUIRE(a != NULL);
	CHECK(test_expect_bad_free(large_free_twice, a, a, "free(): double free of"));
	mk_free(a);
}

/* A thread that used a few classes and freed everything: its exit gives back their spans (only the
 * classes it used are walked, and every one of them is), but for the current ones that its parked heap
 * keeps for the next thread, which malloc_trim takes back too. */
static void *use_classes(void *arg)
{
	(void)arg;
	void *p[3][600];
	static const size_t sizes[3] = { 24, 700, 9000 };
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < 600; i++)
			if ((p[c][i] = mk_malloc(sizes[c])) != NULL)
				memset(p[c][i], 1, sizes[c]);
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < 600; i++)
			mk_free(p[c][i]);
	return NULL;
}

static void test_thread_exit_gives_back(void)
{
	mk_malloc_trim(0);
	struct mallinfo2 before = mk_mallinfo2();
	for (int i = 0; i < 20; i++) {
		pthread_t t;
		REQUIRE(pthread_create(&t, NULL, use_classes, NULL) == 0);
		pthread_join(t, NULL);
	}
	struct mallinfo2 after = mk_mallinfo2();
	/* the last heap parked keeps its three current spans: 1, 1 and 2 slices of 64 KiB */
	CHECK(after.uordblks <= before.uordblks + 4096 + 4 * 65536);
	mk_malloc_trim(0);
	after = mk_mallinfo2();
	CHECK(after.uordblks <= before.uordblks + 4096);   /* nothing the threads held is still counted */
	CHECK(mk_check() == 0);
}

static void cases(void)
{
	RUN(test_calloc_fresh_large_untouched);
	RUN(test_calloc_reused_large_zeroed);
	RUN(test_remote_frees_come_back);
	RUN(test_remote_double_free);
	RUN(test_remote_interior_pointer);
	RUN(test_remote_never_carved);
	RUN(test_realloc_in_full_span);
	RUN(test_large_double_free_after_write);
	RUN(test_thread_exit_gives_back);
}

int main(void) { return test_main(cases); }
