/* The public allocation functions of region heaps: argument checks, the lock, and the block operations of
 * heap.c.  Every pointer a caller passes in is proved to be the start of a live block (inside the blocks,
 * on a unit boundary, marked in the start bitmap, header valid and used) before anything changes. */
#include "region/layout.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static int no_heap(void)
{
	mk__rg_fail(EINVAL, "region heap: no heap");
	return -1;
}

/* Units (16 bytes, header included) for an n-byte request; 0 when no heap could hold it. */
static uint64_t units_for(size_t n)
{
	if (n > MKR_MAX_REGION)
		return 0;
	uint64_t u = (n + 2 * RG_UNIT - 1) / RG_UNIT;
	return u < RG_MIN_UNITS ? RG_MIN_UNITS : u;
}

/* The header offset of p when p is a live block of h; 0 with EINVAL otherwise.  Lock held. */
static uint64_t live_block(const mkr_heap *h, const void *p, uint32_t *units)
{
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)h->base;
	if (a < base + h->heap_off + RG_UNIT || a >= base + h->heap_end) {
		mk__rg_fail(EINVAL, "region heap: %p is not inside the heap's blocks", p);
		return 0;
	}
	uint64_t off = a - base - RG_UNIT;
	int st = mk__rg_block_state(h, off, units);
	if (st < 0)
		mk__rg_fail(EINVAL, "region heap: %p is not the start of a block (an interior pointer, or a block "
		                    "already freed and merged)", p);
	else if (st == 0)
		mk__rg_fail(EINVAL, "region heap: %p is already free (double free)", p);
	return st == 1 ? off : 0;
}

static void *payload(const mkr_heap *h, uint64_t off) { return h->base + off + RG_UNIT; }

static void *no_room(const mkr_heap *h, size_t n)
{
	mk__rg_fail(ENOMEM, "region heap: no free block for %zu bytes in a heap of %zu", n,
	            (size_t)(h->heap_end - h->heap_off));
	return NULL;
}

/* A failed allocation: ENOMEM, unless it met damage (EIO, already reported). */
static void *failed(const mkr_heap *h, size_t n)
{
	if (h->hdr->flags & RG_FLAG_CORRUPT) {
		errno = EIO;
		return NULL;
	}
	return no_room(h, n);
}

void *mkr_alloc(mkr_heap *h, size_t n)
{
	if (!h)
		return no_heap(), NULL;
	uint64_t units = units_for(n);
	if (!units)
		return no_room(h, n);
	if (mk__rg_lock(h, 0) != 0)
		return NULL;
	uint64_t off = mk__rg_alloc_locked(h, units);
	mk__rg_unlock(h);
	return off ? payload(h, off) : failed(h, n);
}

int mkr_free(mkr_heap *h, void *p)
{
	if (!h)
		return no_heap();
	if (!p)
		return 0;
	if (mk__rg_lock(h, 0) != 0)
		return -1;
	uint32_t units;
	uint64_t off = live_block(h, p, &units);
	int ok = off && mk__rg_free_locked(h, off);
	mk__rg_unlock(h);
	return ok ? 0 : -1;
}

void *mkr_realloc(mkr_heap *h, void *p, size_t n)
{
	if (!h)
		return no_heap(), NULL;
	if (!p)
		return mkr_alloc(h, n);
	if (n == 0) {
		mkr_free(h, p);
		return NULL;
	}
	uint64_t units = units_for(n);
	if (!units)
		return no_room(h, n);
	if (mk__rg_lock(h, 0) != 0)
		return NULL;
	uint32_t cur;
	void *q = NULL;
	uint64_t off = live_block(h, p, &cur);
	int in_place = off ? mk__rg_resize_locked(h, off, units) : -1;
	if (in_place == 1) {
		q = p;
	} else if (in_place == 0) {
		uint64_t to = mk__rg_alloc_locked(h, units);
		if (to) {
			memcpy(payload(h, to), p, (size_t)(cur - 1) * RG_UNIT);
			q = mk__rg_free_locked(h, off) ? payload(h, to) : NULL;
		}
	}
	mk__rg_unlock(h);
	return q || in_place < 0 ? q : failed(h, n);
}

/* Runs fn on the live block p under the lock; 0 (with EINVAL) when p is not one. */
static uint64_t with_block(mkr_heap *h, const void *p, uint64_t (*fn)(const mkr_heap *, uint64_t, uint32_t))
{
	if (!h || !p) {
		mk__rg_fail(EINVAL, "region heap: %s", h ? "NULL is not a block" : "no heap");
		return 0;
	}
	if (mk__rg_lock(h, 0) != 0)
		return 0;
	uint32_t units;
	uint64_t off = live_block(h, p, &units), r = off ? fn(h, off, units) : 0;
	mk__rg_unlock(h);
	return r;
}

static uint64_t usable_of(const mkr_heap *h, uint64_t off, uint32_t units)
{
	(void)h, (void)off;
	return (uint64_t)(units - 1) * RG_UNIT;
}

static uint64_t owner_of(const mkr_heap *h, uint64_t off, uint32_t units)
{
	(void)units;
	return mk__rg_owner_of(h, off);
}

size_t mkr_usable_size(mkr_heap *h, const void *p) { return (size_t)with_block(h, p, usable_of); }
pid_t mkr_owner(mkr_heap *h, const void *p) { return (pid_t)with_block(h, p, owner_of); }

/* The most steps a walk over h's blocks can take: each visits a block of at least RG_MIN_UNITS, and a free
 * that merges backwards makes the walk visit the merged block once more. */
static uint64_t walk_limit(const mkr_heap *h) { return (h->heap_end - h->heap_off) / RG_UNIT + 2; }

static long walk_too_long(mkr_heap *h)
{
	h->hdr->flags |= RG_FLAG_CORRUPT;
	mk__rg_fail(EIO, "region heap: the blocks changed under the lock during a walk");
	return -1;
}

/* Frees every used block for which `dead` says yes; returns how many.  The walk follows validated block
 * headers only (-1 with EIO at the first damaged one, heap flagged) and is bounded. */
static long reclaim(mkr_heap *h, int (*dead)(pid_t owner, pid_t arg), pid_t arg)
{
	if (!h)
		return no_heap();
	if (mk__rg_lock(h, 0) != 0)
		return -1;
	long n = 0;
	uint64_t left = walk_limit(h);
	for (uint64_t off = h->heap_off, next = off; off < h->heap_end && n >= 0; off = next) {
		uint32_t units;
		int st = left-- ? mk__rg_walk_step(h, &next, &units) : walk_too_long(h);
		if (st < 0)
			n = -1;
		else if (st == 1 && dead((pid_t)mk__rg_owner_of(h, off), arg)) {
			uint64_t at = mk__rg_free_locked(h, off);
			n = at ? n + 1 : -1;
			next = at; /* the free block may start before off (merged backwards): it is walked over next */
		}
	}
	int e = errno;
	mk__rg_unlock(h);
	errno = e;
	return n;
}

static int is_owner(pid_t owner, pid_t pid) { return owner == pid; }

/* kill(pid, 0) answers ESRCH only for a pid that does not exist; the last answer is remembered during one
 * walk because blocks of one owner tend to sit together. */
static __thread pid_t last_pid;
static __thread int last_gone;

static int is_gone(pid_t owner, pid_t self)
{
	if (owner == self)
		return 0;
	if (owner != last_pid) {
		last_pid = owner;
		last_gone = owner <= 0 || (kill(owner, 0) != 0 && errno == ESRCH);
	}
	return last_gone;
}

long mkr_reclaim_owner(mkr_heap *h, pid_t pid)
{
	if (pid <= 0) {
		mk__rg_fail(EINVAL, "region heap: %d is not a pid", (int)pid);
		return -1;
	}
	return reclaim(h, is_owner, pid);
}

long mkr_reclaim_dead(mkr_heap *h)
{
	last_pid = 0;
	return reclaim(h, is_gone, mk__rg_self());
}

int mkr_foreach(mkr_heap *h, int (*fn)(void *arg, mkr_off off, size_t size, pid_t owner), void *arg)
{
	if (!h || !fn)
		return no_heap();
	if (mk__rg_lock(h, 0) != 0)
		return -1;
	int r = 0, e = errno;
	for (uint64_t off = h->heap_off, next = off; off < h->heap_end && !r; off = next) {
		uint32_t units;
		int st = mk__rg_walk_step(h, &next, &units); /* each step moves forward: the walk ends */
		if (st < 0) {
			r = -1;
			e = errno;
		} else if (st == 1) {
			r = fn(arg, off + RG_UNIT, (size_t)(units - 1) * RG_UNIT, (pid_t)mk__rg_owner_of(h, off));
			e = errno;
		}
	}
	mk__rg_unlock(h);
	errno = e;
	return r;
}

int mkr_check(mkr_heap *h)
{
	if (!h)
		return no_heap();
	if (mk__rg_lock(h, 1) != 0)
		return -1;
	int rc = mk__rg_check_locked(h), e = errno;
	mk__rg_unlock(h);
	errno = e;
	return rc;
}

int mkr_stats(mkr_heap *h, struct mkr_stats *out)
{
	if (!h || !out)
		return no_heap();
	if (mk__rg_lock(h, 1) != 0)
		return -1;
	const struct rg_header *hd = h->hdr;
	/* Counters that cannot be right (a hostile or damaged file) are rebuilt rather than reported. */
	if (!mk__rg_counters_ok(h) && mk__rg_repair_locked(h) != 0) {
		int e = errno;
		mk__rg_unlock(h);
		errno = e;
		return -1;
	}
	uint64_t largest = mk__rg_largest_free(h);
	*out = (struct mkr_stats){
		.region_size = h->region_size,
		.heap_size = h->heap_end - h->heap_off,
		.used_blocks = hd->used_blocks,
		.used_bytes = hd->used_units * RG_UNIT,
		.free_blocks = hd->free_blocks,
		.free_bytes = hd->free_units * RG_UNIT,
		.largest_free = largest ? (largest - 1) * RG_UNIT : 0,
		.recoveries = hd->recoveries,
		.last_dead = (pid_t)hd->last_dead,
	};
	mk__rg_unlock(h);
	return 0;
}
