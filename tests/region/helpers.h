/* Helpers shared by the region heap tests. */
#ifndef MK_REGION_TEST_HELPERS_H
#define MK_REGION_TEST_HELPERS_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/test.h"
#include "memkit_region.h"

/* A path for a scratch heap file, unique to this process and tag. */
static inline const char *scratch_path(const char *tag)
{
	static char buf[8][256];
	static int next;
	char *p = buf[next++ % 8];
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(p, 256, "%s/mkr-test-%d-%s.heap", dir, (int)getpid(), tag);
	return p;
}

static inline const char *scratch_shm(const char *tag)
{
	static char buf[4][128];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, 128, "/mkr-test-%d-%s", (int)getpid(), tag);
	return p;
}

/* Open descriptors of this process (to catch leaks on error paths). */
static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A small deterministic generator (xorshift), so every run does the same work. */
static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Fills and verifies blocks with a pattern that depends on a key (owner, index) and the byte position. */
static inline void fill(void *p, size_t n, uint32_t key)
{
	unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		c[i] = (unsigned char)(key * 31u + i * 7u);
}

static inline int intact(const void *p, size_t n, uint32_t key)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i] != (unsigned char)(key * 31u + i * 7u))
			return 0;
	return 1;
}

#define CHECK_HEAP(h)                                                                             \
	do {                                                                                          \
		if (mkr_check(h) != 0) {                                                                  \
			fprintf(stderr, "  check failed: heap (%s) (%s:%d)\n", mkr_last_error(), __FILE__, __LINE__); \
			test_case_failed = 1;                                                                 \
		}                                                                                         \
	} while (0)

#endif
