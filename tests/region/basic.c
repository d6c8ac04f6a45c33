/* Region heaps in one process: the allocation API, offsets and roots, every kind of bad input, allocation
 * failure that changes nothing, fault injection in the mapping, and files that are not (good) heaps. */
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "helpers.h"
#include "os/os.h"
#include "region/layout.h"

#define MB (1u << 20)

static void test_alloc_free(void)
{
	mkr_heap *h = mkr_create_private(MB);
	REQUIRE(h);
	static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 4096, 65536};
	void *p[8];
	for (int i = 0; i < 8; i++) {
		p[i] = mkr_alloc(h, sizes[i]);
		REQUIRE(p[i]);
		CHECK((uintptr_t)p[i] % 16 == 0);
		CHECK(mkr_usable_size(h, p[i]) >= sizes[i]);
		CHECK(mkr_owner(h, p[i]) == getpid());
		fill(p[i], mkr_usable_size(h, p[i]), (uint32_t)i);
		CHECK_HEAP(h);
	}
	for (int i = 0; i < 8; i++)
		for (int j = i + 1; j < 8; j++)
			CHECK(p[i] != p[j]);
	for (int i = 0; i < 8; i += 2) {
		CHECK(intact(p[i], mkr_usable_size(h, p[i]), (uint32_t)i));
		CHECK(mkr_free(h, p[i]) == 0);
		CHECK_HEAP(h);
	}
	for (int i = 1; i < 8; i += 2) {
		CHECK(intact(p[i], mkr_usable_size(h, p[i]), (uint32_t)i));
		CHECK(mkr_free(h, p[i]) == 0);
		CHECK_HEAP(h);
	}
	struct mkr_stats st;
	CHECK(mkr_stats(h, &st) == 0);
	CHECK(st.used_blocks == 0 && st.free_blocks == 1 && st.free_bytes == st.heap_size);
	CHECK(mkr_free(h, NULL) == 0);
	mkr_close(h);
}

/* Random allocations, reallocations and frees against a shadow table, every byte verified. */
static void test_random_workload(void)
{
	enum { SLOTS = 300, OPS = 30000 };
	mkr_heap *h = mkr_create_private(4 * MB);
	REQUIRE(h);
	void *p[SLOTS] = {0};
	size_t n[SLOTS] = {0};
	uint64_t seed = 88172645463325252ull;
	for (int op = 0; op < OPS; op++) {
		int i = (int)(rnd(&seed) % SLOTS);
		size_t want = (size_t)(rnd(&seed) % 4) == 0 ? rnd(&seed) % 20000 : rnd(&seed) % 300;
		if (p[i] && !intact(p[i], n[i], (uint32_t)i)) {
			CHECK(!"block contents changed");
			break;
		}
		if (!p[i]) {
			p[i] = mkr_alloc(h, want);
			n[i] = p[i] ? want : 0;
		} else if (rnd(&seed) % 2) {
			void *q = mkr_realloc(h, p[i], want);
			if (q || want == 0) {
				p[i] = q;
				n[i] = q ? want : 0;
			} else {
				CHECK(errno == ENOMEM);
				n[i] = n[i] < want ? n[i] : want;
			}
		} else {
			CHECK(mkr_free(h, p[i]) == 0);
			p[i] = NULL;
			n[i] = 0;
		}
		if (p[i])
			fill(p[i], n[i], (uint32_t)i);
		if (op % 1000 == 0)
			CHECK_HEAP(h);
	}
	for (int i = 0; i < SLOTS; i++) {
		if (p[i])
			CHECK(intact(p[i], n[i], (uint32_t)i));
		CHECK(mkr_free(h, p[i]) == 0);
	}
	CHECK_HEAP(h);
	struct mkr_stats st;
	mkr_stats(h, &st);
	CHECK(st.used_blocks == 0 && st.free_blocks == 1);
	mkr_close(h);
}

static void test_realloc(void)
{
	mkr_heap *h = mkr_create_private(MB);
	REQUIRE(h);
	char *a = mkr_realloc(h, NULL, 100);
	REQUIRE(a);
	fill(a, 100, 1);
	char *b = mkr_alloc(h, 100);
	REQUIRE(b);
	CHECK(mkr_free(h, b) == 0);
	char *g = mkr_realloc(h, a, 180); /* the freed neighbour lets it grow in place */
	CHECK(g == a);
	CHECK(intact(g, 100, 1));
	CHECK_HEAP(h);
	char *wall = mkr_alloc(h, 16);
	char *m = mkr_realloc(h, g, 5000); /* the wall forces a move */
	REQUIRE(m);
	CHECK(m != g && intact(m, 100, 1));
	CHECK_HEAP(h);
	char *s = mkr_realloc(h, m, 40);
	CHECK(s == m && intact(s, 40, 1));
	CHECK(mkr_usable_size(h, s) < 5000);
	CHECK_HEAP(h);
	errno = 0;
	CHECK(mkr_realloc(h, s + 16, 10) == NULL && errno == EINVAL);
	CHECK(mkr_realloc(h, s, 0) == NULL);
	CHECK(mkr_free(h, s) == -1 && errno == EINVAL);
	CHECK(mkr_free(h, wall) == 0);
	CHECK_HEAP(h);
	mkr_close(h);
}

static void test_offsets_and_roots(void)
{
	mkr_heap *h = mkr_create_private(MB);
	REQUIRE(h);
	char *p = mkr_alloc(h, 64);
	REQUIRE(p);
	mkr_off off = mkr_to_off(h, p);
	CHECK(off != 0 && mkr_to_ptr(h, off) == p);
	int local;
	CHECK(mkr_to_off(h, &local) == 0);
	CHECK(mkr_to_off(h, NULL) == 0);
	CHECK(mkr_to_ptr(h, 0) == NULL);
	CHECK(mkr_to_ptr(h, (mkr_off)1 << 40) == NULL);
	CHECK(mkr_root_get(h, 0) == 0);
	CHECK(mkr_root_set(h, 0, off) == 0 && mkr_root_get(h, 0) == off);
	CHECK(mkr_root_set(h, MKR_ROOTS, off) == -1 && errno == EINVAL);
	CHECK(mkr_root_set(h, 1, 8) == -1 && errno == EINVAL);         /* inside the header */
	CHECK(mkr_root_set(h, 1, (mkr_off)1 << 40) == -1 && errno == EINVAL);
	CHECK(mkr_root_cas(h, 1, 0, off) == 1 && mkr_root_get(h, 1) == off);
	CHECK(mkr_root_cas(h, 1, 0, 0) == 0 && mkr_root_get(h, 1) == off);
	CHECK(mkr_root_get(h, MKR_ROOTS) == 0);
	CHECK_HEAP(h);
	mkr_close(h);
}

/* Every bad pointer is refused with EINVAL and leaves every byte of the region as it was. */
static void test_bad_pointers(void)
{
	mkr_heap *h = mkr_create_private(64 * 1024);
	mkr_heap *other = mkr_create_private(64 * 1024);
	REQUIRE(h && other);
	char *a = mkr_alloc(h, 100), *b = mkr_alloc(h, 100), *c = mkr_alloc(h, 100);
	char *foreign = mkr_alloc(other, 100);
	REQUIRE(a && b && c && foreign);
	CHECK(mkr_free(h, b) == 0);
	struct mkr_stats st;
	mkr_stats(h, &st);
	char *before = malloc(st.region_size);
	REQUIRE(before);
	memcpy(before, mkr_to_ptr(h, 1) - 1, st.region_size);
	int local;
	char *const bad[] = {(char *)&local, a + 1, a + 16, a + 48, b, foreign, mkr_to_ptr(h, 64), c + 200};
	const char *what[] = {"outside", "interior", "interior", "interior", "double", "outside", "not the start",
	                      "not"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		CHECK(mkr_free(h, bad[i]) == -1 && errno == EINVAL);
		if (!strstr(mkr_last_error(), what[i]) && !strstr(mkr_last_error(), "not"))
			CHECK(!"message names the error");
		CHECK(mkr_usable_size(h, bad[i]) == 0 && errno == EINVAL);
		CHECK(mkr_owner(h, bad[i]) == 0);
	}
	CHECK(strstr((mkr_free(h, b), mkr_last_error()), "double free") != NULL);
	CHECK(memcmp(before, mkr_to_ptr(h, 1) - 1, st.region_size) == 0);
	CHECK_HEAP(h);
	CHECK(mkr_free(NULL, a) == -1 && errno == EINVAL);
	CHECK(mkr_alloc(NULL, 1) == NULL && errno == EINVAL);
	free(before);
	mkr_close(h);
	mkr_close(other);
}

/* An allocation that cannot be served is NULL + ENOMEM and leaves the region byte for byte unchanged. */
static void test_enomem_changes_nothing(void)
{
	mkr_heap *h = mkr_create_private(64 * 1024);
	REQUIRE(h);
	void *p[4096];
	int n = 0;
	while (n < 4096 && (p[n] = mkr_alloc(h, 200)))
		n++;
	CHECK(n > 10 && n < 4096 && errno == ENOMEM);
	for (int i = 0; i < n; i += 3)
		mkr_free(h, p[i]);
	CHECK_HEAP(h);
	struct mkr_stats st;
	mkr_stats(h, &st);
	char *before = malloc(st.region_size);
	REQUIRE(before);
	char *base = (char *)mkr_to_ptr(h, 1) - 1;
	memcpy(before, base, st.region_size);
	static const size_t too_big[] = {1000, 64 * 1024, SIZE_MAX, SIZE_MAX / 2, MKR_MAX_REGION - 64, MKR_MAX_REGION};
	for (int i = 0; i < 6; i++) {
		errno = 0;
		CHECK(mkr_alloc(h, too_big[i]) == NULL && errno == ENOMEM);
		errno = 0;
		CHECK(mkr_realloc(h, p[1], too_big[i]) == NULL && errno == ENOMEM);
	}
	CHECK(st.largest_free >= 200 && st.largest_free < 1000);
	CHECK(memcmp(before, base, st.region_size) == 0);
	CHECK_HEAP(h);
	free(before);
	mkr_close(h);
}

static void test_caller_memory(void)
{
	static _Alignas(16) char mem[64 * 1024];
	mkr_heap *h = mkr_create_in(mem, sizeof mem);
	REQUIRE(h);
	char *p = mkr_alloc(h, 100);
	REQUIRE(p && p > mem && p < mem + sizeof mem);
	mkr_root_set(h, 0, mkr_to_off(h, p));
	mkr_heap *again = mkr_attach(mem, sizeof mem);
	REQUIRE(again);
	CHECK(mkr_to_ptr(again, mkr_root_get(again, 0)) == p);
	CHECK(mkr_free(again, p) == 0);
	CHECK_HEAP(h);
	mkr_close(again);
	mkr_close(h);
	CHECK(mkr_create_in(mem + 1, 8192) == NULL && errno == EINVAL);
	CHECK(mkr_create_in(mem, 100) == NULL && errno == EINVAL);
	CHECK(mkr_attach(mem + 16, 8192) == NULL && errno == EINVAL);
	CHECK(mkr_create_in(NULL, 8192) == NULL && errno == EINVAL);
}

static void test_fault_injection(void)
{
	const char *path = scratch_path("inject");
	unlink(path);
	int fds = count_fds();
	long before = mk__os_injected_failures();
	mk__os_inject_fail(0, 1);
	CHECK(mkr_create_private(MB) == NULL && errno == ENOMEM);
	mk__os_inject_fail(0, 1);
	CHECK(mkr_create_shared(MB) == NULL && errno == ENOMEM);
	mk__os_inject_fail(0, 1);
	CHECK(mkr_open_file(path, MKR_CREATE, MB, 0600) == NULL && errno == ENOMEM);
	CHECK(access(path, F_OK) != 0); /* a failed create leaves no file behind */
	CHECK(mk__os_injected_failures() == before + 3);
	mkr_heap *h = mkr_open_file(path, MKR_CREATE, MB, 0600);
	REQUIRE(h);
	mkr_close(h);
	mk__os_inject_fail(0, 1);
	CHECK(mkr_open_file(path, 0, 0, 0) == NULL && errno == ENOMEM);
	CHECK(mk__os_injected_failures() == before + 4);
	CHECK(count_fds() == fds);
	h = mkr_open_file(path, 0, 0, 0);
	CHECK(h != NULL);
	CHECK_HEAP(h);
	mkr_close(h);
	unlink(path);
}

/* Writes a fresh heap file, lets `damage` change it, and expects open to fail with err and a message. */
static void expect_bad_file(void (*damage)(int fd), int err, const char *words)
{
	const char *path = scratch_path("bad");
	unlink(path);
	mkr_heap *h = mkr_open_file(path, MKR_CREATE | MKR_EXCL, 256 * 1024, 0600);
	if (!h) {
		CHECK(!"create");
		return;
	}
	mkr_alloc(h, 1000);
	mkr_close(h);
	int fd = open(path, O_RDWR);
	damage(fd);
	close(fd);
	int fds = count_fds();
	errno = 0;
	h = mkr_open_file(path, 0, 0, 0);
	CHECK(h == NULL && errno == err);
	if (!strstr(mkr_last_error(), words)) {
		fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", mkr_last_error(), words);
		test_case_failed = 1;
	}
	CHECK(count_fds() == fds);
	mkr_close(h);
	unlink(path);
}

static void put_u32(int fd, size_t at, uint32_t v) { CHECK(pwrite(fd, &v, 4, (off_t)at) == 4); }
static void put_u64(int fd, size_t at, uint64_t v) { CHECK(pwrite(fd, &v, 8, (off_t)at) == 8); }
static uint64_t get_u64(int fd, size_t at)
{
	uint64_t v = 0;
	CHECK(pread(fd, &v, 8, (off_t)at) == 8);
	return v;
}
static void bad_magic(int fd) { put_u64(fd, offsetof(struct rg_header, magic), 0x1234); }
static void bad_version(int fd) { put_u32(fd, offsetof(struct rg_header, version), RG_VERSION + 1); }
static void half(int fd) { CHECK(ftruncate(fd, 128 * 1024) == 0); }
static void stub(int fd) { CHECK(ftruncate(fd, 100) == 0); }
static void empty(int fd) { CHECK(ftruncate(fd, 0) == 0); }
static void bad_geometry(int fd)
{
	size_t at = offsetof(struct rg_header, heap_end);
	put_u64(fd, at, get_u64(fd, at) + 4096);
}
static void bad_block(int fd)
{
	uint64_t heap_off = get_u64(fd, offsetof(struct rg_header, heap_off));
	put_u64(fd, heap_off, 0x0badcafe0badcafeull);
}
static void bad_link(int fd)
{
	/* a free list link pointing into the header: repaired by the rebuild, which trusts only block headers */
	for (unsigned b = 0; b < RG_NBINS; b++) {
		size_t at = offsetof(struct rg_header, bins) + b * 8;
		if (get_u64(fd, at))
			put_u64(fd, get_u64(fd, at) + 16, 24);
	}
}

static void test_bad_files(void)
{
	expect_bad_file(bad_magic, EINVAL, "magic");
	expect_bad_file(bad_version, ENOTSUP, "version");
	expect_bad_file(half, EINVAL, "truncated");
	expect_bad_file(stub, EINVAL, "too short");
	expect_bad_file(empty, EINVAL, "too short");
	expect_bad_file(bad_geometry, EINVAL, "geometry");
	expect_bad_file(bad_block, EIO, "damaged");

	const char *path = scratch_path("text");
	FILE *f = fopen(path, "w");
	REQUIRE(f);
	for (int i = 0; i < 1000; i++)
		fprintf(f, "this is not a heap %d\n", i);
	fclose(f);
	CHECK(mkr_open_file(path, MKR_CREATE, MB, 0600) == NULL && errno == EINVAL);
	CHECK(strstr(mkr_last_error(), "not a memkit region heap") != NULL);
	CHECK(mkr_open_file(path, MKR_CREATE | MKR_EXCL, MB, 0600) == NULL && errno == EEXIST);
	unlink(path);
	CHECK(mkr_open_file(path, 0, 0, 0) == NULL && errno == ENOENT);
	CHECK(mkr_open_file(NULL, 0, 0, 0) == NULL && errno == EINVAL);
	CHECK(mkr_open_file(path, MKR_CREATE, 100, 0600) == NULL && errno == EINVAL);
	CHECK(access(path, F_OK) != 0);
}

/* Damaged derived state in a file is rebuilt on open; damage in memory is reported by check(). */
static void test_repair_and_check(void)
{
	const char *path = scratch_path("link");
	unlink(path);
	mkr_heap *h = mkr_open_file(path, MKR_CREATE, 256 * 1024, 0600);
	REQUIRE(h);
	void *keep = mkr_alloc(h, 100);
	mkr_free(h, mkr_alloc(h, 100));
	mkr_root_set(h, 0, mkr_to_off(h, keep));
	mkr_close(h);
	int fd = open(path, O_RDWR);
	bad_link(fd);
	close(fd);
	h = mkr_open_file(path, 0, 0, 0);
	REQUIRE(h);
	CHECK_HEAP(h);
	CHECK(mkr_usable_size(h, mkr_to_ptr(h, mkr_root_get(h, 0))) >= 100);

	struct rg_header *hd = mkr_to_ptr(h, 1) - 1;
	uint64_t saved = hd->bins[0];
	hd->free_units++;
	CHECK(mkr_check(h) == -1 && errno == EIO && strstr(mkr_last_error(), "counters"));
	hd->free_units--;
	hd->roots[3] = 5;
	CHECK(mkr_check(h) == -1 && strstr(mkr_last_error(), "root 3"));
	hd->roots[3] = 0;
	hd->bins[0] = hd->heap_off;
	CHECK(mkr_check(h) == -1 && strstr(mkr_last_error(), "bin"));
	hd->bins[0] = saved;
	uint64_t *w0 = (uint64_t *)((char *)hd + hd->heap_off);
	*w0 ^= 1ull << 40;
	CHECK(mkr_check(h) == -1 && strstr(mkr_last_error(), "damaged"));
	*w0 ^= 1ull << 40;
	CHECK_HEAP(h);
	mkr_close(h);
	unlink(path);
}

/* Writes after free land in a free block's links, which are derived: the heap rebuilds them and goes on,
 * never following a forged link. */
static void test_write_after_free_is_repaired(void)
{
	mkr_heap *h = mkr_create_private(MB);
	REQUIRE(h);
	char *a = mkr_alloc(h, 200), *wall = mkr_alloc(h, 16), *b = mkr_alloc(h, 200), *wall2 = mkr_alloc(h, 16);
	REQUIRE(a && wall && b && wall2);
	CHECK(mkr_free(h, a) == 0);
	CHECK(mkr_free(h, b) == 0);
	memset(a, 0x41, 32); /* both links of a: forged offsets */
	memset(b, 0xff, 16);
	CHECK(mkr_check(h) == -1 && errno == EIO);
	char *c = mkr_alloc(h, 200); /* meets a forged link: rebuilds, then serves */
	CHECK(c == a || c == b);
	CHECK_HEAP(h);
	memset(c == a ? b : a, 0x42, 32);
	CHECK(mkr_free(h, wall) == 0); /* merging with a damaged free neighbour: rebuilt first */
	CHECK_HEAP(h);
	CHECK(mkr_free(h, c) == 0 && mkr_free(h, wall2) == 0);
	struct mkr_stats st;
	CHECK(mkr_stats(h, &st) == 0 && st.used_blocks == 0 && st.free_blocks == 1);
	CHECK_HEAP(h);
	mkr_close(h);
}

/* A write past the end of a block damages the next block's header: the next operation that needs it
 * stops with EIO and the heap refuses further use rather than walk it. */
static void test_overrun_is_detected(void)
{
	mkr_heap *h = mkr_create_private(MB);
	REQUIRE(h);
	char *a = mkr_alloc(h, 100), *b = mkr_alloc(h, 100);
	REQUIRE(a && b);
	memset(a, 0x55, mkr_usable_size(h, a) + 8);
	errno = 0;
	CHECK(mkr_free(h, a) == -1 && errno == EIO);
	CHECK(strstr(mkr_last_error(), "damaged") != NULL);
	CHECK(mkr_alloc(h, 10) == NULL && errno == EIO);
	CHECK(mkr_free(h, b) == -1 && errno == EIO);
	CHECK(mkr_check(h) == -1 && errno == EIO);
	mkr_close(h);
}

static void test_ownership(void)
{
	mkr_heap *h = mkr_create_private(MB);
	REQUIRE(h);
	void *p[3];
	for (int i = 0; i < 3; i++)
		p[i] = mkr_alloc(h, 50);
	void *other = mkr_alloc(h, 50);
	CHECK(mkr_free(h, other) == 0);
	CHECK(mkr_owner(h, p[1]) == getpid());
	CHECK(mkr_reclaim_owner(h, getpid() + 1) == 0);
	CHECK(mkr_reclaim_owner(h, 0) == -1 && errno == EINVAL);
	CHECK(mkr_reclaim_dead(h) == 0); /* this process is alive */
	CHECK(mkr_reclaim_owner(h, getpid()) == 3);
	struct mkr_stats st;
	mkr_stats(h, &st);
	CHECK(st.used_blocks == 0 && st.free_blocks == 1);
	CHECK_HEAP(h);
	mkr_close(h);
}

static int reenter(void *arg, mkr_off off, size_t size, pid_t owner)
{
	(void)off, (void)size, (void)owner;
	errno = 0;
	return mkr_alloc(arg, 10) == NULL && errno == EDEADLK ? 7 : 1;
}

/* A foreach callback that calls back into the heap gets EDEADLK instead of hanging. */
static void test_foreach_reentry_fails(void)
{
	mkr_heap *h = mkr_create_private(MB);
	REQUIRE(h);
	REQUIRE(mkr_alloc(h, 10));
	CHECK(mkr_foreach(h, reenter, h) == 7);
	CHECK(mkr_alloc(h, 10) != NULL); /* the lock was released */
	CHECK_HEAP(h);
	mkr_close(h);
}

/* mkr_reclaim_dead frees nothing of a live process, and everything of one that has gone. */
static void test_reclaim_dead(void)
{
	mkr_heap *h = mkr_create_shared(MB);
	REQUIRE(h);
	int go[2], ready[2];
	REQUIRE(pipe(go) == 0 && pipe(ready) == 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		char c = mkr_alloc(h, 10) && mkr_alloc(h, 20) ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	char c = 0;
	CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
	void *mine = mkr_alloc(h, 30);
	CHECK(mkr_reclaim_dead(h) == 0);
	CHECK(write(go[1], &c, 1) == 1);
	CHECK(waitpid(pid, NULL, 0) == pid);
	CHECK(mkr_reclaim_dead(h) == 2);
	CHECK(mkr_owner(h, mine) == getpid());
	CHECK(mkr_free(h, mine) == 0);
	CHECK_HEAP(h);
	for (int i = 0; i < 2; i++) {
		close(go[i]);
		close(ready[i]);
	}
	mkr_close(h);
}

static void test_named_shm(void)
{
	const char *name = scratch_shm("basic");
	mkr_unlink_shm(name);
	mkr_heap *h = mkr_open_shm(name, MKR_CREATE | MKR_EXCL, MB, 0600);
	REQUIRE(h);
	char *s = mkr_alloc(h, 32);
	REQUIRE(s);
	strcpy(s, "kept in shared memory");
	mkr_root_set(h, 0, mkr_to_off(h, s));
	mkr_heap *second = mkr_open_shm(name, 0, 0, 0); /* a second mapping, at another address */
	REQUIRE(second);
	char *t = mkr_to_ptr(second, mkr_root_get(second, 0));
	CHECK(t != s && t && strcmp(t, "kept in shared memory") == 0);
	mkr_close(second);
	mkr_close(h);
	h = mkr_open_shm(name, 0, 0, 0);
	REQUIRE(h);
	CHECK(strcmp(mkr_to_ptr(h, mkr_root_get(h, 0)), "kept in shared memory") == 0);
	CHECK_HEAP(h);
	mkr_close(h);
	CHECK(mkr_unlink_shm(name) == 0);
	CHECK(mkr_open_shm(name, 0, 0, 0) == NULL && errno == ENOENT);
}

static void cases(void)
{
	RUN(test_alloc_free);
	RUN(test_random_workload);
	RUN(test_realloc);
	RUN(test_offsets_and_roots);
	RUN(test_bad_pointers);
	RUN(test_enomem_changes_nothing);
	RUN(test_caller_memory);
	RUN(test_fault_injection);
	RUN(test_bad_files);
	RUN(test_repair_and_check);
	RUN(test_write_after_free_is_repaired);
	RUN(test_overrun_is_detected);
	RUN(test_ownership);
	RUN(test_reclaim_dead);
	RUN(test_foreach_reentry_fails);
	RUN(test_named_shm);
}

int main(void)
{
	return test_main(cases);
}
