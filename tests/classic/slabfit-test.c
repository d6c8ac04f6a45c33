/* Contract tests for slabfit (include/mem.h): every bad input, placement rules, coalescing and the rover.
 * One heap per process, so the cases run in order: the ones before Mem_Init first. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "../common/test.h"
#include "mem.h"
#include "os/os.h"

#define HEAP (1 << 20)
#define SLAB 64

static struct mem_stats st;
static char *region_copy;

static struct mem_stats stats(void)
{
	struct mem_stats s = {0};
	Mem_Stats(&s);
	return s;
}

static int in_slab(const void *p) { return (const char *)p >= st.slab_start && (const char *)p < st.slab_start + st.slab_slots * st.slab_slot_size; }
static int in_nf(const void *p) { return (const char *)p >= st.nf_start && (const char *)p < st.nf_end; }

/* Mem_Free(p) must fail with -1, EINVAL, and leave every byte of the region as it was. */
static int refused(void *p)
{
	memcpy(region_copy, st.region, st.region_size);
	errno = 0;
	int rc = Mem_Free(p);
	int same = memcmp(region_copy, st.region, st.region_size) == 0;
	if (rc != -1 || errno != EINVAL || !same)
		fprintf(stderr, "  Mem_Free(%p): rc %d errno %d, region %s\n", p, rc, errno, same ? "unchanged" : "CHANGED");
	return rc == -1 && errno == EINVAL && same && Mem_Check() == 0;
}

static void test_calls_before_init(void)
{
	int local;
	errno = 0;
	CHECK(Mem_Alloc(16) == NULL && errno == ENOMEM);
	CHECK(Mem_Alloc(SLAB) == NULL);
	CHECK(Mem_Free(&local) == -1);
	CHECK(Mem_Free(NULL) == -1);
	struct mem_stats s;
	CHECK(Mem_Stats(&s) == -1);
	CHECK(Mem_Check() == 0);
	Mem_Dump();
}

static void test_init_rejects_bad_arguments(void)
{
	int bad[][2] = {{0, 16}, {-1, 16}, {INT_MIN, 16}, {4096, 0}, {4096, -5}, {4096, 1024}, {HEAP, HEAP}};
	for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
		errno = 0;
		CHECK(Mem_Init(bad[i][0], bad[i][1]) == NULL && errno == EINVAL);
	}
	CHECK(Mem_Alloc(16) == NULL);
}

static void test_init_fails_cleanly_without_memory(void)
{
	long before = mk__os_injected_failures();
	mk__os_inject_fail(0, 1);
	errno = 0;
	CHECK(Mem_Init(HEAP, SLAB) == NULL && errno == ENOMEM);
	CHECK(mk__os_injected_failures() == before + 1);
	CHECK(Mem_Alloc(16) == NULL);
}

static void test_init(void)
{
	char *r = Mem_Init(HEAP - 100, SLAB);
	REQUIRE(r != NULL);
	CHECK((uintptr_t)r % MK_PAGE_SIZE == 0);
	REQUIRE(Mem_Stats(&st) == 0);
	CHECK(st.region == r && st.region_size == HEAP);
	CHECK(st.slab_start >= r && st.slab_start + st.slab_slots * st.slab_slot_size <= r + HEAP / 4);
	CHECK(st.slab_slot_size == SLAB && st.slab_slots > 0 && st.slab_used == 0);
	CHECK(st.nf_start >= r + HEAP / 4 && st.nf_end == r + HEAP);
	CHECK(st.nf_free_blocks == 1 && st.nf_free_bytes == (size_t)(st.nf_end - st.nf_start));
	CHECK(Mem_Check() == 0);
	region_copy = malloc(st.region_size);
	REQUIRE(region_copy != NULL);
}

static void test_second_init_fails(void)
{
	errno = 0;
	CHECK(Mem_Init(HEAP, SLAB) == NULL && errno == EBUSY);
	errno = 0;
	CHECK(Mem_Init(-1, SLAB) == NULL && errno == EINVAL);
	struct mem_stats s = stats();
	CHECK(memcmp(&s, &st, sizeof s) == 0);
}

static void test_zero_and_negative_sizes(void)
{
	int sizes[] = {0, -1, -16, INT_MIN};
	for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		errno = 0;
		CHECK(Mem_Alloc(sizes[i]) == NULL && errno == EINVAL);
	}
	CHECK(Mem_Check() == 0);
}

static void test_larger_than_heap(void)
{
	struct mem_stats s = stats();
	int sizes[] = {HEAP, HEAP * 2, INT_MAX, (int)s.nf_largest_free - 15};
	for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		errno = 0;
		CHECK(Mem_Alloc(sizes[i]) == NULL && errno == ENOMEM);
	}
	void *p = Mem_Alloc((int)s.nf_largest_free - 16); /* exactly the free block, header included */
	CHECK(p != NULL);
	CHECK(stats().nf_free_blocks == 0 && Mem_Check() == 0);
	CHECK(Mem_Free(p) == 0);
	CHECK(stats().nf_free_blocks == 1 && Mem_Check() == 0);
}

static void test_slab_size_goes_to_slab(void)
{
	char *a = Mem_Alloc(SLAB), *b = Mem_Alloc(SLAB - 1), *c = Mem_Alloc(SLAB + 1);
	CHECK(in_slab(a) && in_nf(b) && in_nf(c));
	memset(a, 1, SLAB);
	CHECK(Mem_Free(a) == 0 && Mem_Free(b) == 0 && Mem_Free(c) == 0);
	CHECK(Mem_Check() == 0);
}

static void test_full_slab_falls_back_to_next_fit(void)
{
	size_t n = st.slab_slots;
	char **p = malloc(sizeof *p * (n + 2));
	REQUIRE(p != NULL);
	for (size_t i = 0; i < n; i++) {
		p[i] = Mem_Alloc(SLAB);
		REQUIRE(p[i] != NULL && in_slab(p[i]));
		memset(p[i], (int)i, SLAB);
	}
	CHECK(stats().slab_used == n);
	p[n] = Mem_Alloc(SLAB);
	p[n + 1] = Mem_Alloc(SLAB);
	CHECK(p[n] && in_nf(p[n]) && p[n + 1] && in_nf(p[n + 1]));
	CHECK(Mem_Check() == 0);
	for (size_t i = 0; i < n; i++)
		CHECK(p[i][0] == (char)i && p[i][SLAB - 1] == (char)i);
	CHECK(Mem_Free(p[3]) == 0);
	char *again = Mem_Alloc(SLAB); /* a slot is free again: the slab takes it */
	CHECK(again == p[3]);
	for (size_t i = 0; i < n + 2; i++)
		CHECK(Mem_Free(p[i]) == 0);
	free(p);
	struct mem_stats s = stats();
	CHECK(s.slab_used == 0 && s.nf_free_blocks == 1 && Mem_Check() == 0);
}

static void test_every_address_is_aligned(void)
{
	void *p[300];
	for (int i = 0; i < 300; i++) {
		p[i] = Mem_Alloc(i + 1);
		REQUIRE(p[i] != NULL);
		CHECK((uintptr_t)p[i] % 16 == 0);
	}
	for (int i = 299; i >= 0; i--)
		CHECK(Mem_Free(p[i]) == 0);
	CHECK(Mem_Check() == 0 && stats().nf_free_blocks == 1);
}

static void test_bad_frees_change_nothing(void)
{
	int local[8];
	char *heap_ptr = malloc(64);
	char *s1 = Mem_Alloc(SLAB), *s2 = Mem_Alloc(SLAB);
	char *n1 = Mem_Alloc(100), *n2 = Mem_Alloc(200);
	REQUIRE(s1 && s2 && n1 && n2);
	CHECK(refused(NULL));
	CHECK(refused(local));
	CHECK(refused(heap_ptr));
	CHECK(refused(st.region));                    /* the slab bitmap */
	CHECK(refused(st.nf_start - 16));             /* the start bitmap */
	CHECK(refused(st.nf_start));                  /* a header, not a payload */
	CHECK(refused(st.region + st.region_size));   /* one past the end */
	CHECK(refused(st.region + st.region_size - 16));
	CHECK(refused(s1 + 16));                      /* interior of a slot */
	CHECK(refused(s1 + 1));
	CHECK(refused(st.slab_start - 16));           /* the slab bitmap's last bytes */
	CHECK(refused(st.slab_start + st.slab_slot_size * st.slab_slots)); /* past the last slot */
	CHECK(refused(n1 + 16));                      /* interior of a next-fit block */
	CHECK(refused(n1 + 1));
	CHECK(refused(n2 - 8));
	/* A forged header inside n2's payload, magic and all: the start bitmap still refuses it. */
	uint64_t *h1 = (uint64_t *)(n1 - 16), magic = h1[1] ^ (uintptr_t)h1;
	uint64_t *fake = (uint64_t *)(n2 + 32);
	fake[0] = 48 | 1;
	fake[1] = magic ^ (uintptr_t)fake;
	CHECK(refused(n2 + 48));
	/* Double frees. */
	CHECK(Mem_Free(s1) == 0);
	CHECK(refused(s1));
	CHECK(Mem_Free(n1) == 0);
	CHECK(refused(n1));
	CHECK(Mem_Free(s2) == 0 && Mem_Free(n2) == 0);
	CHECK(refused(s2) && refused(n2));
	free(heap_ptr);
	CHECK(Mem_Check() == 0 && stats().nf_free_blocks == 1 && stats().slab_used == 0);
}

static void test_overwritten_header_is_caught(void)
{
	char *a = Mem_Alloc(40);
	REQUIRE(a != NULL);
	a[-8] ^= 0x40; /* an underrun into the magic */
	fprintf(stderr, "  (one Mem_Check complaint expected)\n");
	CHECK(Mem_Check() == 1);
	CHECK(Mem_Free(a) == -1 && errno == EINVAL);
	a[-8] ^= 0x40;
	CHECK(Mem_Check() == 0);
	CHECK(Mem_Free(a) == 0);
}

static void test_coalescing(void)
{
	char *p[5];
	for (int i = 0; i < 5; i++)
		REQUIRE((p[i] = Mem_Alloc(100)) != NULL);
	size_t base = stats().nf_free_blocks; /* the rest of the heap */
	CHECK(Mem_Free(p[1]) == 0 && Mem_Free(p[3]) == 0);
	CHECK(stats().nf_free_blocks == base + 2 && Mem_Check() == 0);
	CHECK(Mem_Free(p[2]) == 0); /* joins both neighbours */
	CHECK(stats().nf_free_blocks == base + 1 && Mem_Check() == 0);
	CHECK(Mem_Free(p[0]) == 0); /* joins its upper neighbour */
	CHECK(stats().nf_free_blocks == base + 1 && Mem_Check() == 0);
	CHECK(Mem_Free(p[4]) == 0); /* joins both: one block again */
	struct mem_stats s = stats();
	CHECK(s.nf_free_blocks == 1 && s.nf_free_bytes == (size_t)(s.nf_end - s.nf_start) && Mem_Check() == 0);
}

static void test_search_starts_at_the_rover(void)
{
	char *a = Mem_Alloc(100), *b = Mem_Alloc(100), *c = Mem_Alloc(100);
	REQUIRE(a && b && c);
	CHECK(Mem_Free(a) == 0);
	char *d = Mem_Alloc(100); /* first fit would take a's hole; next fit goes on after c */
	CHECK(d > c);
	/* Fill what is left after d: the next search wraps round to a's hole. */
	struct mem_stats s = stats();
	CHECK(s.nf_free_blocks == 2);
	char *rest = Mem_Alloc((int)s.nf_largest_free - 16);
	CHECK(rest > d);
	char *e = Mem_Alloc(100);
	CHECK(e == a);
	CHECK(stats().nf_free_blocks == 0 && stats().nf_rover == NULL && Mem_Check() == 0);
	CHECK(Mem_Alloc(16) == NULL);
	CHECK(Mem_Free(b) == 0 && Mem_Free(rest) == 0 && Mem_Free(e) == 0 && Mem_Free(c) == 0 && Mem_Free(d) == 0);
	CHECK(stats().nf_free_blocks == 1 && Mem_Check() == 0);
}

static void *churn(void *arg)
{
	unsigned x = (unsigned)(uintptr_t)arg * 2654435761u + 1;
	void *live[64] = {0};
	for (int i = 0; i < 20000; i++) {
		x = x * 1103515245u + 12345u;
		int k = (int)(x >> 8) % 64;
		if (live[k]) {
			if (Mem_Free(live[k]) != 0)
				return (void *)1;
			live[k] = NULL;
		} else {
			int size = (x >> 20) % 3 == 0 ? SLAB : (int)(x >> 16) % 300 + 1;
			live[k] = Mem_Alloc(size);
			if (live[k])
				memset(live[k], k, (size_t)size);
		}
	}
	for (int k = 0; k < 64; k++)
		if (live[k] && Mem_Free(live[k]) != 0)
			return (void *)1;
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, churn, (void *)i);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		CHECK(r == NULL);
	}
	struct mem_stats s = stats();
	CHECK(s.slab_used == 0 && s.nf_free_blocks == 1 && Mem_Check() == 0);
}

static void cases(void)
{
	RUN(test_calls_before_init);
	RUN(test_init_rejects_bad_arguments);
	RUN(test_init_fails_cleanly_without_memory);
	RUN(test_init);
	RUN(test_second_init_fails);
	RUN(test_zero_and_negative_sizes);
	RUN(test_larger_than_heap);
	RUN(test_slab_size_goes_to_slab);
	RUN(test_full_slab_falls_back_to_next_fit);
	RUN(test_every_address_is_aligned);
	RUN(test_bad_frees_change_nothing);
	RUN(test_overwritten_header_is_caught);
	RUN(test_coalescing);
	RUN(test_search_starts_at_the_rover);
	RUN(test_threads);
}

int main(void)
{
	int rc = test_main(cases);
	Mem_Dump();
	return rc;
}
