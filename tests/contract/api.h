/* How a test reaches the allocator under test, so that one source checks both faces of memkit.
 *
 * Built with -DMK_TEST_PREFIXED the calls go to the mk_ API (link with build/libmemkit-mk.a); built plain
 * they go to the C library's names, which memkit replaces when the program runs under
 * LD_PRELOAD=build/libmemkit.so.  Plain builds find memkit-only functions (mk_check, free_sized) at run time,
 * so the same binary also runs against glibc alone.  Test programs are compiled with -fno-builtin: the
 * compiler must not fold malloc/free pairs away or assume malloc never returns NULL. */
#ifndef MK_TEST_API_H
#define MK_TEST_API_H

#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MK_TEST_PREFIXED
#include "memkit.h"
#define M(name) mk_##name
static inline int test_under_memkit(void) { return 1; }
static inline int test_heap_check(void) { return mk_check(); }
static inline void test_free_sized(void *p, size_t n) { mk_free_sized(p, n); }
static inline void test_free_aligned_sized(void *p, size_t a, size_t n) { mk_free_aligned_sized(p, a, n); }
#else
#define M(name) name
/* mk_check is exported only by memkit: its presence tells which allocator serves malloc. */
static inline int test_under_memkit(void) { return dlsym(RTLD_DEFAULT, "mk_check") != NULL; }
static inline int test_heap_check(void)
{
	int (*check)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "mk_check");
	return check ? check() : 0;
}
/* glibc 2.36 has no free_sized; plain free is its meaning there. */
static inline void test_free_sized(void *p, size_t n)
{
	void (*f)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
	if (f)
		f(p, n);
	else
		free(p);
}
static inline void test_free_aligned_sized(void *p, size_t a, size_t n)
{
	void (*f)(void *, size_t, size_t) = (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
	if (f)
		f(p, a, n);
	else
		free(p);
}
#endif

/* Resident set size in bytes, from /proc/self/statm (read(2) into a stack buffer: no allocation). */
static inline size_t test_rss(void)
{
	char buf[128];
	size_t pages = 0, rss = 0;
	int fd = open("/proc/self/statm", O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (sscanf(buf, "%zu %zu", &pages, &rss) != 2)
		return 0;
	return rss * (size_t)sysconf(_SC_PAGESIZE);
}

/* A small deterministic generator (xorshift64*): tests are reproducible run to run. */
static inline uint64_t test_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* A byte pattern that depends on a seed (usually the block's address) and the offset, so that a block
 * overwritten with another block's data shows. */
static inline unsigned char test_pattern(uintptr_t seed, size_t i) { return (unsigned char)((seed >> 4) * 131 + i * 7 + 1); }

/* The pattern repeats every 256 bytes, so filling and verifying go a 4 KiB chunk at a time (memcpy and
 * memcmp): checking every byte of a 100 MiB block costs milliseconds, not seconds. */
enum { TEST_CHUNK = 4096 };

static inline void test_pattern_chunk(unsigned char *chunk, uintptr_t seed)
{
	for (size_t i = 0; i < TEST_CHUNK; i++)
		chunk[i] = test_pattern(seed, i);
}

static inline void test_fill_seed(void *p, size_t n, uintptr_t seed)
{
	unsigned char chunk[TEST_CHUNK], *b = p;
	test_pattern_chunk(chunk, seed);
	for (size_t off = 0; off < n; off += TEST_CHUNK)
		memcpy(b + off, chunk, n - off < TEST_CHUNK ? n - off : TEST_CHUNK);
}

/* 1 when every one of the n bytes holds the pattern. */
static inline int test_verify_seed(const void *p, size_t n, uintptr_t seed)
{
	unsigned char chunk[TEST_CHUNK];
	const unsigned char *b = p;
	test_pattern_chunk(chunk, seed);
	for (size_t off = 0; off < n; off += TEST_CHUNK)
		if (memcmp(b + off, chunk, n - off < TEST_CHUNK ? n - off : TEST_CHUNK) != 0)
			return 0;
	return 1;
}

static inline void test_fill(void *p, size_t n) { test_fill_seed(p, n, (uintptr_t)p); }
static inline int test_verify(const void *p, size_t n) { return test_verify_seed(p, n, (uintptr_t)p); }

#endif
