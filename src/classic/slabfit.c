/* slabfit: a slab and a next-fit heap over one mapped region (the P3A interface, include/mem.h).
 *
 * Region layout (the region is a whole number of pages; Q = region_size / 4):
 *
 *   region                                        region + Q
 *   | slab bitmap | slot 0 | slot 1 | ... | pad   | start bitmap | block | block | ... |   region end
 *   |<----------------- slab ------------------->|<------------- next fit ------------------>|
 *
 * Slab: slots of slabSize rounded up to 16 bytes.  A free slot's first 8 bytes link it to the next free
 * slot; an allocated slot is all the caller's.  Slots are handed out from the free list, or, when it is
 * empty, carved in address order from the untouched rest of the slab (so Mem_Init touches no slot).
 * Bit i of the slab bitmap is set while slot i is allocated: that is what catches a double free.
 *
 * Next fit: blocks of a 16-byte header plus a payload, sizes multiples of 16 and at least 32:
 *   allocated  size | USED,  MAGIC ^ (header address)
 *   free       size,         next free block;  the payload's first 8 bytes hold the previous free block
 * Free blocks are on a doubly linked list in address order; the rover is the free block where the next
 * search starts (where the last one ended).  Bit g of the start bitmap is set when a block header starts
 * at granule g (16 bytes) of the heap: Mem_Free accepts a pointer only if a header starts right before it,
 * so interior pointers are refused even when the bytes before them happen to look like a header.
 *
 * Invariants (Mem_Check verifies all of them):
 *  S1 every slot on the slab free list is carved, slot-aligned and has its bit clear; no cycle;
 *  S2 the carved slots whose bit is clear are exactly the slots on the free list; uncarved bits are clear;
 *  N1 the blocks tile [nf_start, nf_end) exactly; each size is a multiple of 16 and at least 32;
 *  N2 the start bitmap has a bit exactly at each block header;
 *  N3 every allocated header carries its magic; no two free blocks are neighbours (coalesced);
 *  N4 the free list holds exactly the free blocks, in address order, with consistent prev links;
 *  N5 the rover is NULL exactly when the free list is empty, and otherwise one of its blocks.
 * Locks: slab_lock guards the slab, nf_lock the next-fit heap; no code holds both except Mem_Check,
 * Mem_Walk and Mem_Dump, which take slab_lock first.  Region bounds never change after Mem_Init, so
 * Mem_Free can tell the parts apart without a lock. */
#include "mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "os/os.h"

#define ALIGN 16u
#define HDR 16u
#define MIN_BLOCK 32u
#define USED 1u
#define MAGIC 0x736c616266697421ull /* "slabfit!" */

struct block {
	uint64_t size;        /* bytes including this header; bit 0 = USED */
	uint64_t link;        /* USED: MAGIC ^ address; free: the next free block (0 at the end) */
	struct block *prev;   /* free blocks only: the previous free block */
};

enum { NONE, STARTING, READY };
static _Atomic int state;

static char *region;
static size_t region_size;
static int slab_request;                   /* slabSize as given to Mem_Init */

static pthread_mutex_t slab_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *slab_bits;
static char *slab_start;
static size_t slot_size, nslots, carved, slab_used;
static void *slab_free;

static pthread_mutex_t nf_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *start_bits;
static char *nf_start, *nf_end;
static struct block *free_head, *rover;

static size_t round16(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }
static int ready(void) { return atomic_load_explicit(&state, memory_order_acquire) == READY; }

static int bit(const uint64_t *map, size_t i) { return (map[i / 64] >> (i % 64)) & 1; }
static void set_bit(uint64_t *map, size_t i) { map[i / 64] |= 1ull << (i % 64); }
static void clear_bit(uint64_t *map, size_t i) { map[i / 64] &= ~(1ull << (i % 64)); }

/* ---- next fit ---- */

static size_t bsize(const struct block *b) { return b->size & ~(uint64_t)(ALIGN - 1); }
static int is_used(const struct block *b) { return b->size & USED; }
static struct block *next_free(const struct block *b) { return (struct block *)(uintptr_t)b->link; }
static size_t granule(const void *p) { return (size_t)((const char *)p - nf_start) / ALIGN; }
static struct block *phys_next(struct block *b) { return (struct block *)((char *)b + bsize(b)); }

/* Puts b in the list between p and n (either may be NULL). */
static void link_between(struct block *b, struct block *p, struct block *n)
{
	b->prev = p;
	b->link = (uintptr_t)n;
	if (p)
		p->link = (uintptr_t)b;
	else
		free_head = b;
	if (n)
		n->prev = b;
}

static void unlink_block(struct block *b)
{
	struct block *n = next_free(b);
	if (b->prev)
		b->prev->link = (uintptr_t)n;
	else
		free_head = n;
	if (n)
		n->prev = b->prev;
}

/* Takes `need` bytes from the first free block that fits, searching from the rover round the list. */
static void *nf_alloc(size_t need)
{
	pthread_mutex_lock(&nf_lock);
	struct block *start = rover ? rover : free_head, *b = start;
	void *result = NULL;
	if (b) {
		do {
			if (bsize(b) >= need)
				break;
			b = next_free(b) ? next_free(b) : free_head;
		} while (b != start);
	}
	if (b && bsize(b) >= need) {
		size_t rest = bsize(b) - need;
		if (rest >= MIN_BLOCK) {
			/* The remainder keeps b's place in the address-ordered list. */
			struct block *r = (struct block *)((char *)b + need);
			r->size = rest;
			link_between(r, b->prev, next_free(b));
			set_bit(start_bits, granule(r));
			b->size = need;
			rover = r;
		} else {
			rover = next_free(b);
			unlink_block(b);
		}
		b->size |= USED;
		b->link = MAGIC ^ (uintptr_t)b;
		result = (char *)b + HDR;
	}
	if (!rover)
		rover = free_head;
	pthread_mutex_unlock(&nf_lock);
	if (!result)
		errno = ENOMEM;
	return result;
}

/* The live block whose payload starts at p, or NULL.  Caller holds nf_lock. */
static struct block *nf_block_of(char *p)
{
	if ((uintptr_t)p % ALIGN || p < nf_start + HDR || p > nf_end - (MIN_BLOCK - HDR))
		return NULL;
	struct block *b = (struct block *)(p - HDR);
	if (!bit(start_bits, granule(b)) || !is_used(b) || b->link != (MAGIC ^ (uintptr_t)b))
		return NULL;
	if (bsize(b) < MIN_BLOCK || bsize(b) > (size_t)(nf_end - (char *)b))
		return NULL;
	return b;
}

static int nf_free(char *p)
{
	pthread_mutex_lock(&nf_lock);
	struct block *b = nf_block_of(p);
	if (!b) {
		pthread_mutex_unlock(&nf_lock);
		return -1;
	}
	b->size = bsize(b);
	/* Find b's neighbours in the address-ordered free list. */
	struct block *prev = NULL, *next = free_head;
	while (next && next < b) {
		prev = next;
		next = next_free(next);
	}
	if (prev && phys_next(prev) == b) {
		prev->size += b->size;
		clear_bit(start_bits, granule(b));
		b = prev;
	} else {
		link_between(b, prev, next);
	}
	if (next && phys_next(b) == next) {
		unlink_block(next);
		b->size += next->size;
		clear_bit(start_bits, granule(next));
		if (rover == next)
			rover = b;
	}
	if (!rover)
		rover = b;
	pthread_mutex_unlock(&nf_lock);
	return 0;
}

/* ---- slab ---- */

static void *slab_alloc(void)
{
	pthread_mutex_lock(&slab_lock);
	void *s = slab_free;
	if (s)
		slab_free = *(void **)s;
	else if (carved < nslots)
		s = slab_start + carved++ * slot_size;
	if (s) {
		set_bit(slab_bits, (size_t)((char *)s - slab_start) / slot_size);
		slab_used++;
	}
	pthread_mutex_unlock(&slab_lock);
	return s;
}

static int slab_release(char *p)
{
	size_t off = (size_t)(p - slab_start), i = off / slot_size;
	if (off % slot_size)
		return -1;
	pthread_mutex_lock(&slab_lock);
	int ok = i < carved && bit(slab_bits, i);
	if (ok) {
		clear_bit(slab_bits, i);
		*(void **)p = slab_free;
		slab_free = p;
		slab_used--;
	}
	pthread_mutex_unlock(&slab_lock);
	return ok ? 0 : -1;
}

/* ---- the interface ---- */

void *Mem_Init(int sizeOfRegion, int slabSize)
{
	if (sizeOfRegion <= 0 || slabSize <= 0) {
		errno = EINVAL;
		return NULL;
	}
	int expected = NONE;
	if (!atomic_compare_exchange_strong(&state, &expected, STARTING)) {
		errno = EBUSY;
		return NULL;
	}
	size_t size = ((size_t)sizeOfRegion + MK_PAGE_SIZE - 1) & ~(size_t)(MK_PAGE_SIZE - 1);
	size_t quarter = size / 4;
	size_t slot = round16((size_t)slabSize);
	/* As many slots as fit beside their bitmap (one bit per slot, in whole 16-byte units). */
	size_t n = quarter / slot, bits_bytes = 0;
	while (n > 0 && (bits_bytes = round16((n + 63) / 64 * 8)) + n * slot > quarter)
		n--;
	if (n == 0) {
		atomic_store(&state, NONE);
		errno = EINVAL;
		return NULL;
	}
	char *r = mk__os_map(size);
	if (!r) {
		atomic_store(&state, NONE);
		return NULL; /* errno = ENOMEM from the OS layer */
	}
	region = r;
	region_size = size;
	slab_request = slabSize;
	slab_bits = (uint64_t *)r;
	slab_start = r + bits_bytes;
	slot_size = slot;
	nslots = n;
	carved = slab_used = 0;
	slab_free = NULL;

	char *nf_area = r + quarter;
	size_t granules = (size - quarter) / ALIGN;
	start_bits = (uint64_t *)nf_area;
	nf_start = nf_area + round16((granules + 63) / 64 * 8);
	nf_end = r + size;
	struct block *all = (struct block *)nf_start;
	all->size = (size_t)(nf_end - nf_start);
	free_head = NULL;
	link_between(all, NULL, NULL);
	set_bit(start_bits, 0);
	rover = all;
	atomic_store_explicit(&state, READY, memory_order_release);
	return r;
}

void *Mem_Alloc(int size)
{
	if (size <= 0) {
		errno = EINVAL;
		return NULL;
	}
	if (!ready()) {
		errno = ENOMEM;
		return NULL;
	}
	if (size == slab_request) {
		void *s = slab_alloc();
		if (s)
			return s;
	}
	return nf_alloc(HDR + round16((size_t)size));
}

int Mem_Free(void *ptr)
{
	char *p = ptr;
	int rc = -1;
	if (p && ready()) {
		if (p >= slab_start && p < slab_start + nslots * slot_size)
			rc = slab_release(p);
		else if (p >= nf_start && p < nf_end)
			rc = nf_free(p);
	}
	if (rc)
		errno = EINVAL;
	return rc;
}

/* ---- inspection ---- */

static void lock_both(void)
{
	pthread_mutex_lock(&slab_lock);
	pthread_mutex_lock(&nf_lock);
}

static void unlock_both(void)
{
	pthread_mutex_unlock(&nf_lock);
	pthread_mutex_unlock(&slab_lock);
}

#define BAD(...) (bad++, fprintf(stderr, "Mem_Check: " __VA_ARGS__), fputc('\n', stderr))

static int check_slab(void)
{
	int bad = 0;
	size_t listed = 0, used = 0;
	for (size_t i = 0; i < nslots; i++) {
		if (i < carved)
			used += bit(slab_bits, i);
		else if (bit(slab_bits, i))
			BAD("uncarved slot %zu marked used", i);
	}
	for (char *s = slab_free; s; s = *(char **)s) {
		size_t off = (size_t)(s - slab_start);
		if (s < slab_start || off % slot_size || off / slot_size >= carved) {
			BAD("slab free list entry %p is not a carved slot", (void *)s);
			return bad;
		}
		if (bit(slab_bits, off / slot_size))
			BAD("free slot %p marked used", (void *)s);
		if (++listed > carved) {
			BAD("slab free list longer than the carved slots (cycle)");
			return bad;
		}
	}
	if (used != slab_used)
		BAD("slab bitmap counts %zu used slots, the counter %zu", used, slab_used);
	if (listed != carved - used)
		BAD("%zu slots on the slab free list, %zu carved slots free", listed, carved - used);
	return bad;
}

static int check_nf(void)
{
	int bad = 0;
	size_t blocks = 0, free_blocks = 0, starts = 0;
	int prev_free = 0;
	struct block *want = free_head, *want_prev = NULL;
	char *p = nf_start;
	while (p < nf_end) {
		struct block *b = (struct block *)p;
		size_t s = bsize(b);
		if (s < MIN_BLOCK || s > (size_t)(nf_end - p)) {
			BAD("block %p has size %zu (heap ends at %p)", (void *)b, s, (void *)nf_end);
			return bad;
		}
		if (!bit(start_bits, granule(b)))
			BAD("block %p has no start bit", (void *)b);
		blocks++;
		if (is_used(b)) {
			if (b->link != (MAGIC ^ (uintptr_t)b))
				BAD("allocated block %p lost its magic (overwritten header)", (void *)b);
			prev_free = 0;
		} else {
			if (prev_free)
				BAD("free blocks %p and its predecessor are not coalesced", (void *)b);
			if (b != want)
				BAD("free block %p is not next on the free list (%p is)", (void *)b, (void *)want);
			else {
				if (b->prev != want_prev)
					BAD("free block %p has prev %p, expected %p", (void *)b, (void *)b->prev, (void *)want_prev);
				want_prev = b;
				want = next_free(b);
			}
			free_blocks++;
			prev_free = 1;
		}
		p += s;
	}
	if (want)
		BAD("free list entry %p is not a free block of the heap", (void *)want);
	for (size_t g = 0; g < (size_t)(nf_end - nf_start) / ALIGN; g++)
		starts += bit(start_bits, g);
	if (starts != blocks)
		BAD("%zu start bits for %zu blocks", starts, blocks);
	if (!rover != !free_head)
		BAD("rover %p with free list %p", (void *)rover, (void *)free_head);
	int found = !rover;
	for (struct block *f = free_head; f && !found && free_blocks; f = next_free(f), free_blocks--)
		found = f == rover;
	if (!found)
		BAD("rover %p is not on the free list", (void *)rover);
	return bad;
}

int Mem_Check(void)
{
	if (!ready())
		return 0;
	lock_both();
	int bad = check_slab() + check_nf();
	unlock_both();
	return bad;
}

int Mem_Stats(struct mem_stats *out)
{
	if (!ready())
		return -1;
	lock_both();
	*out = (struct mem_stats){.region = region, .region_size = region_size, .slab_start = slab_start,
	                          .slab_slot_size = slot_size, .slab_slots = nslots, .slab_used = slab_used,
	                          .nf_start = nf_start, .nf_end = nf_end, .nf_rover = (char *)rover};
	for (char *p = nf_start; p < nf_end; p += bsize((struct block *)p)) {
		struct block *b = (struct block *)p;
		if (is_used(b)) {
			out->nf_used_blocks++;
		} else {
			out->nf_free_blocks++;
			out->nf_free_bytes += bsize(b);
			if (bsize(b) > out->nf_largest_free)
				out->nf_largest_free = bsize(b);
		}
		if (bsize(b) == 0)
			break; /* a corrupted header: Mem_Check says so; do not loop */
	}
	unlock_both();
	return 0;
}

int Mem_Walk(mem_walk_fn fn, void *arg)
{
	if (!ready())
		return -1;
	lock_both();
	size_t slab_end = (size_t)(slab_start - region) + nslots * slot_size;
	fn(arg, MEM_SPAN_META, 0, (size_t)(slab_start - region));
	for (size_t i = 0; i < nslots; i++)
		fn(arg, i < carved && bit(slab_bits, i) ? MEM_SPAN_SLOT_USED : MEM_SPAN_SLOT_FREE,
		   (size_t)(slab_start - region) + i * slot_size, slot_size);
	fn(arg, MEM_SPAN_META, slab_end, (size_t)(nf_start - region) - slab_end);
	for (char *p = nf_start; p < nf_end; p += bsize((struct block *)p)) {
		struct block *b = (struct block *)p;
		if (bsize(b) < MIN_BLOCK)
			break;
		fn(arg, MEM_SPAN_HEADER, (size_t)(p - region), HDR);
		fn(arg, is_used(b) ? MEM_SPAN_USED : MEM_SPAN_FREE, (size_t)(p - region) + HDR, bsize(b) - HDR);
	}
	unlock_both();
	return 0;
}

void Mem_Dump(void)
{
	if (!ready()) {
		printf("Mem_Dump: no heap (Mem_Init not called)\n");
		return;
	}
	lock_both();
	printf("region %p, %zu bytes\n", (void *)region, region_size);
	printf("slab   %p: %zu slots of %zu bytes (requests of %d), %zu used, %zu carved\n", (void *)slab_start,
	       nslots, slot_size, slab_request, slab_used, carved);
	printf("next fit %p..%p (%zu bytes), rover at %p\n", (void *)nf_start, (void *)nf_end,
	       (size_t)(nf_end - nf_start), (void *)rover);
	for (char *p = nf_start; p < nf_end; p += bsize((struct block *)p)) {
		struct block *b = (struct block *)p;
		printf("  %p %8zu %s%s\n", (void *)b, bsize(b), is_used(b) ? "used" : "free",
		       b == rover ? "  <- rover" : "");
		if (bsize(b) < MIN_BLOCK)
			break;
	}
	unlock_both();
}
