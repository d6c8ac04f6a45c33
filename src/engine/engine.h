/* The engine's internal interface, and its fast paths (inlined into the exported malloc and free).
 *
 * Fast path: a malloc of up to MK_DIRECT_MAX bytes pops the first block of the span that the thread's heap
 * keeps for that size; a free on the owning thread pushes the block back.  Everything else (first call,
 * empty span, other sizes, another thread's block, bad pointers) goes to one named slow path. */
#ifndef MK_ENGINE_H
#define MK_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <malloc.h>
#include <stdio.h>

#include "engine/types.h"
#include "engine/options.h"
#include "engine/stats.h"

#define mk_likely(x)   __builtin_expect(!!(x), 1)
#define mk_unlikely(x) __builtin_expect(!!(x), 0)
#define MK_INLINE      static inline __attribute__((always_inline))
#define MK_SLOW        __attribute__((noinline, cold))
#define MK_HIDDEN      __attribute__((visibility("hidden")))
/* A span's heap and state are written by its owner and read by any thread that frees into it (to find the
 * owner, or to validate the pointer): relaxed atomics, which cost a plain mov on x86-64. */
#define MK_LOAD(field)        __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define MK_STORE(field, value) __atomic_store_n(&(field), (value), __ATOMIC_RELAXED)

/* Under AddressSanitizer (the asan build of the tests) a free block is poisoned past its two words of links,
 * and a block handed out is unpoisoned whole: an instrumented program that writes into a freed block, or
 * into a block handed out to someone else after it freed it, is stopped at the write.  Nothing otherwise. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define MK_ASAN_FREE(b, size) ASAN_POISON_MEMORY_REGION((char *)(b) + sizeof(mk_block), (size) - sizeof(mk_block))
#define MK_ASAN_LIVE(b, size) ASAN_UNPOISON_MEMORY_REGION((b), (size))
#define MK_NO_ASAN __attribute__((no_sanitize_address))
#else
#define MK_ASAN_FREE(b, size) ((void)0)
#define MK_ASAN_LIVE(b, size) ((void)0)
#define MK_NO_ASAN
#endif

/* The calling thread's heap.  A thread starts on mk__empty_heap, whose spans have no free block, so the
 * first malloc falls into the slow path, which gives the thread a real heap: no "initialised?" test. */
#ifndef MK_PROF_COUNT
#define MK_PROF_COUNT 0
#endif
#if MK_PROF_COUNT
/* The profiling build (libmemkit-prof.so, docs/profiling.md): the inlined malloc counts the bytes it hands
 * out down to the next sample point, kept beside the heap pointer so that one TLS address serves both.
 * Below 0: the slow path (a point fell in the block, or the thread has not drawn its first gap yet). */
typedef struct mk_tls {
	mk_heap *heap;
	int64_t prof_left;
} mk_tls;
extern __thread mk_tls mk__tls __attribute__((tls_model("initial-exec"))) MK_HIDDEN;
#define mk__tls_heap (mk__tls.heap)
#else
extern __thread mk_heap *mk__tls_heap __attribute__((tls_model("initial-exec"))) MK_HIDDEN;
#endif
extern const mk_heap mk__empty_heap MK_HIDDEN;
extern mk_span mk__empty_span MK_HIDDEN;

/* One byte per 4 MiB of address space: 1 where a segment of ours lives.  Makes free() of a pointer memkit
 * never returned safe to diagnose: the segment header is only read where this says there is one. */
extern uint8_t mk__segmap[(size_t)1 << MK_SEGMAP_BITS] MK_HIDDEN;
extern uintptr_t mk__secret MK_HIDDEN;

/* The segment map's index of p.  Bits above 47 are dropped, so a pointer at or above 2^47 aliases a segment
 * of ours; the fast free still cannot be fooled by one: it reads only that segment's (mapped) header, and
 * the exact block test below fails for an address 2^47 away from the span.  Slow paths use mk__is_ours. */
MK_INLINE uintptr_t mk__segmap_index(const void *p) { return ((uintptr_t)p >> MK_SEG_SHIFT) & MK_SEGMAP_MASK; }

/* The segment holding p (for p >= 2^47: the segment it aliases). */
MK_INLINE mk_segment *mk__segment_of(const void *p)
{
	uintptr_t i = mk__segmap_index(p);
	/* Opaque to the optimiser, which would otherwise fold the shifts into an AND with a 64-bit mask
	 * (movabs + and): as it is, the fast free reuses the index it already has (one shl). */
	__asm__("" : "+r"(i));
	return (mk_segment *)(i << MK_SEG_SHIFT);
}

MK_INLINE mk_span *mk__span_of(mk_segment *seg, const void *p)
{
	return (mk_span *)((char *)seg + seg->span_at[((uintptr_t)p >> MK_SLICE_SHIFT) & (MK_SLICES - 1)]);
}

/* The fast path's test: p's 4 MiB is one of our segments, or aliases one (see mk__segmap_index). */
MK_INLINE bool mk__is_ours_small(const void *p)
{
#if defined(__SANITIZE_THREAD__)
	/* Segments are mapped (byte stored with release) while other threads read the map: a byte load is
	 * atomic on x86-64, but TSan wants it said; elsewhere the plain load lets the compare take memory. */
	return __atomic_load_n(&mk__segmap[mk__segmap_index(p)], __ATOMIC_RELAXED) == 1;
#else
	return mk__segmap[mk__segmap_index(p)] == 1;
#endif
}

/* The slow paths' test: p lies in one of our segments. */
MK_INLINE bool mk__is_ours(const void *p)
{
	return ((uintptr_t)p >> 47) == 0 && mk__is_ours_small(p);
}

/* Exact test that p is the start of a block of s that has been carved (handed out, or on a free list):
 * multiplying by the inverse of the odd part of the block size and rotating away its power-of-two part maps
 * (p - start) to the block index when it is a multiple of the block size, and to a value above
 * UINT64_MAX / block_size otherwise (Granlund-Montgomery divisibility).  As carved * block_size fits the
 * span, `index < carved` rejects at once interior pointers, pointers below the span, the tail slack past
 * capacity and blocks not carved yet.  carved only grows while the span lives; other threads read it
 * relaxed (a block they were given was carved before it was handed to them). */
MK_INLINE uint64_t mk__block_index(const mk_span *s, uintptr_t p)
{
	uint64_t x = (uint64_t)(p - s->start) * s->div_mul;
	return (x >> s->div_shift) | (x << ((64 - s->div_shift) & 63));
}
MK_INLINE bool mk__is_block_start(const mk_span *s, uintptr_t p) { return mk__block_index(s, p) < MK_LOAD(s->carved); }
/* The same, for the span's owner: the only thread that writes carved reads it plainly, which lets the
 * compare take it from memory (a relaxed atomic load would cost a register and a mov). */
MK_INLINE bool mk__is_own_block_start(const mk_span *s, uintptr_t p) { return mk__block_index(s, p) < s->carved; }

/* What a free block holds in its second word: a random per-process secret (never 0) xor the block's own
 * address.  Every path that hands a block out writes 0 there (mk__span_pop, mk__large_alloc); cookie(p) is
 * written only at p + 8, by free(p) and by carving p onto a free list.  So a live block holds its own cookie only if the program
 * stored that 64-bit value itself: bytes copied from elsewhere (stale data of a reused span, another
 * block's freed words) carry another address's cookie and never match.  A match is a double free. */
MK_INLINE uintptr_t mk__cookie(const void *p) { return mk__secret ^ (uintptr_t)p; }

/* The fast free's double-free and interior-pointer checks (foreign pointers are always caught: the
 * segment map is what makes the rest safe to read).  Off only in the build that measures their cost. */
#ifndef MK_FREE_CHECKS
#define MK_FREE_CHECKS 1
#endif
static const bool mk__free_checks = MK_FREE_CHECKS;

void *mk__alloc_slow(size_t n) MK_HIDDEN;
void  mk__free_slow(void *p) MK_HIDDEN;
void  mk__free_other(mk_span *s, void *p) MK_HIDDEN;   /* p in one of our segments, s its span */
void  mk__span_emptied(mk_span *s) MK_HIDDEN;

/* Takes the first free block of s, or NULL. */
MK_INLINE void *mk__span_pop(mk_span *s)
{
	mk_block *b = s->free;
	if (mk_likely(b != NULL)) {
		s->free = b->next;
		s->used++;
		b->cookie = 0;
		MK_ASAN_LIVE(b, s->block_size);
	}
	return b;
}

/* The inlined malloc without its slow path: NULL where mk__engine_alloc calls mk__alloc_slow.  For callers
 * with work of their own after a failure (C++'s new-handler loop), which then need n kept across no call. */
MK_INLINE void *mk__engine_alloc_fast(size_t n)
{
#if MK_PROF_COUNT
	/* The block's class size is counted, as the default build's profiler counts (sample.c); a span with
	 * no free block leaves the count to the slow path. */
	if (mk_likely(n <= MK_DIRECT_MAX)) {
		mk_span *s = mk__tls_heap->direct[(n + 15) >> 4];
		if (mk_unlikely(s->free == NULL || (mk__tls.prof_left -= s->block_size) < 0))
			return NULL;
		return mk__span_pop(s);
	}
#else
	if (mk_likely(n <= MK_DIRECT_MAX))
		return mk__span_pop(mk__tls_heap->direct[(n + 15) >> 4]);
#endif
	return NULL;
}

MK_INLINE void *mk__engine_alloc(size_t n)
{
	void *b = mk__engine_alloc_fast(n);
	if (mk_likely(b != NULL))
		return b;
	return mk__alloc_slow(n);
}

MK_INLINE void mk__engine_free(void *p)
{
	if (mk_unlikely(!mk__is_ours_small(p))) {   /* NULL, huge blocks and foreign pointers */
		mk__free_slow(p);
		return;
	}
	mk_span *s = mk__span_of(mk__segment_of(p), p);
	mk_block *b = p;
	uintptr_t c = mk__cookie(p);
	if (mk_unlikely(MK_LOAD(s->heap) != mk__tls_heap)) {
		mk__free_other(s, p);                   /* another thread's block, a full span, a large block */
		return;
	}
	/* The block test comes before the cookie's load: it is what proves p is ours to read. */
	if (mk_unlikely(mk__free_checks && (!mk__is_own_block_start(s, (uintptr_t)p) || b->cookie == c))) {
		mk__free_slow(p);                       /* a bad free */
		return;
	}
	MK_ASAN_FREE(b, s->block_size);
	b->next = s->free;
	b->cookie = c;
	s->free = b;
	if (mk_unlikely(--s->used == 0))
		mk__span_emptied(s);
}

void *mk__realloc_slow(void *p, size_t n) MK_HIDDEN;

/* What a call says of a pointer that is not one of its live blocks. */
typedef struct mk_bad_words {
	const char *invalid, *interior, *freed;
} mk_bad_words;
/* The span of p, a pointer in one of our segments, after checking that p is the start of one of its live
 * blocks; otherwise aborts with the caller's words. */
mk_span *mk__valid_block(const void *p, const mk_bad_words *words) MK_HIDDEN;

/* realloc that stays in place: a block of this thread's heap that still fits and is not more than twice
 * what is asked (validated as the fast free validates).  The span may be parked as full (its heap pointer
 * tagged): a span of a few big blocks, all out, usually is, and the block stays where it is all the same. */
MK_INLINE void *mk__engine_realloc(void *p, size_t n)
{
	if (mk_likely(mk__is_ours_small(p))) {
		mk_span *s = mk__span_of(mk__segment_of(p), p);
		if (mk_likely(((uintptr_t)MK_LOAD(s->heap) & ~MK_FULL_TAG) == (uintptr_t)mk__tls_heap &&
		              n <= s->block_size && n >= s->block_size / 2 &&
		              mk__is_own_block_start(s, (uintptr_t)p) && ((mk_block *)p)->cookie != mk__cookie(p)))
			return p;
	}
	return mk__realloc_slow(p, n);
}

/* The backend functions of src/override/backend.h. */
void  *mk__engine_alloc_zero(size_t n) MK_HIDDEN;
void  *mk__engine_alloc_aligned(size_t align, size_t n) MK_HIDDEN;
size_t mk__engine_usable_size(const void *p) MK_HIDDEN;
int    mk__engine_trim(size_t pad) MK_HIDDEN;
void   mk__engine_stats_print(void) MK_HIDDEN;
void   mk__engine_info(struct mallinfo2 *mi) MK_HIDDEN;
int    mk__engine_check(void) MK_HIDDEN;
/* Beyond backend.h's list, used by api.c when these macros say so: malloc_info, mk_stats_print and
 * mk_stats_get (stats.c), mallopt over the engine's options (options.c). */
#define MK_BACKEND_MALLOC_INFO 1
#define MK_BACKEND_MALLOPT 1
#define MK_BACKEND_START 1   /* the drop-in initialises at load: see api.c */
void   mk__engine_start(void) MK_HIDDEN;   /* = mk__init (init.c) */
int    mk__engine_malloc_info(int options, FILE *fp) MK_HIDDEN;
/* 1 when param is one memkit knows (setting an option, or accepted and ignored), 0 otherwise. */
int    mk__engine_mallopt(int param, int value) MK_HIDDEN;

/* ---- between the engine's files ---- */

/* sizeclass.c */
typedef struct mk_class_info {
	uint32_t size;
	uint32_t span_slices;
	uint8_t direct_lo, direct_hi;  /* the direct-table entries that map to this class: [lo, hi) */
	uint64_t div_mul;
	uint8_t div_shift;
} mk_class_info;
extern mk_class_info mk__classes[MK_NCLASSES] MK_HIDDEN;
extern uint8_t mk__direct_class[MK_DIRECT_COUNT] MK_HIDDEN;
void     mk__classes_init(void) MK_HIDDEN;
unsigned mk__class_of(size_t n) MK_HIDDEN;   /* n <= MK_MEDIUM_MAX */

/* init.c: process-wide state, options, errors */
void     mk__init(void) MK_HIDDEN;
uint64_t mk__now_ms(void) MK_HIDDEN;
void     mk__fatal(const char *what, const void *p) MK_HIDDEN __attribute__((noreturn, cold));
void     mk__message(const char *fmt, ...) MK_HIDDEN __attribute__((format(printf, 1, 2)));
void     mk__lock_all(void) MK_HIDDEN;
void     mk__unlock_all(void) MK_HIDDEN;

/* segment.c: spans out of segments, purge, segment map */
/* The purge budget when MEMKIT_PURGE_LIMIT is 0: 1/8 of the memory in spans (up to 1/2 while what was
 * purged is wanted back at once: segment.c), at least this. */
#define MK_PURGE_BUDGET_MIN ((size_t)4 << 20)
/* A span of `slices` for blocks of class cls (or one MK_LARGE_CLS block), its geometry set under the
 * segment lock so that no walker (check, a fork's child) sees it half made.  NULL when the OS refuses. */
mk_span *mk__span_alloc(unsigned slices, unsigned cls) MK_HIDDEN;
void     mk__span_free(mk_span *s) MK_HIDDEN;
/* mk__span_free of a span whose block was freed at freed_ms (a large block's, out of its thread's cache). */
void     mk__span_free_aged(mk_span *s, uint64_t freed_ms) MK_HIDDEN;
void     mk__segments_purge(bool all) MK_HIDDEN;
/* A purge round (mk__segments_purge(false)) if none ran for the purge delay: for large.c's cache, whose
 * frees take no lock otherwise. */
void     mk__segments_maybe_purge(uint64_t now) MK_HIDDEN;
/* The segments' purge budget (bytes of free memory that may stay resident) as of the last purge round,
 * read without the lock: large.c's cache takes at most a quarter of it. */
size_t   mk__segments_budget(void) MK_HIDDEN;
bool     mk__segments_check(int *errors) MK_HIDDEN;
void     mk__segments_lock(void) MK_HIDDEN;
void     mk__segments_unlock(void) MK_HIDDEN;
void     mk__segments_reset_lock(void) MK_HIDDEN;
void     mk__segments_info(size_t *mapped, size_t *in_use, size_t *free_dirty, size_t *nsegments) MK_HIDDEN;
void     mk__span_carve(mk_span *s) MK_HIDDEN;
void     mk__segments_walk(void (*visit)(const mk_span *s, void *arg), void *arg) MK_HIDDEN;  /* spans in use */

/* heap.c: thread heaps */
void    *mk__heap_alloc_class(mk_heap *h, unsigned cls) MK_HIDDEN;
mk_span *mk__heap_move_on(mk_heap *h, unsigned cls, uint32_t want) MK_HIDDEN;   /* prof/sample.c */
void     mk__remote_free(mk_span *s, mk_block *b) MK_HIDDEN;
void     mk__heaps_lock(void) MK_HIDDEN;
void     mk__heaps_unlock(void) MK_HIDDEN;
void     mk__heaps_after_fork_child(void) MK_HIDDEN;
void     mk__heaps_collect_abandoned(void) MK_HIDDEN;
/* What parked heaps kept goes back if due by the purge delay now: options.c, when mallopt sets it. */
void     mk__heaps_sweep_parked(void) MK_HIDDEN;
int      mk__heap_check(mk_heap *h) MK_HIDDEN;
size_t   mk__heaps_count(size_t *abandoned) MK_HIDDEN;
void     mk__heaps_walk(void (*visit)(const mk_heap *h, void *arg), void *arg) MK_HIDDEN;    /* every heap */

/* large.c: blocks over MK_MEDIUM_MAX up to MK_LARGE_MAX, one span each */
void    *mk__large_alloc(size_t n) MK_HIDDEN;
void     mk__large_free(mk_span *s) MK_HIDDEN;
void     mk__large_flush(void) MK_HIDDEN;             /* this thread's cached large spans to their segments */
size_t   mk__large_cached_bytes(void) MK_HIDDEN;      /* what this thread's cache holds */

/* huge.c: blocks over MK_LARGE_MAX */
void    *mk__huge_alloc(size_t n, size_t align, bool zero) MK_HIDDEN;
bool     mk__huge_free(void *p) MK_HIDDEN;                /* false: not a huge block of ours */
size_t   mk__huge_usable(const void *p) MK_HIDDEN;        /* 0: not a huge block of ours */
void    *mk__huge_realloc(void *p, size_t n) MK_HIDDEN;
void     mk__huge_purge(bool all) MK_HIDDEN;
void     mk__huge_lock(void) MK_HIDDEN;
void     mk__huge_unlock(void) MK_HIDDEN;
void     mk__huge_reset_lock(void) MK_HIDDEN;
void     mk__huge_info(size_t *count, size_t *bytes, size_t *cached) MK_HIDDEN;
int      mk__huge_check(void) MK_HIDDEN;
bool     mk__huge_was_freed(const void *p) MK_HIDDEN;

#include "engine/sized.h"   /* the checked sized free (C++ sized delete, free_sized) */

#endif
