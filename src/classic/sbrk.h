/* memkit classic: the sbrk allocator (in-band headers, LIFO free list, coalescing, a heap that grows and
 * shrinks with the program break).  See src/classic/sbrk.c for its layout and invariants, docs/sbrk.md
 * for the design and its measured cost.
 *
 * Three faces:
 *  - the A2 seed's names: mymalloc, mycalloc, myrealloc, myfree (the malloc family's rules: errno,
 *    overflow, realloc(p, 0) frees);
 *  - the backend that src/override/api.c exports as malloc, free, ... in build/libmemkit-sbrk.so;
 *  - a few introspection calls for tests and tools (counters, a heap walk). */
#ifndef MK_CLASSIC_SBRK_H
#define MK_CLASSIC_SBRK_H

#include <malloc.h>
#include <stddef.h>
#include <stdint.h>

/* Geometry and policy, public so that tests and docs derive their expectations from them. */
#define MK_SBRK_ALIGN      16u            /* every payload address is a multiple of this */
#define MK_SBRK_HEADER     8u             /* bytes of header in front of each block's payload */
#define MK_SBRK_MIN_BLOCK  32u            /* a free block holds header, two links and a footer */
#define MK_SBRK_GROW_MIN   (32u * 1024)   /* each brk growth is at least this (and whole 4 KiB pages) */
#define MK_SBRK_TRIM_AT    (64u * 1024)   /* a free top block this large goes back to the kernel... */
#define MK_SBRK_TRIM_KEEP  (16u * 1024)   /* ...down to this much, so alloc/free at the edge does not
                                            * move the break every time */

/* The A2 seed's interface (defined by api.c compiled with the `my` prefix). */
void *mymalloc(size_t size);
void *mycalloc(size_t count, size_t size);
void *myrealloc(void *ptr, size_t size);
void  myfree(void *ptr);

/* The backend contract of src/override/backend.h. */
void  *mk__sbrk_alloc(size_t n);
void  *mk__sbrk_alloc_zero(size_t n);
void  *mk__sbrk_alloc_aligned(size_t align, size_t n);
void   mk__sbrk_free(void *p);
void  *mk__sbrk_realloc(void *p, size_t n);
size_t mk__sbrk_usable_size(const void *p);
int    mk__sbrk_trim(size_t pad);
void   mk__sbrk_stats_print(void);
void   mk__sbrk_info(struct mallinfo2 *mi);
int    mk__sbrk_check(void);

/* A snapshot of the heap, taken under the lock.  Block counts and bytes include headers. */
struct mk_sbrk_counters {
	unsigned long grow_calls;    /* successful positive sbrk calls since the start */
	unsigned long shrink_calls;  /* successful negative sbrk calls */
	size_t brk_bytes_grown;      /* sum of all growths */
	uintptr_t heap_start;        /* first block header (0 before the first allocation) */
	uintptr_t heap_end;          /* where this allocator believes the program break is */
	size_t used_blocks, used_bytes;
	size_t free_blocks, free_bytes;
	size_t top_free;             /* size of the free block touching the break (0 if none) */
};
void mk__sbrk_counters(struct mk_sbrk_counters *c);

/* Calls fn once per block, in address order, under the allocator's lock: fn must not allocate.
 * kind: 0 used, 1 free, 2 fence (memory between two of our segments that someone else's sbrk took). */
enum { MK_SBRK_USED, MK_SBRK_FREE, MK_SBRK_FENCE };
typedef void mk_sbrk_visit(void *arg, uintptr_t block, size_t size, int kind);
void mk__sbrk_walk(mk_sbrk_visit *fn, void *arg);

#endif
