/* The sample table (live sampled blocks, by address) and the site table (one entry per stack and block
 * size, with its counts), both open-addressing hash tables in mappings of their own, under one lock.
 * Sites are never removed, so a site's index is stable and a dump copies them in one go. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "os/os.h"
#include "prof/prof.h"

/* glibc's adaptive mutex: a waiter spins a little (glibc.pthread.mutex_spin_count) before it sleeps on
 * the futex.  The lock is held for a few hundred instructions at a time by threads that may sample every
 * few microseconds; with a plain mutex the waiter slept at once and the sleeps and wake-ups dominated
 * (largepair 1000000 2 16, ns a pair, medians of five: off 16, plain 43, adaptive 34). */
static pthread_mutex_t lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;

void mk__prof_lock(void) { pthread_mutex_lock(&lock); }
void mk__prof_unlock(void) { pthread_mutex_unlock(&lock); }
bool mk__prof_trylock(void) { return pthread_mutex_trylock(&lock) == 0; }
void mk__prof_reset_lock(void)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&lock, &a);
	pthread_mutexattr_destroy(&a);
}

typedef struct sample { uintptr_t p; uint32_t site; } sample;

static sample *samples;           /* p == 0: empty */
static size_t samples_cap, samples_n;
static prof_site *sites;
static size_t sites_cap, sites_n;
static uint32_t *site_index;      /* site + 1; 0: empty */
static size_t site_index_cap;
static double live_estimate;
/* How many live samples hash to each bucket, written under the lock and read without it: a free whose
 * bucket reads 0 holds no sample, and skips the lock (every large and huge free asks).  A sample of p was
 * recorded before malloc returned p, and a free of p comes after that in any correct program (the
 * program's own synchronisation hands p over), so that free reads p's count or a later one, never 0. */
#define FILTER_BUCKETS 4096
static _Atomic uint32_t filter[FILTER_BUCKETS];

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static bool grow_samples(void)
{
	size_t cap = samples_cap ? samples_cap * 2 : 4096;
	sample *t = mk__os_map(cap * sizeof *t);
	if (!t)
		return false;
	for (size_t i = 0; i < samples_cap; i++)
		if (samples[i].p) {
			size_t j = mix(samples[i].p) & (cap - 1);
			while (t[j].p)
				j = (j + 1) & (cap - 1);
			t[j] = samples[i];
		}
	if (samples)
		mk__os_unmap(samples, samples_cap * sizeof *samples);
	samples = t;
	samples_cap = cap;
	return true;
}

static bool grow_sites(void)
{
	size_t cap = sites_cap ? sites_cap * 2 : 1024;
	prof_site *s = mk__os_map(cap * sizeof *s);
	uint32_t *ix = mk__os_map(cap * 2 * sizeof *ix);
	if (!s || !ix) {
		if (s)
			mk__os_unmap(s, cap * sizeof *s);
		if (ix)
			mk__os_unmap(ix, cap * 2 * sizeof *ix);
		return false;
	}
	if (sites) {
		memcpy(s, sites, sites_n * sizeof *s);
		mk__os_unmap(sites, sites_cap * sizeof *sites);
		mk__os_unmap(site_index, site_index_cap * sizeof *site_index);
	}
	sites = s;
	sites_cap = cap;
	site_index = ix;
	site_index_cap = cap * 2;
	for (size_t i = 0; i < sites_n; i++) {
		size_t j = sites[i].hash & (site_index_cap - 1);
		while (site_index[j])
			j = (j + 1) & (site_index_cap - 1);
		site_index[j] = (uint32_t)i + 1;
	}
	return true;
}

static long site_of(size_t size, const uintptr_t *frames, int n)
{
	uint64_t h = mix(size + 1);
	for (int i = 0; i < n; i++)
		h = mix(h ^ frames[i]);
	if (sites_n + 1 > sites_cap && !grow_sites())
		return -1;
	size_t j = h & (site_index_cap - 1);
	for (; site_index[j]; j = (j + 1) & (site_index_cap - 1)) {
		prof_site *s = &sites[site_index[j] - 1];
		if (s->hash == h && s->size == size && s->nframes == n &&
		    memcmp(s->frames, frames, (size_t)n * sizeof *frames) == 0)
			return site_index[j] - 1;
	}
	prof_site *s = &sites[sites_n];
	s->hash = h;
	s->size = (uint32_t)(size < UINT32_MAX ? size : UINT32_MAX);
	s->nframes = (uint16_t)n;
	s->bytes_each = mk__prof_weight(s->size) * s->size;
	memcpy(s->frames, frames, (size_t)n * sizeof *frames);
	site_index[j] = (uint32_t)++sites_n;
	return (long)sites_n - 1;
}

bool mk__prof_record(uintptr_t p, size_t size, const uintptr_t *frames, int nframes)
{
	if ((samples_n + 1) * 2 > samples_cap && !grow_samples())
		return false;
	long site = site_of(size, frames, nframes);
	if (site < 0)
		return false;
	sites[site].live_count++;
	sites[site].alloc_count++;
	live_estimate += sites[site].bytes_each;
	size_t j = mix(p) & (samples_cap - 1);
	while (samples[j].p && samples[j].p != p)
		j = (j + 1) & (samples_cap - 1);
	if (samples[j].p != p) {
		samples_n++;
		atomic_fetch_add_explicit(&filter[mix(p) >> 52], 1, memory_order_relaxed);
	}
	samples[j] = (sample){ p, (uint32_t)site };
	return true;
}

void mk__prof_unrecord(uintptr_t p)
{
	if (!samples_n)
		return;
	size_t mask = samples_cap - 1, j = mix(p) & mask;
	while (samples[j].p && samples[j].p != p)
		j = (j + 1) & mask;
	if (!samples[j].p)
		return;
	prof_site *s = &sites[samples[j].site];
	s->live_count--;
	live_estimate -= s->bytes_each;
	samples_n--;
	atomic_fetch_sub_explicit(&filter[mix(p) >> 52], 1, memory_order_relaxed);
	/* Backward-shift deletion keeps every probe sequence unbroken without tombstones. */
	size_t hole = j;
	for (size_t k = (j + 1) & mask; samples[k].p; k = (k + 1) & mask) {
		size_t home = mix(samples[k].p) & mask;
		if (((k - home) & mask) >= ((k - hole) & mask)) {
			samples[hole] = samples[k];
			hole = k;
		}
	}
	samples[hole].p = 0;
}

bool mk__prof_maybe_sampled(uintptr_t p)
{
	return atomic_load_explicit(&filter[mix(p) >> 52], memory_order_relaxed) != 0;
}

size_t mk__prof_sites_count(void) { return sites_n; }

size_t mk__prof_sites_copy(prof_site *out, size_t max)
{
	size_t n = sites_n < max ? sites_n : max;
	if (n)
		memcpy(out, sites, n * sizeof *out);
	return sites_n;
}

double mk__prof_live_estimate(void) { return live_estimate; }

/* ln(x) for x > 0: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(t), t = (m - 1) / (m + 1),
 * |t| <= 0.172: six terms of the series leave an error under 1e-10, plenty for drawing gaps. */
double mk__prof_ln(double x)
{
	union { double d; uint64_t u; } v = { .d = x };
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;
	v.u = (v.u & ((1ull << 52) - 1)) | (1023ull << 52);
	double m = v.d;
	if (m > 1.4142135623730951) {
		m *= 0.5;
		e++;
	}
	double t = (m - 1) / (m + 1), t2 = t * t;
	double series = 1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 * (1.0 / 11)))));
	return 2 * t * series + e * 0.69314718055994530942;
}

/* exp(-x) for x >= 0, by halving x until the series is short, then squaring back. */
static double exp_neg(double x)
{
	if (x > 700)
		return 0;
	int halvings = 0;
	while (x > 0.5) {
		x /= 2;
		halvings++;
	}
	double term = 1, sum = 1;
	for (int k = 1; k < 20; k++) {
		term *= -x / k;
		sum += term;
	}
	while (halvings--)
		sum *= sum;
	return sum;
}

double mk__prof_weight(size_t size)
{
	double x = (double)size / (double)mk__prof_opt.rate;
	/* 1 - exp(-x) without cancellation for small x: x - x^2/2 + x^3/6 ... */
	double p = x < 1e-3 ? x * (1 - x / 2 + x * x / 6) : 1 - exp_neg(x);
	return p > 0 ? 1 / p : 1;
}
