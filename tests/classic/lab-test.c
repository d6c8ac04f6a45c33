/* Tests for the lab allocators (seed 001); built once per LAB_VERSION with a small pool
 * (-DLAB_POOL_BYTES), so that versions 2 and 3 must grow past their first pool. */
#include <limits.h>
#include <stdint.h>

#include "../common/test.h"
#include "my_memory_allocator.h"
#include "os/os.h"
#include "classic/lab_pool.h"

#define V LAB_VERSION
/* The largest size every version serves. */
#define MAX_SIZE (V == 3 ? LAB_CELL_SIZE : 5000)

static void fill(unsigned char *p, int n, unsigned seed)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31 + i);
}

static int intact(const unsigned char *p, int n, unsigned seed)
{
	for (int i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed * 31 + i))
			return 0;
	return 1;
}

static void test_init_is_idempotent(void)
{
	init_mem_pool();
	init_mem_pool();
	CHECK(my_check() == 0);
}

static void test_sizes_and_patterns(void)
{
	enum { N = 200 };
	unsigned char *p[N];
	int size[N];
	for (int i = 0; i < N; i++) {
		size[i] = (i * 37) % (MAX_SIZE + 1);
		p[i] = my_malloc(size[i]);
		REQUIRE(p[i] != NULL);
		CHECK((uintptr_t)p[i] % 16 == 0);
		fill(p[i], size[i], (unsigned)i);
		CHECK(my_check() == 0);
	}
	for (int i = 0; i < N; i++)
		CHECK(intact(p[i], size[i], (unsigned)i));
	for (int i = 0; i < N; i += 2) {
		my_free(p[i]);
		CHECK(my_check() == 0);
	}
	for (int i = 1; i < N; i += 2)
		CHECK(intact(p[i], size[i], (unsigned)i));
	for (int i = 1; i < N; i += 2)
		my_free(p[i]);
	CHECK(my_check() == 0);
}

static void test_zero_is_unique(void)
{
	void *a = my_malloc(0), *b = my_malloc(0);
	CHECK(a != NULL && b != NULL && a != b);
	my_free(a);
	my_free(b);
	CHECK(my_check() == 0);
}

static void test_negative_is_einval(void)
{
	errno = 0;
	CHECK(my_malloc(-1) == NULL && errno == EINVAL);
	errno = 0;
	CHECK(my_malloc(INT_MIN) == NULL && errno == EINVAL);
	CHECK(my_check() == 0);
}

static void test_free_null(void)
{
	my_free(NULL);
	CHECK(my_check() == 0);
}

#if V == 3
static void test_over_32_bytes_is_enomem(void)
{
	errno = 0;
	CHECK(my_malloc(33) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(my_malloc(INT_MAX) == NULL && errno == ENOMEM);
	void *p = my_malloc(32);
	CHECK(p != NULL);
	my_free(p);
	CHECK(my_check() == 0);
}

static void test_freed_cell_is_reused_first(void)
{
	void *a = my_malloc(16), *b = my_malloc(16);
	my_free(a);
	void *c = my_malloc(8);
	CHECK(c == a);
	my_free(b);
	my_free(c);
	CHECK(my_check() == 0);
}
#endif

#if V == 2
static void test_free_does_not_reuse(void)
{
	void *a = my_malloc(16);
	my_free(a);
	void *b = my_malloc(16);
	CHECK(a != b);
	CHECK(my_check() == 0);
}

static void test_request_larger_than_a_pool(void)
{
	int n = (int)LAB_POOL_BYTES * 3;
	unsigned char *p = my_malloc(n);
	REQUIRE(p != NULL);
	fill(p, n, 7);
	CHECK(intact(p, n, 7));
	CHECK(my_check() == 0);
}
#endif

#if V == 2 || V == 3
/* Four pools' worth of 32-byte blocks: every one distinct and intact, so the pool grew. */
static void test_grows_past_first_pool(void)
{
	int n = (int)(4 * LAB_POOL_BYTES / 32);
	unsigned char **p = malloc(sizeof *p * (size_t)n);
	REQUIRE(p != NULL);
	int got = 0;
	for (; got < n; got++) {
		p[got] = my_malloc(32);
		if (!p[got])
			break;
		fill(p[got], 32, (unsigned)got);
	}
	CHECK(got == n);
	int ok = 1;
	for (int i = 0; i < got; i++)
		ok &= intact(p[i], 32, (unsigned)i);
	CHECK(ok);
	CHECK(my_check() == 0);
	for (int i = 0; i < got; i++)
		my_free(p[i]);
	CHECK(my_check() == 0);
	free(p);
}

/* When the kernel refuses a new pool, my_malloc fails with ENOMEM and works again afterwards. */
static void test_pool_exhaustion(void)
{
	int n = (int)(8 * LAB_POOL_BYTES / 32); /* more than the free cells earlier tests left */
	void **p = malloc(sizeof *p * (size_t)n);
	REQUIRE(p != NULL);
	long before = mk__os_injected_failures();
	mk__os_inject_fail(0, 1000000);
	int got = 0;
	errno = 0;
	while (got < n && (p[got] = my_malloc(32)) != NULL)
		got++;
	mk__os_inject_fail(0, 0);
	CHECK(got < n && errno == ENOMEM);
	CHECK(mk__os_injected_failures() > before);
	CHECK(my_check() == 0);
	void *q = my_malloc(32);
	CHECK(q != NULL);
	my_free(q);
	for (int i = 0; i < got; i++)
		my_free(p[i]);
	CHECK(my_check() == 0);
	free(p);
}
#endif

#if V == 1
/* True when addr lies in a mapping of this process (reads /proc/self/maps). */
static int mapped(const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	char line[512];
	int found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)addr >= lo && (uintptr_t)addr < hi)
			found = 1;
	}
	fclose(f);
	return found;
}

static void test_free_unmaps(void)
{
	int sizes[] = {1, 100, 4080, 4081, 100000};
	for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		unsigned char *p = my_malloc(sizes[i]);
		REQUIRE(p != NULL);
		fill(p, sizes[i], i);
		CHECK(mapped(p) == 1 && mapped(p + sizes[i] - 1) == 1);
		my_free(p);
		CHECK(mapped(p) == 0 && mapped(p + sizes[i] - 1) == 0);
	}
}

static void test_map_failure_is_enomem(void)
{
	mk__os_inject_fail(0, 1);
	errno = 0;
	CHECK(my_malloc(10) == NULL && errno == ENOMEM);
	void *p = my_malloc(10);
	CHECK(p != NULL);
	my_free(p);
}

static void free_foreign(void *arg)
{
	unsigned char *page = aligned_alloc(4096, 8192);
	memset(page, 0x5a, 8192);
	my_free(arg ? page + 32 : page + 100);
}

static void free_interior(void *arg)
{
	(void)arg;
	unsigned char *p = my_malloc(100);
	my_free(p + 16);
}

/* my_check walks the live blocks: an overwritten header shows up there too. */
static void test_check_sees_a_damaged_header(void)
{
	unsigned char *a = my_malloc(10), *b = my_malloc(10);
	REQUIRE(a && b);
	CHECK(my_check() == 0);
	b[-24] ^= 1; /* the tag, 24 bytes before the user pointer */
	fprintf(stderr, "  (one my_check complaint expected)\n");
	CHECK(my_check() == 1);
	b[-24] ^= 1;
	CHECK(my_check() == 0);
	my_free(a);
	my_free(b);
	CHECK(my_check() == 0);
}

static void test_bad_free_aborts(void)
{
	CHECK(test_expect_abort(free_foreign, (void *)1, "my_free: bad header"));
	CHECK(test_expect_abort(free_foreign, NULL, "my_free: not a block start"));
	CHECK(test_expect_abort(free_interior, NULL, "my_free: not a block start"));
}
#endif

#if V == 3
static void free_stack(void *arg)
{
	(void)arg;
	char local[64];
	my_free(local + 16);
}

static void free_interior(void *arg)
{
	(void)arg;
	char *p = my_malloc(32);
	my_free(p + 16);
}

static void free_twice(void *arg)
{
	(void)arg;
	void *p = my_malloc(32), *q = my_malloc(32);
	my_free(p);
	my_free(q);
	my_free(p);
}

static void test_bad_free_aborts(void)
{
	CHECK(test_expect_abort(free_stack, NULL, "my_free: pointer not from my_malloc"));
	CHECK(test_expect_abort(free_interior, NULL, "my_free: not the start of a cell"));
	CHECK(test_expect_abort(free_twice, NULL, "my_free: double free"));
}
#endif

static void cases(void)
{
	RUN(test_init_is_idempotent);
	RUN(test_sizes_and_patterns);
	RUN(test_zero_is_unique);
	RUN(test_negative_is_einval);
	RUN(test_free_null);
#if V == 1
	RUN(test_free_unmaps);
	RUN(test_check_sees_a_damaged_header);
	RUN(test_map_failure_is_enomem);
	RUN(test_bad_free_aborts);
#elif V == 2
	RUN(test_free_does_not_reuse);
	RUN(test_request_larger_than_a_pool);
	RUN(test_grows_past_first_pool);
	RUN(test_pool_exhaustion);
#elif V == 3
	RUN(test_over_32_bytes_is_enomem);
	RUN(test_freed_cell_is_reused_first);
	RUN(test_grows_past_first_pool);
	RUN(test_pool_exhaustion);
	RUN(test_bad_free_aborts);
#endif
}

int main(void)
{
	printf("# LAB_VERSION %d\n", V);
	return test_main(cases);
}
