/* Linked -static with build/libmemkit.a, a program that calls what glibc's <malloc.h> declares beyond
 * malloc and free (malloc_info, mallopt, malloc_stats, mallinfo, mallinfo2, malloc_trim,
 * malloc_usable_size, memalign, pvalloc, valloc): it links, which it only does when libmemkit.a defines
 * every one of them (else libc.a's malloc.o comes in with its own malloc: "multiple definition"), and the
 * answers are memkit's. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>

#include "memkit.h"
#include "tests/common/test.h"

static char buf[1 << 16];

/* malloc_info's XML is memkit's: a live huge block is its one "mmap" block. */
static void test_malloc_info(void)
{
	void *h = malloc(6 << 20);
	FILE *f = fmemopen(buf, sizeof buf, "w");
	REQUIRE(f != NULL);
	CHECK(malloc_info(0, f) == 0);
	fclose(f);
	CHECK(strncmp(buf, "<malloc version=\"1\">\n<heap nr=\"0\">", 34) == 0);
	CHECK(strstr(buf, "<total type=\"mmap\" count=\"1\" size=\"6291456\"/>") != NULL);
	free(h);
}

/* mallopt is memkit's: it knows memkit's own parameter (glibc's refuses it). */
static void test_mallopt(void)
{
	CHECK(mallopt(MEMKIT_M_PURGE_DELAY, 10) == 1);
	CHECK(mallopt(M_ARENA_MAX, 2) == 1);
	CHECK(mallopt(12345, 1) == 0);
}

/* malloc_stats writes memkit's report to stderr (captured in a child). */
static void stats_child(void *arg)
{
	(void)arg;
	malloc_stats();
}

static void test_malloc_stats(void)
{
	int st = test_capture(stats_child, NULL, buf, sizeof buf);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(strstr(buf, "]: statistics") != NULL && strstr(buf, "]: segments.current ") != NULL);
}

static void test_the_rest(void)
{
	void *p = memalign(4096, 100), *q = valloc(10), *r = pvalloc(10);
	CHECK(p && q && r && ((uintptr_t)p & 4095) == 0 && malloc_usable_size(r) >= 4096);
	CHECK(malloc_usable_size(p) == mk_malloc_usable_size(p));
	struct mallinfo2 m2 = mallinfo2();
	CHECK(m2.arena >= 4 << 20);   /* memkit's segments (glibc's arena starts at 132 KiB) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
	CHECK((size_t)m.arena == m2.arena);
	free(p);
	free(q);
	free(r);
	int trimmed = malloc_trim(0);
	if (trimmed != 0 && trimmed != 1)
		fprintf(stderr, "  malloc_trim(0) = %d\n", trimmed);
	CHECK(trimmed == 0 || trimmed == 1);
	uint64_t v;
	CHECK(mk_stats_get("segments.current", &v) == 0 && v >= 1);
	CHECK(mk_check() == 0);
}

static void cases(void)
{
	RUN(test_malloc_info);
	RUN(test_mallopt);
	RUN(test_malloc_stats);
	RUN(test_the_rest);
}

int main(void) { return test_main(cases); }
