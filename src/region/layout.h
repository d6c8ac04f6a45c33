/* The layout of a region heap, shared by the files of src/region (internal).
 *
 *   offset 0          struct rg_header (magic, version, geometry, lock, roots, counters, free-list heads)
 *   bitmap_off        one bit per 16-byte unit of the block area: set exactly where a block starts
 *   heap_off          blocks, back to back, up to heap_end
 *
 * A block is a 16-byte header followed by its payload (so payloads are 16-byte aligned):
 *   word0  size (in 16-byte units, header included) in the low 32 bits, a check value in the high 32 bits.
 *          The check mixes the block's offset, its size and its state (free or used), so one aligned
 *          64-bit store changes size and state together: that store is the commit point of every operation.
 *   word1  the previous block's size in units (low 32 bits), the owner's pid (high 32 bits; meaningless
 *          when free).
 * A free block holds two offsets in its payload: the next and previous free blocks of its size bin.
 *
 * Only word0 of each block is authoritative.  Everything else (word1's prev field, the start bitmap, the
 * bins and the counters) is derived from the chain of word0s and is rebuilt by mk__rg_rebuild() after a
 * process dies holding the lock. */
#ifndef MK_REGION_LAYOUT_H
#define MK_REGION_LAYOUT_H

#include <pthread.h>
#include <stdint.h>

#include "memkit_region.h"

#define RG_MAGIC 0x5041454847524b4dull /* "MKRGHEAP" read as little-endian bytes */
#define RG_VERSION 1u
#define RG_UNIT 16u
#define RG_MIN_UNITS 2u      /* header + two free-list links */
#define RG_NBINS 168u        /* 64 exact bins, then 4 per power of two up to 2^32 units */
#define RG_BIN_WORDS 3u
#define RG_FLAG_CORRUPT 1u

struct rg_header {
	uint64_t magic;
	uint32_t version;
	uint32_t abi;            /* sizeof(struct rg_header) and sizeof(pthread_mutex_t): same build family */
	uint64_t region_size;
	uint64_t bitmap_off;
	uint64_t heap_off;
	uint64_t heap_end;
	uint64_t geometry_sum;   /* a hash of the fields above: an edited or torn header is refused */
	union {
		pthread_mutex_t m;
		char pad[64];
	} lock;
	uint32_t lock_holder;    /* pid holding the lock (0: none); written after taking it, cleared before */
	uint32_t flags;
	uint32_t recoveries;
	uint32_t last_dead;
	uint64_t roots[MKR_ROOTS];
	uint64_t used_blocks, used_units, free_blocks, free_units;
	uint64_t bin_map[RG_BIN_WORDS];
	uint64_t bins[RG_NBINS]; /* offsets of the first free block of each bin, 0 when empty */
};

enum rg_kind { RG_CALLER, RG_PRIVATE, RG_SHARED, RG_FILE };

/* The per-process handle: where this process mapped the region, and the geometry validated when it was
 * opened.  The region is untrusted (any process that maps it can write anything, at any time), so every
 * bound the code relies on comes from this copy, never from the header again. */
struct mkr_heap {
	char *base;
	struct rg_header *hdr;
	size_t map_size;
	int fd;
	enum rg_kind kind;
	uint64_t region_size, bitmap_off, heap_off, heap_end;
};

#define RG_ABI ((uint32_t)(sizeof(struct rg_header) << 8 | sizeof(pthread_mutex_t)))

/* heap.c: operations on blocks; *_locked ones expect the lock held. */
void     mk__rg_format(mkr_heap *h);
uint64_t mk__rg_alloc_locked(mkr_heap *h, uint64_t units);
uint64_t mk__rg_free_locked(mkr_heap *h, uint64_t off);
int      mk__rg_rebuild(mkr_heap *h);
int      mk__rg_repair_locked(mkr_heap *h);
int      mk__rg_check_locked(mkr_heap *h);
int      mk__rg_resize_locked(mkr_heap *h, uint64_t off, uint64_t units);
/* 1 used, 0 free, -1 not a block start (off: a 16-aligned offset inside the block area). */
int      mk__rg_block_state(const mkr_heap *h, uint64_t off, uint32_t *units);
uint32_t mk__rg_owner_of(const mkr_heap *h, uint64_t off);
uint64_t mk__rg_largest_free(const mkr_heap *h);
/* A walk over the blocks by their headers: 1 used, 0 free, -1 damaged (EIO reported, heap flagged) for the
 * block at *off, which then advances; the walk is over when *off reaches heap_end.  Bounded: every step
 * moves forward by at least RG_MIN_UNITS over a header whose check value holds. */
int      mk__rg_walk_step(mkr_heap *h, uint64_t *off, uint32_t *units);
/* The counters are possible for this heap (used + free units = the heap, at least 2 units a block). */
int      mk__rg_counters_ok(const mkr_heap *h);
/* The start of the block that contains off (a unit boundary inside the blocks), by a walk; 0 when the
 * walk meets damage. */
uint64_t mk__rg_block_containing(mkr_heap *h, uint64_t off);
/* The word0 a block at off of `units` has (used or free): for tests that build damaged heaps. */
uint64_t mk__rg_word0(uint64_t off, uint64_t units, int used);

/* sync.c: the lock (with repair after a dead holder) and the pid of this process. */
int      mk__rg_lock(mkr_heap *h, int even_if_corrupt);
void     mk__rg_unlock(mkr_heap *h);
int      mk__rg_init_lock(mkr_heap *h);
pid_t    mk__rg_self(void);

/* open.c: error reporting and geometry. */
void     mk__rg_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t mk__rg_geometry_sum(const struct rg_header *hd);

/* Test hook: when set, called at named points inside locked operations, between two stores, so that a
 * test can stop or kill the process there.  Never set outside tests. */
enum rg_hook_point {
	RG_HOOK_ALLOC_SPLIT = 1, /* remainder written, allocation not yet committed */
	RG_HOOK_FREE_MERGE,      /* block marked free, neighbours not yet merged */
	RG_HOOK_REALLOC_GROW,    /* grown in place, next block's prev not yet updated */
	RG_HOOK_LOCKED,          /* lock taken, nothing changed yet */
};
extern void (*mk__region_hook)(int point);

#endif
