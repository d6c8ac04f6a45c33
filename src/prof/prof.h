/* The observability part (sampling heap profiler, heap maps): its hooks in the engine and what its files
 * share.  docs/profiling.md describes the design; in short:
 *
 *  - Sampling.  Every allocated byte has the same chance, 1/rate, of being a sample point (a Poisson
 *    process over the byte stream: the gap to the next point is drawn from an exponential distribution).
 *    An allocation that contains a point is sampled: its stack is captured and it is remembered until
 *    freed; a sample of size s stands for 1 / (1 - exp(-s / rate)) allocations like it.
 *  - Zero cost when off: the inlined fast path is not changed at all.  When on, each thread heap's direct
 *    table points, for each small class, at a "proxy" span that holds only as many blocks as fit before
 *    the next sample point (sample.c), so the fast path's own "span empty" branch is what brings the
 *    countdown to the slow path.  Sampled small blocks come from a heap of their own, so their free
 *    leaves the fast path too (the owner test fails) and is seen here.
 *  - Output is written without malloc, from memory of our own mappings (out.c). */
#ifndef MK_PROF_H
#define MK_PROF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

/* ---- hooks the engine calls (all on slow paths) ---- */

/* Profiling is on: alloc slow paths go through mk__prof_alloc.  Written once, at initialisation. */
extern bool mk__prof_on MK_HIDDEN;
/* The heap that sampled small blocks come from: a free of one of its blocks calls mk__prof_forget. */
extern mk_heap mk__prof_heap MK_HIDDEN;

void  mk__prof_init(void) MK_HIDDEN;                       /* from mk__init, after the fork handlers */
void *mk__prof_alloc(mk_heap *h, size_t n) MK_HIDDEN;      /* mk__prof_alloc_in's slow path */
void *mk__prof_note(void *p, size_t align) MK_HIDDEN;      /* a block made elsewhere (aligned, calloc'd huge) */
void  mk__prof_forget(const void *p) MK_HIDDEN;            /* before a large or huge block, or one of
                                                              mk__prof_heap's, is freed */
void  mk__prof_heap_release(mk_heap *h, bool parking) MK_HIDDEN;   /* heap_collect, before: proxies give
                                                              their blocks back (parking: only the counts) */
bool  mk__prof_kept(const mk_heap *h, unsigned cls) MK_HIDDEN;   /* heap_collect: a piece of cls kept */
void  mk__prof_class_release(mk_heap *h, unsigned cls) MK_HIDDEN; /* before an aligned allocation of a
                                                              class: its proxy's piece back to its span */
bool  mk__prof_direct_ok(const mk_heap *h, unsigned d) MK_HIDDEN;  /* mk_check: direct[d] is h's proxy */
void  mk__prof_heap_init(void) MK_HIDDEN;
void  mk__prof_after_sample(void) MK_HIDDEN;                 /* growth dumps */
extern __thread int mk__prof_busy MK_HIDDEN;                /* this thread is capturing a stack */
extern __thread int64_t mk__prof_mid_left MK_HIDDEN;        /* bytes before the next sample point of the
                                                              classes over MK_DIRECT_MAX (sample.c) */

/* mk__alloc_slow's work when profiling.  A class over MK_DIRECT_MAX comes to mk__alloc_slow on every
 * allocation, profiled or not: without a sample point in the block (or while a capture runs), a
 * subtraction and two compares more than without profiling.  The rest is mk__prof_alloc's. */
MK_INLINE void *mk__prof_alloc_in(mk_heap *h, size_t n)
{
	if (n > MK_DIRECT_MAX && n <= MK_MEDIUM_MAX && !mk__prof_busy) {
		unsigned cls = mk__class_of(n);
		int64_t size = (int64_t)mk__classes[cls].size;
		if (mk_likely(mk__prof_mid_left >= size)) {
			mk__prof_mid_left -= size;
			return mk__heap_alloc_class(h, cls);
		}
	}
	return mk__prof_alloc(h, n);
}
extern _Atomic long mk__prof_capture_allocs MK_HIDDEN;       /* allocations made by captures after warm-up */

/* ---- options: entries of the engine's table (src/engine/options.c), values here ---- */

typedef struct mk_prof_options {
	long prof;            /* MEMKIT_PROF: 1 samples allocations */
	long rate;            /* MEMKIT_PROF_RATE: mean bytes between samples (default 512 KiB) */
	const char *file;     /* MEMKIT_PROF_FILE: profile name, %p = pid ("": memkit.%p.heap) */
	long at_exit;         /* MEMKIT_PROF_AT_EXIT: dump the profile at exit (default 1) */
	long leaks;           /* MEMKIT_PROF_LEAKS: leak report on stderr at exit (default 1) */
	const char *signal_name;   /* MEMKIT_PROF_SIGNAL, as given */
	long signal;          /* ... as a number (0: none), set by mk__prof_read_options */
	long growth;          /* MEMKIT_PROF_GROWTH: dump whenever live bytes grew by this much */
	const char *map;      /* MEMKIT_MAP: heap map SVG written at exit (and on the signal); "": none */
	long map_interval;    /* MEMKIT_MAP_INTERVAL: ms between samples of the time view (0: none) */
} mk_prof_options;
extern mk_prof_options mk__prof_opt MK_HIDDEN;
/* What the table leaves to the profiler: the signal's number from its name, the default file name. */
void mk__prof_read_options(void) MK_HIDDEN;
/* Whether the environment asks for anything that needs memkit started at load time (constructor). */
bool mk__prof_wanted_at_load(void) MK_HIDDEN;

/* ---- between the profiler's files ---- */

#define PROF_MAX_FRAMES 48

/* stack.c: the caller's return addresses, memkit's own frames left out.  Allocates nothing. */
int  mk__prof_backtrace(uintptr_t *frames, int max) MK_HIDDEN;
void mk__prof_stack_warm_up(void) MK_HIDDEN;
/* unwind.c: return addresses from the caller of mk__prof_unwind outwards, by the unwind tables; -1 where
 * this walker is not built (not x86-64, glibc before 2.35). */
int  mk__prof_unwind(uintptr_t *frames, int max) MK_HIDDEN;
void mk__prof_unwind_own_text(uintptr_t lo, uintptr_t hi) MK_HIDDEN;   /* memkit's text, when a shared object */

/* table.c: samples (live sampled blocks) and sites (stack + block size), under one lock. */
typedef struct prof_site {
	uint64_t hash;
	uint32_t size;            /* block size of its samples (one site per size: pprof's scaling is exact) */
	uint16_t nframes;
	uint64_t live_count, alloc_count;   /* samples */
	double bytes_each;        /* what one sample stands for: mk__prof_weight(size) * size */
	uintptr_t frames[PROF_MAX_FRAMES];
} prof_site;

void   mk__prof_lock(void) MK_HIDDEN;
void   mk__prof_unlock(void) MK_HIDDEN;
bool   mk__prof_trylock(void) MK_HIDDEN;
void   mk__prof_reset_lock(void) MK_HIDDEN;
/* Records a sample of p (size bytes) with its stack; false when out of memory (the sample is dropped). */
bool   mk__prof_record(uintptr_t p, size_t size, const uintptr_t *frames, int nframes) MK_HIDDEN;
/* Forgets p if it is a live sample (lock held). */
void   mk__prof_unrecord(uintptr_t p) MK_HIDDEN;
/* false: p is not a live sample (no lock needed); true: it may be. */
bool   mk__prof_maybe_sampled(uintptr_t p) MK_HIDDEN;
/* The sites, copied into `out` (capacity `max`), lock held by the caller; returns how many there are. */
size_t mk__prof_sites_copy(prof_site *out, size_t max) MK_HIDDEN;
size_t mk__prof_sites_count(void) MK_HIDDEN;
/* Estimated live bytes (the sum of the live samples' weights times their sizes), lock held. */
double mk__prof_live_estimate(void) MK_HIDDEN;
double mk__prof_weight(size_t size) MK_HIDDEN;     /* 1 / (1 - exp(-size / rate)) */
double mk__prof_ln(double x) MK_HIDDEN;            /* libm is not a dependency */

/* symbols.c: names[i] for the return address pcs[i] (sorted ascending): the function's name, else
 * object+0xoffset, else the number; scratch holds n words. */
#define PROF_NAME_MAX 256
void mk__prof_symbolize(const uintptr_t *pcs, size_t n, char (*names)[PROF_NAME_MAX], uintptr_t *scratch) MK_HIDDEN;
void mk__prof_symbols_after_fork(void) MK_HIDDEN;   /* from the child's fork handler: dladdr from then on */

/* pprof.c: the profile and the leak report. */
int  mk__prof_write(const char *path, bool symbols) MK_HIDDEN;
void mk__prof_leak_report(int fd) MK_HIDDEN;
/* The next default profile name (MEMKIT_PROF_FILE with %p, a sequence number after the first). */
void mk__prof_next_name(char *buf, size_t size) MK_HIDDEN;
void mk__prof_names_after_fork(void) MK_HIDDEN;
void mk__prof_expand(const char *pattern, char *buf, size_t size) MK_HIDDEN;   /* %p: the pid */

#endif
