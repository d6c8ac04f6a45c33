/* The hardening measures one by one, under LD_PRELOAD of either build (tests/misuse/hardening.sh runs it
 * under both; MK_TEST_SECURE=1 says it is the secure build): what a correct program sees (malloc(0),
 * realloc and calloc through the secure layer, malloc_trim emptying the quarantine) and the exact line of
 * each detection.  The misuse suite says which misuse each build catches; this says how. */
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>

#include "tests/common/test.h"
#include "tests/contract/abort.h"

static int secure;

/* Reads through p in a child: 1 when that faults (SIGSEGV). */
static void read_byte(void *p) { (void)*(volatile char *)p; }
static int faults(void *p)
{
	char out[256];
	int st = test_capture(read_byte, p, out, sizeof out);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

/* malloc(0): unique, 16-byte aligned, usable size 0, no access, realloc-able, a second free detected. */
static void test_zero_size_blocks(void)
{
	enum { N = 5000 };
	static char *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = malloc(0);
		REQUIRE(p[i] != NULL);
		CHECK(((uintptr_t)p[i] & 15) == 0);
		CHECK(malloc_usable_size(p[i]) == 0);
		if (i)
			CHECK(p[i] != p[i - 1]);
	}
	CHECK(faults(p[0]) && faults(p[N - 1]));
	for (int i = 0; i < N; i += 2)
		free(p[i]);
	CHECK(faults(p[0]));   /* freed: still no access */
	char *q = realloc(p[1], 100);
	REQUIRE(q != NULL);
	memset(q, 7, 100);
	CHECK(malloc_usable_size(q) >= 100);
	free(q);
	for (int i = 3; i < N; i += 2)
		free(p[i]);
	/* slots come back: a million more, 1000 live at a time, fit in the area */
	for (int k = 0; k < 1000; k++) {
		for (int i = 0; i < 1000; i++)
			REQUIRE((p[i] = malloc(0)) != NULL);
		for (int i = 0; i < 1000; i++)
			free(p[i]);
	}
}

static void free_zero_twice(void *arg)
{
	(void)arg;
	char *p = malloc(0);
	fprintf(stderr, "block %p\n", (void *)p);
	free(p);
	free(p);
}
static void free_zero_interior(void *arg)
{
	(void)arg;
	char *p = malloc(0);
	fprintf(stderr, "block %p\n", (void *)(p + 4));
	free(p + 4);
}
static void test_zero_size_bad_frees(void)
{
	CHECK(test_expect_bad_free(free_zero_twice, NULL, NULL, "free(): double free of"));
	CHECK(test_expect_bad_free(free_zero_interior, NULL, NULL, "free(): interior pointer"));
}

/* The next large malloc never gets the large block freed last; a second free of it is still detected. */
static void large_freed_twice(void *arg)
{
	(void)arg;
	char *p = malloc(300000);
	free(p);
	char *q = malloc(300000);
	fprintf(stderr, "block %p\n", (void *)p);
	(void)q;
	free(p);
}
static void test_large_not_reused_at_once(void)
{
	for (int i = 0; i < 20; i++) {
		char *p = malloc(300000), *keep = malloc(300000);
		REQUIRE(p && keep);
		memset(p, 1, 300000);
		free(p);
		char *q = malloc(300000);
		CHECK(q != p);
		free(q);
		free(keep);
	}
	CHECK(test_expect_bad_free(large_freed_twice, NULL, NULL, "free(): double free of"));
}

/* C++ sized delete, through free_sized (C23; glibc 2.36 has none, so it is looked up: memkit's). */
static void (*free_sized_fn)(void *, size_t);
static void wrong_size(void *arg)
{
	(void)arg;
	char *p = malloc(4096);
	free_sized_fn(p, 100);
}
static void test_free_sized(void)
{
	free_sized_fn = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
	REQUIRE(free_sized_fn != NULL);
	char *p = malloc(100);
	REQUIRE(p);
	free_sized_fn(p, 100);   /* right: no report */
	/* The size last given to realloc is right too, though realloc kept the block in place (a smaller
	 * size of another class) or moved it to half again its old size (a bigger class than n's). */
	size_t sizes[] = { 1, 16, 17, 24, 100, 150, 1000, 1500, 4096, 6000, 100000, 140000, 300000, 450000, 1500000 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++)
			for (size_t d = 0; d < 3; d++) {
				size_t n = sizes[j] + d * 7;
				char *q = malloc(sizes[i]);
				REQUIRE(q);
				q = realloc(q, n);
				REQUIRE(q);
				q = realloc(q, n * 2 / 3 + 1);   /* in place or moved */
				REQUIRE(q);
				free_sized_fn(q, n * 2 / 3 + 1);
			}
	char out[512];
	int st = test_capture(wrong_size, NULL, out, sizeof out);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(out, "wrong size 100 for 0x"));
	if (!(WIFSIGNALED(st) && strstr(out, "wrong size 100")))
		fprintf(stderr, "  status %#x: %s\n", st, out);
}

/* ---- the secure build ---- */

static long resident_kib(void)
{
	long size = 0, pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &pages) != 2)
			pages = 0;
		fclose(f);
	}
	return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static int aborts_with(void (*fn)(void *), const char *line_start)
{
	char out[1024];
	int st = test_capture(fn, NULL, out, sizeof out);
	int ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(out, line_start) == out;
	if (!ok)
		fprintf(stderr, "  want an abort with \"%s...\"; status %#x, stderr: %s\n", line_start, st, out);
	return ok;
}
/* Each misuse writes a byte with a value other than the one there: a constant would be the canary's,
 * seal's or tag's byte (random, with the secret) in 1 run of 128 or 256, and the catch then missed
 * (these tests failed so about once per 50 runs of the suite). */
static void flip(char *c) { *c = (char)~*c; }
static void overflow_one(void *a) { (void)a; char *p = malloc(48); flip(p + 48); free(p); }
static void underflow_one(void *a) { (void)a; char *p = malloc(48); flip(p - 1); free(p); }
/* A small block is checked when a malloc hands it out again (its clean tag), a large one as it leaves the
 * quarantine (its zeroed head). */
static void write_after_free(void *a)
{
	(void)a;
	char *p = malloc(64);
	free(p);
	flip(p + 10);
	for (int i = 0; i < 1000; i++)
		free(malloc(64));
}
/* Written long after its free, once the quarantine gave it back: still caught at its reuse. */
static void write_after_release(void *a)
{
	(void)a;
	char *p = malloc(64), *keep[600];
	free(p);
	for (int i = 0; i < 600; i++)
		keep[i] = malloc(64);
	for (int i = 0; i < 600; i++)
		free(keep[i]);
	flip(p + 3);
	for (int i = 0; i < 2000; i++)
		keep[i % 600] = malloc(64);
}
static void write_after_free_large(void *a)
{
	(void)a;
	char *p = malloc(300000);
	free(p);
	p[10] = 1;
	for (int i = 0; i < 1000; i++)
		free(malloc(300000));
}
static void memcpy_over(void *a)
{
	(void)a;
	static char src[64];
	char *p = malloc(40);
	void *(*volatile copy)(void *, const void *, size_t) = memcpy;
	copy(p, src, 41);
}
static void memset_freed(void *a)
{
	(void)a;
	char *p = malloc(40);
	void *(*volatile set)(void *, int, size_t) = memset;
	free(p);
	set(p, 0, 8);
}
static void strcpy_over(void *a)
{
	(void)a;
	char *p = malloc(8);
	char *(*volatile cpy)(char *, const char *) = strcpy;
	cpy(p, "12345678");   /* 9 bytes with its terminator */
}
/* A pointer 2^k past the start of a huge block, where 2^k is beyond the block's mapping: the search for a
 * huge block's header (at p - 16, for each alignment the block could have been allocated with) must not
 * read p - 16 there.  A no-access page is put at p - 16 (if that address is free) so that such a read
 * faults instead of finding whatever is mapped there. */
static void free_past_huge(void *a)
{
	(void)a;
	char *big = malloc(8 << 20);
	char *start = big - 16, *p = NULL;
	for (unsigned k = 30; k < 40 && !p; k++) {
		char *page = start + ((size_t)1 << k) - 4096;
		if (mmap(page, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == page)
			p = start + ((size_t)1 << k);
	}
	if (!p)
		abort();   /* no free address found: the check fails with its own line */
	free(p);
}
static void realloc_overflowed(void *a) { (void)a; char *p = malloc(24); flip(p + 24); p = realloc(p, 4000); }

static void test_secure_detections(void)
{
	CHECK(aborts_with(overflow_one, "memkit: free(): heap overflow after 0x"));
	CHECK(aborts_with(underflow_one, "memkit: free(): heap underflow before 0x"));
	CHECK(aborts_with(write_after_free, "memkit: malloc(): write after free of 0x"));
	CHECK(aborts_with(write_after_release, "memkit: malloc(): write after free of 0x"));
	CHECK(aborts_with(write_after_free_large, "memkit: free(): write after free of 0x"));
	CHECK(aborts_with(memcpy_over, "memkit: memcpy(): heap overflow of 0x"));
	CHECK(aborts_with(memset_freed, "memkit: memset(): write into freed block 0x"));
	CHECK(aborts_with(strcpy_over, "memkit: strcpy(): heap overflow of 0x"));
	CHECK(aborts_with(realloc_overflowed, "memkit: realloc(): heap overflow after 0x"));
	CHECK(aborts_with(free_past_huge, "memkit: free(): invalid pointer 0x"));
}

/* Every byte of a canary has its top bit set: a one-byte overflow with a 0, an ASCII character or a
 * small number is always seen, not in all but 1 run of 128 (the misuse suite's over-1-store, which
 * writes 'O', and must be caught in each of its 3 runs, failed so about once per 15 runs of make test).
 * (Read here right past the test's own blocks.) */
static void test_secure_high_bytes(void)
{
	int low = 0;
	for (size_t n = 1; n < 3000; n += 7) {
		unsigned char *p = malloc(n);
		REQUIRE(p);
		for (int i = 0; i < 8; i++)
			low += p[n + i] < 0x80;
		free(p);
	}
	CHECK(low == 0);
	/* Likewise the seal's last byte (p[-1], where a one-byte underflow lands) of a live block: the
	 * secure build's secret has its top bit set (init.c), and info's top byte is the kind (0 to 2). */
	for (size_t n = 1; n < 3000; n += 7) {
		unsigned char *p = malloc(n);
		REQUIRE(p);
		low += p[-1] < 0x80;
		free(p);
	}
	CHECK(low == 0);
}

/* The secret behind seals and canaries never shows in what a new block holds before the program writes
 * it: not in the canary of the block that had the memory before (one of fewer bytes), nor in the header
 * of an aligned block (which lies inside a block of the default alignment taking its place).  A program
 * that read it could forge a header, and free() would accept any pointer with one.  (Read here from the
 * test's own block: info ^ seal ^ p.) */
static uint64_t secret_of(const char *p)
{
	uint64_t info, seal;
	memcpy(&info, p - 16, 8);
	memcpy(&seal, p - 8, 8);
	return info ^ seal ^ (uintptr_t)p;
}
static void test_secure_secret_not_left(void)
{
	enum { N = 300 };
	char *a[N];
	int canary = 0, header = 0;
	for (int r = 0; r < 20; r++) {
		for (int i = 0; i < N; i++)
			a[i] = malloc(33);   /* engine blocks of 64 bytes, canary at +33 */
		for (int i = 0; i < N; i++)
			free(a[i]);
		for (int i = 0; i < N; i++) {   /* the same class, the program's bytes now past +33 */
			REQUIRE(a[i] = malloc(40));
			uint64_t want = ((uintptr_t)a[i] + secret_of(a[i])) | 0x8080808080808080ull, got = 0;
			memcpy(&got, a[i] + 33, 7);
			canary += got == (want & 0xffffffffffffffull);
		}
		for (int i = 0; i < N; i++)
			free(a[i]);
		for (int i = 0; i < N; i++)   /* 150 + 64 + 8 bytes: class 256, header at +48 */
			REQUIRE(posix_memalign((void **)&a[i], 64, 150) == 0);
		for (int i = 0; i < N; i++)
			free(a[i]);
		for (int i = 0; i < N; i++) {   /* class 256 at the default alignment: the program's bytes from +16 */
			REQUIRE(a[i] = malloc(230));
			uint64_t secret = secret_of(a[i]);
			for (int k = 0; k + 16 <= 230; k += 8) {
				uint64_t info, seal;
				memcpy(&info, a[i] + k, 8);
				memcpy(&seal, a[i] + k + 8, 8);
				header += info && (info ^ seal ^ ((uintptr_t)a[i] + k + 16)) == secret;
			}
		}
		for (int i = 0; i < N; i++)
			free(a[i]);
	}
	for (size_t n = (3 << 20) + 5; n < (12 << 20); n += n / 3) {   /* huge, grown by mremap */
		char *p = malloc(n);
		REQUIRE(p);
		uintptr_t was = (uintptr_t)p;   /* the old canary is of this address, wherever the pages went */
		char *q = realloc(p, n + 4096);
		REQUIRE(q);
		uint64_t want = (was + secret_of(q)) | 0x8080808080808080ull, got;
		memcpy(&got, q + n, 8);
		canary += got == want;
		free(q);
	}
	CHECK(canary == 0);
	CHECK(header == 0);
}

/* What a correct program sees: the bytes it asked for, zeroed calloc, realloc keeping its data in place
 * and moved, in-bounds copies, and the quarantine emptied by malloc_trim. */
static void test_secure_correct_programs(void)
{
	for (size_t n = 1; n < 5000; n += 37) {
		char *p = malloc(n);
		REQUIRE(p);
		CHECK(malloc_usable_size(p) == n);
		memset(p, 'a', n);
		char *q = realloc(p, n + n / 4 + 1);   /* grows, in place or not */
		REQUIRE(q);
		for (size_t i = 0; i < n; i++)
			if (q[i] != 'a') {
				CHECK(q[i] == 'a');
				break;
			}
		memmove(q + 1, q, n);                   /* in bounds: never stopped */
		q = realloc(q, n / 2 + 1);              /* shrinks */
		REQUIRE(q);
		free(q);
		char *z = calloc(1, n);
		REQUIRE(z);
		for (size_t i = 0; i < n; i++)
			if (z[i]) {
				CHECK(z[i] == 0);
				break;
			}
		free(z);
	}
	/* calloc of a big array faults in no page it does not touch (the engine's calloc knows a fresh mapping
	 * reads zero): 256 MiB, two bytes written, the resident size grows by far less than that. */
	long before = resident_kib();
	char *big = calloc(1, (size_t)256 << 20);
	REQUIRE(big);
	big[0] = big[((size_t)256 << 20) - 1] = 1;
	long grew = resident_kib() - before;
	CHECK(grew < 16 * 1024);
	if (grew >= 16 * 1024)
		fprintf(stderr, "  calloc(1, 256 MiB): resident size grew by %ld KiB\n", grew);
	free(big);
	/* Freed blocks wait: 100 frees later, none is handed out again; after malloc_trim they can be. */
	enum { N = 100 };
	char *b[N];
	for (int i = 0; i < N; i++)
		b[i] = malloc(32);
	for (int i = 0; i < N; i++)
		free(b[i]);
	int reused = 0;
	char *c[N];
	for (int i = 0; i < N; i++) {
		c[i] = malloc(32);
		for (int k = 0; k < N; k++)
			reused += c[i] == b[k];
	}
	CHECK(reused == 0);
	malloc_trim(0);   /* the b blocks leave the quarantine (the c blocks stay live) */
	char *d[N];
	for (int i = 0; i < N; i++) {
		d[i] = malloc(32);
		for (int k = 0; k < N; k++)
			reused += d[i] == b[k];
	}
	CHECK(reused > 0);
	for (int i = 0; i < N; i++) {
		free(c[i]);
		free(d[i]);
	}
}

static void cases(void)
{
	RUN(test_zero_size_blocks);
	RUN(test_zero_size_bad_frees);
	RUN(test_large_not_reused_at_once);
	RUN(test_free_sized);
	if (secure) {
		RUN(test_secure_detections);
		RUN(test_secure_correct_programs);
		RUN(test_secure_secret_not_left);
		RUN(test_secure_high_bytes);
	}
}

int main(void)
{
	secure = getenv("MK_TEST_SECURE") != NULL;
	return test_main(cases);
}
