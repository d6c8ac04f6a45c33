/* The engine's data structures.
 *
 * Glossary (docs/ARCHITECTURE.md has the longer version):
 *   segment    a 4 MiB, 4 MiB-aligned mapping cut into 64 slices of 64 KiB.  Slice 0 holds the segment's
 *              header (this struct and the span descriptors), so metadata is found from any address by
 *              masking: no header sits in front of a small block.
 *   span       a run of 1..63 slices in a segment.  A span in use holds blocks of one size class and belongs
 *              to one heap; a free span waits in its segment for reuse (and is purged after a delay).
 *   size class one of MK_NCLASSES block sizes, from 16 bytes to 128 KiB, spaced so that no request wastes
 *              more than 12.5% of its 16-byte-rounded size.
 *   heap       one per thread (thread-local, no locks): for each class a list of spans with free blocks.
 *   block      what malloc returns.  A free block's first word links it into its span's free list; its
 *              second word holds its cookie (a per-process secret xor its address) that makes a second
 *              free of it detectable.
 *   pin        the current span of each class holds one extra count in `used`, so that freeing its last
 *              block on the fast path does not look like an empty span (it is kept for reuse anyway).
 *   large      a request over MK_MEDIUM_MAX up to MK_LARGE_MAX: a span of its own (one block), belonging
 *              to no heap; freed straight back to its segment, reused without a system call.
 *   huge       a request over MK_LARGE_MAX: its own mapping, registered in a table, cached when freed.
 *
 * Ownership: a span's `free` list, `used` and list links belong to its heap's thread; other threads only
 * push onto `xfree` (atomic), or onto the heap's `xblocks` when the span was marked full. */
#ifndef MK_TYPES_H
#define MK_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MK_SEG_SHIFT    22
#define MK_SEG_SIZE     ((size_t)1 << MK_SEG_SHIFT)
#define MK_SEG_MASK     (MK_SEG_SIZE - 1)
#define MK_SLICE_SHIFT  16
#define MK_SLICE_SIZE   ((size_t)1 << MK_SLICE_SHIFT)
#define MK_SLICES       (MK_SEG_SIZE / MK_SLICE_SIZE) /* 64, slice 0 being the header */

#define MK_NCLASSES     88
#define MK_DIRECT_MAX   1024                 /* sizes served by the inlined table lookup */
#define MK_DIRECT_COUNT (MK_DIRECT_MAX / 16 + 1)
#define MK_MEDIUM_MAX   ((size_t)128 * 1024) /* largest size class; above it, huge blocks */
#define MK_LARGE_MAX    ((size_t)32 * MK_SLICE_SIZE) /* up to here, one block per span: no mmap */
#define MK_LARGE_CLS    255                  /* the class of such spans */
#define MK_PAGE_SIZE_HINT 4096u             /* how much of a new span is linked into its free list at once */

/* Address space covered by the segment map: the 47-bit user space of x86-64. */
#define MK_SEGMAP_BITS  (47 - MK_SEG_SHIFT)
#define MK_SEGMAP_MASK  (((uintptr_t)1 << MK_SEGMAP_BITS) - 1)

typedef struct mk_block {
	struct mk_block *next;
	uintptr_t cookie;
} mk_block;

enum mk_span_state {
	MK_SPAN_FREE = 0,  /* in its segment, unused */
	MK_SPAN_ACTIVE,    /* in its heap's list for its class */
	MK_SPAN_FULL,      /* in its heap's full list: no free block when last looked at */
};

/* xfree packs three things in one word, so a remote free is one compare-and-swap and the owner takes the
 * whole list without walking it: the list head (bits 4..47: blocks are 16-byte aligned, user addresses
 * are below 2^47), how many blocks it holds (bits 48..63; a span holds at most 4096), and MK_XFULL, set
 * when the owner parked the span as full, so that the next remote free tells the heap. */
#define MK_XFULL        ((uintptr_t)1)
#define MK_XPTR_MASK    ((((uintptr_t)1 << 48) - 1) & ~(uintptr_t)15)
#define MK_XCOUNT_SHIFT 48

struct mk_heap;

/* In a span's heap pointer (heaps are 64-byte aligned): the span is parked as full, so the inlined free's
 * owner test fails and the owner's free of one of its blocks takes it off the full list (heap.c). */
#define MK_FULL_TAG ((uintptr_t)1)

/* Three cache lines, by who touches them: what any freeing thread reads to validate a pointer and find
 * the owner (written once per span, or rarely by the owner); what the owner updates on every malloc and
 * free; and the word other threads push onto.  Sharing a line between the last two would make every
 * remote free steal the owner's hottest line. */
typedef struct mk_span {
	/* Read-mostly. */
	struct mk_heap *heap;   /* owner (| MK_FULL_TAG while parked as full), NULL when free or large */
	uintptr_t start;        /* address of the first block */
	uint64_t div_mul;       /* ror((p - start) * div_mul, div_shift): p's block index, if it is */
	uint32_t block_size;
	uint32_t slices;        /* length of the span (or free run) in slices */
	uint32_t capacity;      /* blocks that fit */
	/* Blocks linked from the untouched tail so far: read by every free that validates a pointer, the
	 * remote ones included, so it lives here and not in the owner's line (which a remote free would
	 * then pull away from the owner each time); it changes once per page of blocks carved.  64 bits,
	 * so that the fast free compares the block index with it in one instruction. */
	uint64_t carved;
	uint8_t div_shift;
	uint8_t cls;
	uint8_t state;
	/* Every slice of the span was purged or never touched when the span was taken (so it reads zero):
	 * calloc of a large block then clears nothing.  Cleared when a large block is freed. */
	uint8_t zeroed;
	/* The owner's. */
	mk_block *free __attribute__((aligned(64)));
	uint32_t used;          /* blocks out (not on `free`), + 1 while the span is its class's current */
	struct mk_span *next, *prev;
	/* Other threads'. */
	_Atomic uintptr_t xfree __attribute__((aligned(64))); /* head | count << 48 | MK_XFULL */
} __attribute__((aligned(64))) mk_span;

/* A link of segment.c's lists of slices (src/engine/runs.h): each end names a slice as its segment's
 * address | its index (segments are 4 MiB-aligned), 0 for none. */
typedef struct mk_slice_link {
	uintptr_t prev, next;
} mk_slice_link;

typedef struct mk_segment {
	uint64_t magic;
	struct mk_segment *next, *prev; /* all segments */
	uint32_t free_slices;
	/* Free slices whose pages may be resident (not purged since freed), and when each was freed: per
	 * slice, so that merging free runs neither makes purged pages dirty again nor makes old ones young. */
	uint64_t dirty_mask;
	uint64_t dirty_since_ms[MK_SLICES];
	/* While the segment is wholly free: when its last slice was freed (the newest dirty_since_ms; 0 if
	 * it never held a span), set when its one free run is made (segment.c). */
	uint64_t whole_free_since_ms;
	/* Byte offset, from the segment, of the descriptor of the run covering each slice: one load takes
	 * free() from an address to its span. */
	uint16_t span_at[MK_SLICES];
	mk_span spans[MK_SLICES];      /* descriptors; only a run's first slice's is meaningful */
	/* ---- segment.c's indexes (src/engine/runs.h), under the segment lock ---- */
	mk_slice_link run_link[MK_SLICES];   /* a free run (by its first slice) in the bin of its length */
	mk_slice_link dirty_link[MK_SLICES]; /* a dirty slice in the queue of dirty slices, oldest first */
} mk_segment;

typedef struct mk_span_list {
	mk_span *first, *last;
} mk_span_list;

#include "engine/stats_list.h"

/* Heaps are 64-byte aligned and sized, and what other threads touch (xblocks, pushed onto; owned and
 * generation, read by every remote free) has a line of its own at the end: a remote free into one heap
 * never invalidates a line of the owner's direct[] table, nor of the next heap's. */
typedef struct mk_heap {
	/* Hot: the inlined malloc indexes direct by (size + 15) / 16. */
	mk_span *direct[MK_DIRECT_COUNT];
	mk_span *current[MK_NCLASSES];   /* where the next block of each class comes from */
	mk_span_list active[MK_NCLASSES];
	mk_span_list full;
	/* Classes that may have spans in this heap (bit cls % 64 of word cls / 64): a thread's exit walks
	 * these, not all MK_NCLASSES. */
	uint64_t classes[(MK_NCLASSES + 63) / 64];
	/* Spans emptied lately, kept (in no list) for reuse by their class for up to the purge delay, so a
	 * working set that hovers at a span's boundary does not map and retire spans continually (heap.c). */
	mk_span *kept[4];
	uint64_t kept_ms[4];
	uint32_t nkept, kept_slices;
	struct mk_heap *next_in_pool;    /* abandoned heaps waiting for a new thread */
	/* Parked with its current spans kept for the next thread, since parked_ms (heap.c, "parked heaps
	 * that keep their spans"): both under the heaps lock. */
	uint64_t parked_ms;
	bool parked_keep;
	struct mk_heap *next_all;        /* every heap ever made */
	mk_heap_stats stats;             /* counted by the owner on slow paths, summed at report time (stats.c) */
	/* Other threads'. */
	_Atomic(mk_block *) xblocks __attribute__((aligned(64)));  /* remote frees into spans parked as full */
	int owned;                       /* a live thread uses it (changes under the heaps lock) */
	/* Changes (under the heaps lock) whenever the heap is adopted, parked, or collected while parked: a
	 * remote freer that saw a value before publishing its block knows, finding it unchanged under the
	 * lock, that no one can have retired the span since. */
	unsigned long generation;
} __attribute__((aligned(64))) mk_heap;

#endif
