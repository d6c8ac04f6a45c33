/* What every memkit workload shares: arguments, a fast deterministic random generator, the clock, the
 * resident set size, and the self-check that makes a run fail loudly instead of timing nothing.
 *
 * A workload is run as `name SCALE THREADS` (both optional; 0 means the workload's default).  It uses only
 * the plain malloc family, so any allocator can be preloaded under it.  On success it prints one line
 * "ok <checksum>" plus optional "metric <name> <value>" lines on stdout and exits 0; a failed self-check
 * prints "FAIL <why>" on stderr and exits 1. */
#ifndef WL_H
#define WL_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WL_FAIL(...)                                                                              \
	do {                                                                                          \
		fprintf(stderr, "FAIL " __VA_ARGS__);                                                     \
		fputc('\n', stderr);                                                                      \
		exit(1);                                                                                  \
	} while (0)

/* The allocation itself must never fail in a benchmark: a NULL is a failed run, not a slow one. */
static inline void *wl_malloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		WL_FAIL("malloc(%zu) returned NULL", n);
	return p;
}

static inline long wl_arg(int argc, char **argv, int i, long dflt)
{
	if (argc <= i)
		return dflt;
	char *end;
	long v = strtol(argv[i], &end, 10);
	if (*end || v < 0)
		WL_FAIL("bad argument '%s'", argv[i]);
	return v ? v : dflt;
}

/* xorshift64*: deterministic per seed, a few instructions, good enough to pick sizes and slots. */
typedef struct { uint64_t s; } wl_rng;
static inline wl_rng wl_seed(uint64_t seed) { return (wl_rng){ seed * 0x9E3779B97F4A7C15ull | 1 }; }
static inline uint64_t wl_next(wl_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1Dull;
}
static inline uint64_t wl_below(wl_rng *r, uint64_t n) { return (uint64_t)(((unsigned __int128)wl_next(r) * n) >> 64); }
/* Uniform in [0, 1). */
static inline double wl_unit(wl_rng *r) { return (double)(wl_next(r) >> 11) * (1.0 / 9007199254740992.0); }

static inline double wl_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* The process's CPU time (all threads, user + system), in seconds. */
static inline double wl_cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Resident set size in bytes, from /proc/self/statm (read with a stack buffer: no allocation). */
static inline size_t wl_rss(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;
	if (!f || fscanf(f, "%lu %lu", &size, &res) != 2)
		WL_FAIL("cannot read /proc/self/statm");
	fclose(f);
	return res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Stamps a block with a pattern derived from its size and a tag, at both ends; wl_verify checks it, so an
 * allocator that hands out overlapping blocks or corrupts a live one fails the run. */
static inline void wl_stamp(void *p, size_t n, uint32_t tag)
{
	unsigned char *b = p;
	unsigned char v = (unsigned char)(tag * 31u + n);
	b[0] = v;
	if (n >= 2)
		b[n - 1] = (unsigned char)(v ^ 0x5a);
	if (n >= 12)
		memcpy(b + sizeof(uint32_t), &tag, sizeof tag);
}
static inline void wl_verify(const void *p, size_t n, uint32_t tag)
{
	const unsigned char *b = p;
	unsigned char v = (unsigned char)(tag * 31u + n);
	uint32_t t = tag;
	if (n >= 12)
		memcpy(&t, b + sizeof(uint32_t), sizeof t);
	if (b[0] != v || (n >= 2 && b[n - 1] != (unsigned char)(v ^ 0x5a)) || t != tag)
		WL_FAIL("block %p of %zu bytes (tag %u) was overwritten", p, n, tag);
}

/* One thread's share of a workload: `work` units (steps, rounds...), its own seed, and what it summed. */
struct wl_job { long work; uint64_t seed; uint64_t sum; };

/* Runs fn on `threads` threads, splitting `work` between them (the remainder goes to the first ones),
 * and returns the sum of their sums; a zero sum means nothing was done, which fails the run. */
static inline uint64_t wl_parallel(int threads, long work, uint64_t seed, void *(*fn)(void *))
{
	pthread_t tid[threads];
	struct wl_job job[threads];
	for (int t = 0; t < threads; t++) {
		job[t] = (struct wl_job){ work / threads + (t < work % threads), seed + (uint64_t)t, 0 };
		if (pthread_create(&tid[t], NULL, fn, &job[t]))
			WL_FAIL("pthread_create");
	}
	uint64_t sum = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		sum += job[t].sum;
	}
	if (sum == 0)
		WL_FAIL("no work done");
	return sum;
}

static inline void wl_ok(uint64_t checksum) { printf("ok %llu\n", (unsigned long long)checksum); }

#endif
