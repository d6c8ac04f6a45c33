/* Exhaustion for real: a child capped by RLIMIT_AS allocates until malloc says no, which must be NULL with
 * errno = ENOMEM (not a crash), and after freeing everything it must be able to allocate again.
 *
 * Built plain and run under LD_PRELOAD=build/libmemkit.so by rlimit-preload.sh (MK_EXPECT_MEMKIT=1 checks that
 * memkit is the allocator). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/resource.h>

#include "tests/common/test.h"
#include "tests/contract/api.h"

#define MiB ((size_t)1 << 20)
#define ROOM (128 * MiB)
#define MAX_BLOCKS (1 << 22)

/* The pointer table lives in .bss, mapped before the limit is set, so bookkeeping never competes. */
static void *blocks[MAX_BLOCKS];

static size_t vm_size(void)
{
	char buf[128];
	size_t pages = 0;
	int fd = open("/proc/self/statm", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	sscanf(buf, "%zu", &pages);
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Allocates blocks of n bytes until refused; returns how many it got, or -1 if the refusal was wrong. */
static long fill_until_refused(size_t n)
{
	long count = 0;
	while (count < MAX_BLOCKS) {
		errno = 0;
		void *p = malloc(n);
		if (!p)
			return errno == ENOMEM ? count : -1;
		((char *)p)[0] = 1;
		((char *)p)[n - 1] = 2;
		blocks[count++] = p;
	}
	return -1; /* never refused: the limit did not bite */
}

static void free_blocks(long count)
{
	for (long i = 0; i < count; i++)
		free(blocks[i]);
}

/* Caps the address space at its current size + ROOM, the allocator initialised first; 0 on success. */
static int cap_address_space(void)
{
	void *warm = malloc(100);
	free(warm);
	struct rlimit rl = {.rlim_cur = vm_size() + ROOM, .rlim_max = RLIM_INFINITY};
	return setrlimit(RLIMIT_AS, &rl);
}

/* Exit status: 0 when every step behaved; otherwise the number of the step that did not. */
static int limited_child(void)
{
	if (cap_address_space() != 0)
		return 1;
	const size_t sizes[] = {MiB, 100000, 1000, 256};
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
			long got = fill_until_refused(sizes[i]);
			if (got < 0)
				return 10 + (int)i;
			if (round == 0 && got < (long)(ROOM / 4 / sizes[i]))
				return 20 + (int)i; /* refused far too early: the cap, not the allocator, should stop it */
			free_blocks(got);
			/* after freeing everything, memory is there again */
			void *again[16];
			for (int k = 0; k < 16; k++)
				if (!(again[k] = malloc(sizes[i])))
					return 30 + (int)i;
			for (int k = 0; k < 16; k++)
				free(again[k]);
		}
	}
	void *big = malloc(ROOM / 2);
	if (!big)
		return 40;
	memset(big, 1, ROOM / 2);
	free(big);
	return test_heap_check() == 0 ? 0 : 50;
}

/* Runs child() in a forked child and checks that it exited 0 (its exit code names the failing step). */
static void run_capped(int (*child)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child());
	REQUIRE(pid > 0);
	int status = 0;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "  capped child: status %#x (exit code = failing step)\n", status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_rlimit_as_exhaustion(void) { run_capped(limited_child); }

/* malloc(0) needs no memory: under a cap too small for memkit's 1 GiB zero-size area it must still give a
 * unique, freeable, realloc-able pointer (it gave NULL, ENOMEM, while malloc(100) worked).  First of the
 * cases, so that no earlier malloc(0) has set the area up before the fork. */
static int zero_child(void)
{
	if (cap_address_space() != 0)
		return 1;
	void *p = malloc(0), *q = malloc(0);
	if (!p || !q)
		return 2;
	if (p == q)
		return 3;
	free(q);
	void *c = calloc(0, 8);
	if (!c)
		return 4;
	free(c);
	p = realloc(p, 10);
	if (!p)
		return 5;
	memset(p, 1, 10);
	free(p);
	return test_heap_check() == 0 ? 0 : 6;
}

static void test_zero_size_under_cap(void) { run_capped(zero_child); }

static void test_memkit_loaded(void) { CHECK(test_under_memkit()); }

static void cases(void)
{
	RUN(test_zero_size_under_cap);
	const char *expect = getenv("MK_EXPECT_MEMKIT");
	if (expect && strcmp(expect, "1") == 0)
		RUN(test_memkit_loaded);
	RUN(test_rlimit_as_exhaustion);
}

int main(void)
{
	return test_main(cases);
}
