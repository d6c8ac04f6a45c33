/* Region heap blocks: segregated fit over offsets, each change committed by one 64-bit store.
 *
 * Invariants (mk__rg_check_locked verifies every one):
 *  1. Blocks tile [heap_off, heap_end) exactly; each word0's check value matches its offset, size and state;
 *     every size is at least RG_MIN_UNITS.
 *  2. No two free blocks are adjacent (a free coalesces at once).
 *  3. word1.prev of each block is the previous block's size (0 for the first).
 *  4. The start bitmap has a bit set exactly at each block's first unit.
 *  5. Each free block is on one list, the bin of its size; lists are doubly linked; bit b of bin_map is set
 *     exactly when bin b is not empty.
 *  6. The counters equal the numbers of used and free blocks and units.
 *  7. Root slots hold 0 or an offset inside the block area.
 *
 * Allocation takes the first block of the first non-empty bin whose every block fits (a bitmap search: a
 * constant number of word operations), and only when there is none looks through the request's own bin for
 * a tight fit, so it fails only when no free block is large enough.
 *
 * Damage from callers: links are checked before use (link_ok, linked_ok) and rebuilt when wrong; a damaged
 * neighbour header stops the operation with EIO and flags the heap (sound_around).
 *
 * Crash safety: word0 stores are the only authoritative changes.  Each operation writes whatever a new
 * block needs (its word1, a remainder's header inside the payload being split) before the word0 store that
 * makes it reachable, so a walk by word0 sizes sees either the state before or the state after, at every
 * instant.  A death between the free of a block and its merge leaves two adjacent free blocks; the rebuild
 * merges them.  Links, bitmap, prev fields and counters may be stale after a death: the rebuild recomputes
 * them all from the walk. */
#include "region/layout.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

void (*mk__region_hook)(int point);

static inline void hook(int point)
{
	if (__builtin_expect(mk__region_hook != NULL, 0))
		mk__region_hook(point);
}

static inline uint64_t *word0_at(const mkr_heap *h, uint64_t off) { return (uint64_t *)(h->base + off); }
static inline uint64_t *word1_at(const mkr_heap *h, uint64_t off) { return (uint64_t *)(h->base + off + 8); }
static inline uint64_t *next_link(const mkr_heap *h, uint64_t off) { return (uint64_t *)(h->base + off + 16); }
static inline uint64_t *prev_link(const mkr_heap *h, uint64_t off) { return (uint64_t *)(h->base + off + 24); }

static uint32_t check_of(uint64_t off, uint64_t units, int used)
{
	uint64_t x = (off / RG_UNIT) * 0x9e3779b97f4a7c15ull ^ units * 0xc2b2ae3d27d4eb4full;
	x ^= used ? 0x5553454455534544ull : 0x4652454546524545ull;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint32_t)x;
}

/* The word0 of a block at off of `units`, free or used. */
uint64_t mk__rg_word0(uint64_t off, uint64_t units, int used) { return (uint64_t)check_of(off, units, used) << 32 | units; }

/* The commit store: size and state change together. */
static void put0(mkr_heap *h, uint64_t off, uint64_t units, int used)
{
	__atomic_store_n(word0_at(h, off), mk__rg_word0(off, units, used), __ATOMIC_RELEASE);
}

static void put1(mkr_heap *h, uint64_t off, uint64_t prev_units, uint32_t owner)
{
	__atomic_store_n(word1_at(h, off), (uint64_t)owner << 32 | prev_units, __ATOMIC_RELEASE);
}

static inline uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint32_t prev_units_of(const mkr_heap *h, uint64_t off) { return (uint32_t)load(word1_at(h, off)); }
uint32_t mk__rg_owner_of(const mkr_heap *h, uint64_t off) { return (uint32_t)(load(word1_at(h, off)) >> 32); }

static inline uint64_t heap_units(const mkr_heap *h) { return (h->heap_end - h->heap_off) / RG_UNIT; }

/* off is a unit boundary inside the blocks with room for the smallest block (header and two links) before
 * heap_end: every offset read from the region passes this before anything is read or written there. */
static inline int in_blocks(const mkr_heap *h, uint64_t off)
{
	return off >= h->heap_off && off < h->heap_end && off % RG_UNIT == 0 &&
	       h->heap_end - off >= RG_MIN_UNITS * RG_UNIT;
}

/* 1 used, 0 free, -1 when off is not a place for a block or its word0 is not a valid header for that
 * offset: a size of at least RG_MIN_UNITS that ends by heap_end, and a matching check value.  word0 is
 * read once, so what is returned is what was validated. */
static int state_of(const mkr_heap *h, uint64_t off, uint32_t *units)
{
	if (!in_blocks(h, off))
		return -1;
	uint64_t w = __atomic_load_n(word0_at(h, off), __ATOMIC_ACQUIRE);
	uint32_t u = (uint32_t)w, c = (uint32_t)(w >> 32);
	if (u < RG_MIN_UNITS || u > (h->heap_end - off) / RG_UNIT)
		return -1;
	*units = u;
	if (c == check_of(off, u, 1))
		return 1;
	return c == check_of(off, u, 0) ? 0 : -1;
}

/* --- the start bitmap: offsets given here have passed in_blocks ------------------------------------ */
static inline uint64_t *bitmap(const mkr_heap *h) { return (uint64_t *)(h->base + h->bitmap_off); }
static inline uint64_t unit_index(const mkr_heap *h, uint64_t off) { return (off - h->heap_off) / RG_UNIT; }

static void bit_set(mkr_heap *h, uint64_t off)
{
	uint64_t i = unit_index(h, off);
	bitmap(h)[i / 64] |= 1ull << (i % 64);
}

static void bit_clear(mkr_heap *h, uint64_t off)
{
	uint64_t i = unit_index(h, off);
	bitmap(h)[i / 64] &= ~(1ull << (i % 64));
}

static int bit_test(const mkr_heap *h, uint64_t off)
{
	uint64_t i = unit_index(h, off);
	return (int)(bitmap(h)[i / 64] >> (i % 64) & 1);
}

/* 1 used, 0 free, -1 not a block start (not a unit boundary inside the blocks, not marked in the start
 * bitmap, or not a valid header there). */
int mk__rg_block_state(const mkr_heap *h, uint64_t off, uint32_t *units)
{
	if (!in_blocks(h, off) || !bit_test(h, off))
		return -1;
	return state_of(h, off, units);
}

/* --- size bins ----------------------------------------------------------------------------------- */
static unsigned bin_of(uint64_t units)
{
	if (units < 64)
		return (unsigned)units;
	unsigned lg = 63u - (unsigned)__builtin_clzll(units);
	return 64 + (lg - 6) * 4 + (unsigned)(units >> (lg - 2) & 3);
}

/* The smallest size that falls in bin b. */
static uint64_t bin_floor(unsigned b)
{
	if (b < 64)
		return b;
	unsigned lg = 6 + (b - 64) / 4;
	return (uint64_t)(4 + (b - 64) % 4) << (lg - 2);
}

/* bin_map's bits for bins that exist (the last word has bits past RG_NBINS, which nothing may follow). */
static uint64_t bin_bits(const mkr_heap *h, unsigned w)
{
	uint64_t m = h->hdr->bin_map[w];
	return w == RG_BIN_WORDS - 1 ? m & ((1ull << (RG_NBINS - 64 * (RG_BIN_WORDS - 1))) - 1) : m;
}

#define RG_BAD_LINK UINT64_MAX

/* A link read from a bin or a free block's payload, for a block of bin b: 0, or the start of a free block
 * filed in bin b.  Links are derived state that a write after free (or a hostile file) can forge, so each
 * one is checked before it is followed or written through. */
static int link_ok(const mkr_heap *h, uint64_t off, unsigned b)
{
	uint32_t u;
	return off == 0 || (mk__rg_block_state(h, off, &u) == 0 && bin_of(u) == b);
}

/* A free block on a list, as proved by linked(): its size and both links as they were read. */
struct listed {
	uint32_t units;
	uint64_t next, prev;
};

/* The free block at off is on the list of its size's bin, and its list neighbours point back at it (the bin
 * at it when it is first): 1 and *l filled, or 0. */
static int linked(const mkr_heap *h, uint64_t off, struct listed *l)
{
	if (!off || mk__rg_block_state(h, off, &l->units) != 0)
		return 0;
	unsigned b = bin_of(l->units);
	l->next = load(next_link(h, off));
	l->prev = load(prev_link(h, off));
	if (l->next == off || l->prev == off || !link_ok(h, l->next, b) || !link_ok(h, l->prev, b))
		return 0;
	if (l->next && load(prev_link(h, l->next)) != off)
		return 0;
	return l->prev ? load(next_link(h, l->prev)) == off : h->hdr->bins[b] == off;
}

/* The first block of bin b: its list is sound where it starts (a head has no previous block). */
static int heads(const mkr_heap *h, unsigned b, uint64_t off, struct listed *l)
{
	return linked(h, off, l) && l->prev == 0 && bin_of(l->units) == b;
}

/* Takes the free block at off off its list, given what linked() proved about it with nothing changed
 * since (so the writes go only to proved free blocks and to its bin). */
static void bin_remove(mkr_heap *h, uint64_t off, const struct listed *l)
{
	struct rg_header *hd = h->hdr;
	uint64_t units = l->units;
	unsigned b = bin_of(units);
	(void)off;
	if (l->prev)
		*next_link(h, l->prev) = l->next;
	else
		hd->bins[b] = l->next;
	if (l->next)
		*prev_link(h, l->next) = l->prev;
	if (!hd->bins[b])
		hd->bin_map[b / 64] &= ~(1ull << (b % 64));
	hd->free_blocks--;
	hd->free_units -= units;
}

/* Files the free block at off (of `units`) first in its bin: 0, or -1 (the block's links set to none, the
 * bin not written through) when the bin's head is not a sound first block. */
static int bin_push(mkr_heap *h, uint64_t off, uint64_t units)
{
	struct rg_header *hd = h->hdr;
	unsigned b = bin_of(units);
	uint64_t head = hd->bins[b];
	struct listed l;
	*next_link(h, off) = 0;
	*prev_link(h, off) = 0;
	if (head && (head == off || !heads(h, b, head, &l)))
		return -1;
	*next_link(h, off) = head;
	if (head)
		*prev_link(h, head) = off;
	hd->bins[b] = off;
	hd->bin_map[b / 64] |= 1ull << (b % 64);
	hd->free_blocks++;
	hd->free_units += units;
	return 0;
}

/* A free block of at least `units` (its listing in *found), 0 when none, RG_BAD_LINK when a damaged link was
 * met.  Every block it returns was proved to be on its bin's list and at least `units` large. */
static uint64_t bin_find(const mkr_heap *h, uint64_t units, struct listed *found)
{
	const struct rg_header *hd = h->hdr;
	unsigned b = bin_of(units);
	unsigned start = bin_floor(b) == units ? b : b + 1;
	struct listed l;
	for (unsigned w = start / 64; w < RG_BIN_WORDS; w++) {
		uint64_t m = bin_bits(h, w);
		if (w == start / 64)
			m &= ~0ull << (start % 64);
		if (m) {
			unsigned fb = w * 64 + (unsigned)__builtin_ctzll(m);
			uint64_t off = hd->bins[fb];
			if (!heads(h, fb, off, &l) || l.units < units)
				return RG_BAD_LINK;
			*found = l;
			return off;
		}
	}
	/* Linked lists cannot hold more blocks than the heap; the bound keeps a walk finite whatever the links. */
	uint64_t prev = 0, left = heap_units(h) / RG_MIN_UNITS;
	for (uint64_t off = hd->bins[b]; off; prev = off, off = l.next) {
		if (!left-- || !linked(h, off, &l) || l.prev != prev || bin_of(l.units) != b)
			return RG_BAD_LINK;
		if (l.units >= units) {
			*found = l;
			return off;
		}
	}
	return 0;
}

/* The largest block free now, in units (for statistics); the walk stops at a damaged link, and visits at
 * most as many blocks as the heap can hold, whatever the links say. */
uint64_t mk__rg_largest_free(const mkr_heap *h)
{
	const struct rg_header *hd = h->hdr;
	uint64_t left = heap_units(h) / RG_MIN_UNITS;
	for (int b = (int)RG_NBINS - 1; b >= 0; b--) {
		uint64_t best = 0;
		for (uint64_t off = hd->bins[b]; off && left; left--) {
			uint32_t u;
			if (mk__rg_block_state(h, off, &u) != 0 || bin_of(u) != (unsigned)b)
				break;
			best = u > best ? u : best;
			off = load(next_link(h, off));
		}
		if (best)
			return best;
	}
	return 0;
}

int mk__rg_counters_ok(const mkr_heap *h)
{
	const struct rg_header *hd = h->hdr;
	uint64_t hu = heap_units(h), uu = hd->used_units, fu = hd->free_units;
	return uu <= hu && fu == hu - uu && hd->used_blocks <= uu / RG_MIN_UNITS &&
	       hd->free_blocks <= fu / RG_MIN_UNITS && (hd->used_blocks == 0) == (uu == 0) &&
	       (hd->free_blocks == 0) == (fu == 0);
}

/* Tells the block after the one at off (of `units`) that its neighbour's size changed. */
static void tell_next(mkr_heap *h, uint64_t off, uint64_t units)
{
	uint64_t next = off + units * RG_UNIT;
	if (next < h->heap_end)
		put1(h, next, units, mk__rg_owner_of(h, next));
}

/* Empties everything derived from the blocks: bitmap, bins, counters. */
static void forget_derived(mkr_heap *h)
{
	struct rg_header *hd = h->hdr;
	memset(bitmap(h), 0, h->heap_off - h->bitmap_off);
	memset(hd->bins, 0, sizeof hd->bins);
	memset(hd->bin_map, 0, sizeof hd->bin_map);
	hd->used_blocks = hd->used_units = hd->free_blocks = hd->free_units = 0;
}

/* Lays out an empty heap over the geometry of the handle. */
void mk__rg_format(mkr_heap *h)
{
	forget_derived(h);
	put1(h, h->heap_off, 0, 0);
	put0(h, h->heap_off, heap_units(h), 0);
	bit_set(h, h->heap_off);
	bin_push(h, h->heap_off, heap_units(h));
}

/* --- operations ------------------------------------------------------------------------------------ */
/* What is around a used block, each header read once and validated. */
struct around {
	uint32_t units;           /* the block's own size */
	uint32_t prev_units;      /* the previous block's size, 0 for the first block */
	uint64_t next, prev;      /* the neighbours' offsets (next may be heap_end; prev 0 when none) */
	uint32_t next_units;
	int next_free, prev_free;
	struct listed next_l, prev_l; /* the free neighbours' listings */
};

/* The block at off is used, the next block's header is sound, the previous one is where word1 says, and
 * each free neighbour is properly on its list. */
static int look_around(const mkr_heap *h, uint64_t off, struct around *a)
{
	uint32_t u;
	memset(a, 0, sizeof *a);
	if (state_of(h, off, &a->units) != 1)
		return 0;
	a->next = off + (uint64_t)a->units * RG_UNIT;
	if (a->next < h->heap_end) {
		int st = state_of(h, a->next, &a->next_units);
		if (st < 0 || (st == 0 && !linked(h, a->next, &a->next_l)))
			return 0;
		a->next_free = st == 0;
	}
	uint64_t pu = prev_units_of(h, off);
	if (!pu)
		return off == h->heap_off;
	if (pu > (off - h->heap_off) / RG_UNIT)
		return 0;
	a->prev = off - pu * RG_UNIT;
	int st = state_of(h, a->prev, &u);
	if (st < 0 || u != pu || (st == 0 && !linked(h, a->prev, &a->prev_l)))
		return 0;
	a->prev_units = u;
	a->prev_free = st == 0;
	return 1;
}

/* Before an operation stores anything around the used block at off.  Derived state that fails (a write
 * after free into links, a forged previous size) is rebuilt from the block headers; 0 when the block and
 * its neighbours are sound then, -1 (EIO, heap flagged) when a block header itself is damaged. */
static int sound_around(mkr_heap *h, uint64_t off, struct around *a)
{
	if (look_around(h, off, a))
		return 0;
	if (mk__rg_repair_locked(h) != 0)
		return -1;
	if (look_around(h, off, a))
		return 0;
	h->hdr->flags |= RG_FLAG_CORRUPT;
	mk__rg_fail(EIO, "region heap: the block at offset %#" PRIx64 " or a neighbour is damaged", off);
	return -1;
}

/* Rebuilds the derived state; on a damaged block header flags the heap so nothing walks it again. */
int mk__rg_repair_locked(mkr_heap *h)
{
	if (mk__rg_rebuild(h) == 0)
		return 0;
	h->hdr->flags |= RG_FLAG_CORRUPT;
	return -1;
}

/* A list found damaged after an operation's commits: everything derived is rebuilt from the headers. */
static int relist(mkr_heap *h, int damaged)
{
	return damaged ? mk__rg_repair_locked(h) : 0;
}

uint64_t mk__rg_alloc_locked(mkr_heap *h, uint64_t units)
{
	struct rg_header *hd = h->hdr;
	if (units > heap_units(h)) /* bin_of is defined up to heap_units */
		return 0;
	struct listed l;
	uint64_t off = bin_find(h, units, &l);
	if (off == RG_BAD_LINK) {
		if (mk__rg_repair_locked(h) != 0)
			return 0;
		off = bin_find(h, units, &l);
	}
	if (!off)
		return 0;
	if (off == RG_BAD_LINK) {
		/* the lists were just rebuilt: only a writer racing with the lock changes them */
		hd->flags |= RG_FLAG_CORRUPT;
		mk__rg_fail(EIO, "region heap: the free lists changed under the lock");
		return 0;
	}
	uint64_t have = l.units; /* bin_find proved have >= units */
	bin_remove(h, off, &l);
	uint64_t prev = prev_units_of(h, off);
	int damaged = 0;
	if (have - units >= RG_MIN_UNITS) {
		uint64_t rest = off + units * RG_UNIT;
		put1(h, rest, units, 0);
		put0(h, rest, have - units, 0);
		bit_set(h, rest);
		tell_next(h, rest, have - units);
		hook(RG_HOOK_ALLOC_SPLIT);
		put1(h, off, prev, (uint32_t)mk__rg_self());
		put0(h, off, units, 1);
		damaged = bin_push(h, rest, have - units) != 0;
	} else {
		units = have;
		put1(h, off, prev, (uint32_t)mk__rg_self());
		put0(h, off, units, 1);
	}
	hd->used_blocks++;
	hd->used_units += units;
	return relist(h, damaged) == 0 ? off : 0;
}

/* Frees the used block at off and merges it with free neighbours; returns where the free block starts, or 0
 * (EIO) when the heap is damaged. */
uint64_t mk__rg_free_locked(mkr_heap *h, uint64_t off)
{
	struct rg_header *hd = h->hdr;
	struct around a;
	if (sound_around(h, off, &a) != 0)
		return 0;
	uint64_t units = a.units;
	put0(h, off, units, 0);
	hd->used_blocks--;
	hd->used_units -= units;
	hook(RG_HOOK_FREE_MERGE);
	int damaged = 0;
	if (a.next_free) {
		bin_remove(h, a.next, &a.next_l);
		units += a.next_units;
		put0(h, off, units, 0);
		bit_clear(h, a.next);
	}
	if (a.prev_free) {
		/* removing the next block may have changed the previous one's links (same list): list it again */
		if (!a.next_free || linked(h, a.prev, &a.prev_l))
			bin_remove(h, a.prev, &a.prev_l);
		else
			damaged = 1;
		units += a.prev_units;
		put0(h, a.prev, units, 0);
		bit_clear(h, off);
		off = a.prev;
	}
	tell_next(h, off, units);
	damaged |= bin_push(h, off, units) != 0;
	if (!damaged)
		return off;
	return relist(h, damaged) == 0 ? mk__rg_block_containing(h, off) : 0;
}

/* Resizes the used block at off in place when it can (shrinking, or growing into a free next block):
 * 1 when done, 0 when a move is needed, -1 (EIO) when the heap is damaged.  The block then belongs to the
 * caller, as a moved one would. */
int mk__rg_resize_locked(mkr_heap *h, uint64_t off, uint64_t units)
{
	struct rg_header *hd = h->hdr;
	struct around a;
	if (sound_around(h, off, &a) != 0)
		return -1;
	uint64_t cur = a.units, end = a.next, nu = a.next_free ? a.next_units : 0;
	uint64_t total = cur + nu;
	if (units > total)
		return 0;
	put1(h, off, a.prev_units, (uint32_t)mk__rg_self()); /* a resized block is the caller's */
	if (units <= cur && cur - units < RG_MIN_UNITS)
		return 1;
	int damaged = 0;
	if (a.next_free) {
		bin_remove(h, end, &a.next_l);
		bit_clear(h, end);
	}
	uint64_t rest = 0, rest_units = total - units;
	if (rest_units >= RG_MIN_UNITS) {
		rest = off + units * RG_UNIT;
		put1(h, rest, units, 0);
		put0(h, rest, rest_units, 0);
		bit_set(h, rest);
	} else {
		units = total;
	}
	put0(h, off, units, 1);
	hook(RG_HOOK_REALLOC_GROW);
	hd->used_units = hd->used_units - cur + units;
	if (rest) {
		tell_next(h, rest, rest_units);
		damaged |= bin_push(h, rest, rest_units) != 0;
	} else {
		tell_next(h, off, units);
	}
	return relist(h, damaged) == 0 ? 1 : -1;
}

/* --- walks ------------------------------------------------------------------------------------------ */
static int damaged_at(mkr_heap *h, uint64_t off)
{
	h->hdr->flags |= RG_FLAG_CORRUPT;
	mk__rg_fail(EIO, "region heap: block header at offset %#" PRIx64 " is damaged", off);
	return -1;
}

int mk__rg_walk_step(mkr_heap *h, uint64_t *off, uint32_t *units)
{
	int st = state_of(h, *off, units);
	if (st < 0)
		return damaged_at(h, *off);
	*off += (uint64_t)*units * RG_UNIT;
	return st;
}

uint64_t mk__rg_block_containing(mkr_heap *h, uint64_t target)
{
	uint32_t u;
	for (uint64_t off = h->heap_off, next = off; off < h->heap_end; off = next) {
		if (mk__rg_walk_step(h, &next, &u) < 0)
			return 0;
		if (target < next)
			return off;
	}
	return 0;
}

/* --- repair and check ---------------------------------------------------------------------------- */
/* Recomputes everything derived from the chain of word0s, finishing any merge a dead process left undone.
 * Idempotent, so a death during the rebuild is repaired by the next one.  -1 (EIO) when a header is bad. */
int mk__rg_rebuild(mkr_heap *h)
{
	struct rg_header *hd = h->hdr;
	forget_derived(h);
	uint64_t prev = 0, prev_units = 0;
	int prev_free = 0;
	for (uint64_t off = h->heap_off; off < h->heap_end;) {
		uint32_t u;
		int st = state_of(h, off, &u);
		if (st < 0) {
			mk__rg_fail(EIO, "region heap: block header at offset %#" PRIx64 " is damaged", off);
			return -1;
		}
		if (st == 0 && prev_free) {
			prev_units += u;
			put0(h, prev, prev_units, 0);
			off = prev + prev_units * RG_UNIT;
			continue;
		}
		put1(h, off, prev_units, mk__rg_owner_of(h, off));
		bit_set(h, off);
		prev = off;
		prev_units = u;
		prev_free = st == 0;
		off += (uint64_t)u * RG_UNIT;
	}
	/* The headers were all proved above; a failure here means a writer is racing with the lock. */
	for (uint64_t off = h->heap_off; off < h->heap_end;) {
		uint32_t u;
		uint64_t at = off;
		int st = mk__rg_walk_step(h, &off, &u);
		if (st < 0)
			return -1;
		if (st == 0 && bin_push(h, at, u) != 0)
			return damaged_at(h, at);
		if (st == 1) {
			hd->used_blocks++;
			hd->used_units += u;
		}
	}
	return 0;
}

#define BAD(...)                                                                                      \
	do {                                                                                              \
		mk__rg_fail(EIO, "region heap check: " __VA_ARGS__);                                          \
		return -1;                                                                                    \
	} while (0)

static int check_blocks(const mkr_heap *h, uint64_t *free_blocks)
{
	const struct rg_header *hd = h->hdr;
	uint64_t used_b = 0, used_u = 0, free_b = 0, free_u = 0, prev_units = 0;
	int prev_free = 0;
	for (uint64_t off = h->heap_off; off < h->heap_end;) {
		uint32_t u;
		int st = state_of(h, off, &u);
		if (st < 0)
			BAD("block header at offset %#" PRIx64 " is damaged", off);
		if (prev_units_of(h, off) != prev_units)
			BAD("block at %#" PRIx64 " records previous size %u, not %" PRIu64, off, prev_units_of(h, off),
			    prev_units);
		if (!bit_test(h, off))
			BAD("block at %#" PRIx64 " is missing from the start bitmap", off);
		for (uint64_t i = 1; i < u; i++)
			if (bit_test(h, off + i * RG_UNIT))
				BAD("start bitmap marks %#" PRIx64 ", inside the block at %#" PRIx64, off + i * RG_UNIT, off);
		if (st == 0 && prev_free)
			BAD("free blocks side by side at %#" PRIx64, off);
		if (st == 0) {
			free_b++;
			free_u += u;
		} else {
			used_b++;
			used_u += u;
		}
		prev_free = st == 0;
		prev_units = u;
		off += (uint64_t)u * RG_UNIT;
	}
	if (used_b != hd->used_blocks || used_u != hd->used_units || free_b != hd->free_blocks ||
	    free_u != hd->free_units)
		BAD("counters (used %" PRIu64 "/%" PRIu64 ", free %" PRIu64 "/%" PRIu64 ") differ from the blocks "
		    "(used %" PRIu64 "/%" PRIu64 ", free %" PRIu64 "/%" PRIu64 ")",
		    hd->used_blocks, hd->used_units, hd->free_blocks, hd->free_units, used_b, used_u, free_b, free_u);
	*free_blocks = free_b;
	return 0;
}

static int check_bins(const mkr_heap *h, uint64_t free_blocks)
{
	const struct rg_header *hd = h->hdr;
	uint64_t linked = 0;
	for (unsigned b = 0; b < RG_NBINS; b++) {
		int marked = (int)(hd->bin_map[b / 64] >> (b % 64) & 1);
		if (marked != (hd->bins[b] != 0))
			BAD("bin %u is %s but its bin_map bit is %d", b, hd->bins[b] ? "used" : "empty", marked);
		uint64_t prev = 0;
		for (uint64_t off = hd->bins[b]; off; prev = off, off = *next_link(h, off)) {
			uint32_t u;
			if (++linked > free_blocks)
				BAD("bin lists hold more entries than the %" PRIu64 " free blocks (a cycle?)", free_blocks);
			if (!in_blocks(h, off))
				BAD("bin %u links to %#" PRIx64 ", outside the blocks", b, off);
			if (mk__rg_block_state(h, off, &u) != 0)
				BAD("bin %u links to %#" PRIx64 ", which is not a free block", b, off);
			if (bin_of(u) != b)
				BAD("free block at %#" PRIx64 " of %u units is in bin %u, not %u", off, u, b, bin_of(u));
			if (*prev_link(h, off) != prev)
				BAD("free block at %#" PRIx64 " has a wrong back link", off);
		}
	}
	if (linked != free_blocks)
		BAD("%" PRIu64 " free blocks but %" PRIu64 " on the bin lists", free_blocks, linked);
	return 0;
}

int mk__rg_check_locked(mkr_heap *h)
{
	const struct rg_header *hd = h->hdr;
	if (hd->magic != RG_MAGIC || hd->version != RG_VERSION || hd->geometry_sum != mk__rg_geometry_sum(hd) ||
	    hd->region_size != h->region_size || hd->bitmap_off != h->bitmap_off || hd->heap_off != h->heap_off ||
	    hd->heap_end != h->heap_end)
		BAD("the header (magic, version or geometry) was overwritten");
	if (hd->bin_map[RG_BIN_WORDS - 1] != bin_bits(h, RG_BIN_WORDS - 1))
		BAD("bin_map marks bins past the last one");
	uint64_t free_blocks;
	if (check_blocks(h, &free_blocks) || check_bins(h, free_blocks))
		return -1;
	for (unsigned i = 0; i < MKR_ROOTS; i++) {
		uint64_t r = hd->roots[i];
		if (r && (r < h->heap_off || r >= h->heap_end))
			BAD("root %u holds %#" PRIx64 ", outside the blocks", i, r);
	}
	return 0;
}
