/* malloc(0): a unique pointer into a reserved no-access area, so that any read or write through it faults.
 *
 * glibc gives malloc(0) a real (24-byte) block; a correct program can only compare, free and realloc the
 * pointer, and malloc_usable_size says 0 here, so it sees no difference.  A program that reads or writes
 * through it is stopped at the access, before and after the free.
 *
 * The area is 1 GiB of PROT_NONE address space (no memory, no commit charge) cut into 16-byte slots; a
 * bitmap (8 MiB in front of it, made readable and writable, only its touched pages resident) says which
 * slots are live: at most 2^26 zero-size blocks live at once, then malloc(0) fails with ENOMEM.  Slots are
 * taken by a cursor that goes round the area, so a freed slot is reused as late as possible.  Lock-free
 * (one pointer published by compare and swap, then compare and swap on bitmap words), so nothing is left to
 * reset, or to wait for, after a fork.  The inlined malloc never comes here:
 * direct[0] of every heap stays the empty span (sizeclass.c), so malloc(0) takes the slow path, which
 * costs the other sizes nothing. */
#include <errno.h>
#include <stdatomic.h>

#include "engine/engine.h"
#include "os/os.h"

#define ZERO_SLOT_SHIFT 4
#define ZERO_SLOTS      ((size_t)1 << 26)                  /* 1 GiB of 16-byte slots */
#define ZERO_AREA       (ZERO_SLOTS << ZERO_SLOT_SHIFT)
#define ZERO_WORDS      (ZERO_SLOTS / 64)

#define ZERO_MAP_BYTES  (ZERO_WORDS * sizeof(uint64_t))

static _Atomic uintptr_t zero_map_at;    /* the bitmap, with the area right after it; 0 until the first malloc(0) */
static _Atomic size_t zero_cursor;       /* the bitmap word to look at first */
static _Atomic size_t zero_high;         /* words below this have been used: for telling invalid from freed */

/* The bitmap and the area, one reservation made once: by whichever thread publishes it first (a loser
 * unmaps its own).  One pointer says both where the bitmap and where the area is. */
static _Atomic int zero_refused;   /* the reservation was refused once: malloc(0) takes ordinary blocks (heap.c) */

static uint64_t *zero_setup(void)
{
	uintptr_t at = atomic_load_explicit(&zero_map_at, memory_order_acquire);
	if (at)
		return (uint64_t *)at;
	if (atomic_load_explicit(&zero_refused, memory_order_relaxed))
		return NULL;   /* not a refused 1 GiB mmap at every malloc(0) */
	char *mine = mk__os_reserve(ZERO_MAP_BYTES + ZERO_AREA, MK_PAGE_SIZE);
	if (!mine) {
		atomic_store_explicit(&zero_refused, 1, memory_order_relaxed);
		return NULL;
	}
	if (mk__os_commit(mine, ZERO_MAP_BYTES) != 0) {
		mk__os_unmap(mine, ZERO_MAP_BYTES + ZERO_AREA);
		atomic_store_explicit(&zero_refused, 1, memory_order_relaxed);
		return NULL;
	}
	if (!atomic_compare_exchange_strong(&zero_map_at, &at, (uintptr_t)mine)) {
		mk__os_unmap(mine, ZERO_MAP_BYTES + ZERO_AREA);   /* another thread's is in place: `at` */
		return (uint64_t *)at;
	}
	return (uint64_t *)mine;
}

void *mk__zero_alloc(void)
{
	int saved = errno;
	uint64_t *map = zero_setup();
	errno = saved;   /* a refusal is no failure of malloc(0): heap.c falls back to an ordinary block */
	if (!map)
		return NULL;
	uintptr_t base = (uintptr_t)map + ZERO_MAP_BYTES;
	size_t start = atomic_load_explicit(&zero_cursor, memory_order_relaxed);
	for (size_t k = 0; k < ZERO_WORDS; k++) {
		size_t w = (start + k) % ZERO_WORDS;
		_Atomic uint64_t *word = (_Atomic uint64_t *)&map[w];
		uint64_t bits = atomic_load_explicit(word, memory_order_relaxed);
		while (bits != ~(uint64_t)0) {
			unsigned b = (unsigned)__builtin_ctzll(~bits);
			if (atomic_compare_exchange_weak_explicit(word, &bits, bits | (uint64_t)1 << b, memory_order_relaxed,
			                                          memory_order_relaxed)) {
				atomic_store_explicit(&zero_cursor, b == 63 ? w + 1 : w, memory_order_relaxed);
				size_t high = atomic_load_explicit(&zero_high, memory_order_relaxed);
				while (high <= w && !atomic_compare_exchange_weak(&zero_high, &high, w + 1))
					;
				return (void *)(base + ((w * 64 + b) << ZERO_SLOT_SHIFT));
			}
		}
	}
	return NULL;   /* 2^26 zero-size blocks live at once */
}

static uintptr_t zero_base(void) { return atomic_load_explicit(&zero_map_at, memory_order_relaxed) + ZERO_MAP_BYTES; }

bool mk__zero_owns(const void *p)
{
	uintptr_t at = atomic_load_explicit(&zero_map_at, memory_order_relaxed);
	return at && (uintptr_t)p - (at + ZERO_MAP_BYTES) < ZERO_AREA;
}

/* p is in the area: frees its slot, or aborts with the caller's words when it is no live zero-size block. */
void mk__zero_free(const void *p, const mk_bad_words *words)
{
	uintptr_t off = (uintptr_t)p - zero_base();
	if (off & ((1u << ZERO_SLOT_SHIFT) - 1))
		mk__fatal(words->interior, p);
	size_t slot = off >> ZERO_SLOT_SHIFT;
	uint64_t bit = (uint64_t)1 << (slot % 64);
	_Atomic uint64_t *word = (_Atomic uint64_t *)&((uint64_t *)atomic_load_explicit(&zero_map_at, memory_order_relaxed))[slot / 64];
	if (!(atomic_fetch_and_explicit(word, ~bit, memory_order_relaxed) & bit))
		mk__fatal(slot / 64 < atomic_load_explicit(&zero_high, memory_order_relaxed) ? words->freed : words->invalid, p);
}

/* The same checks without freeing (realloc and malloc_usable_size of a zero-size block). */
void mk__zero_check(const void *p, const mk_bad_words *words)
{
	uintptr_t off = (uintptr_t)p - zero_base();
	if (off & ((1u << ZERO_SLOT_SHIFT) - 1))
		mk__fatal(words->interior, p);
	size_t slot = off >> ZERO_SLOT_SHIFT;
	uint64_t bits = atomic_load_explicit((_Atomic uint64_t *)&((uint64_t *)atomic_load_explicit(&zero_map_at, memory_order_relaxed))[slot / 64],
	                                     memory_order_relaxed);
	if (!(bits & (uint64_t)1 << (slot % 64)))
		mk__fatal(slot / 64 < atomic_load_explicit(&zero_high, memory_order_relaxed) ? words->freed : words->invalid, p);
}
