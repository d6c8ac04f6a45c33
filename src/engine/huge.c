/* Huge blocks: requests over MK_LARGE_MAX (2 MiB), each in a mapping of its own.
 *
 * The block starts at its mapping (page-aligned, or aligned further when asked), so nothing precedes it.
 * A registry (open addressing on the block address) says which addresses are huge blocks and how big;
 * free() consults it under a lock, which is cheap next to the system calls a huge block costs anyway.
 * Freed mappings wait in a small cache, so a program that frees and allocates large buffers in a loop
 * does not map, fault in and unmap them each time: a request takes the smallest cached range that fits
 * (splitting it) or grows the largest resident one with mremap, and a freed block is joined to the
 * cached parts of its mapping beside it.  The cache is purged after the purge delay and emptied after a
 * longer one, or at once by malloc_trim(0).
 *
 * Invariants: every registry entry is a live mapping of `size` bytes at `addr`; no cache entry is in the
 * registry; cached bytes never exceed CACHE_MAX_BYTES; an entry marked purged reads as zero (a purge the
 * system refused leaves it unpurged, and calloc then clears it).  A registry entry changes only under the
 * lock, and so does the mapping behind it: realloc holds the lock across its mremap, because once the
 * kernel has moved the pages another thread's mmap may get the old address at once, and the registry must
 * not name it then. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/stats.h"
#include "os/os.h"

#define CACHE_SLOTS      16
#define CACHE_MAX_BYTES  ((size_t)256 << 20)
#define CACHE_KEEP_MS    1000     /* a cached mapping unused this long is unmapped */
#define CACHE_PURGE_MS   100      /* at least this long resident: huge blocks are costly to fault in */
#define CACHE_RESIDENT_MIN ((size_t)48 << 20)   /* resident cache allowed whatever the live huge bytes */
#define CACHE_RESIDENT_MAX ((size_t)128 << 20)  /* ... and what that floor may rise to (resident_floor) */

/* origin: the address the mapping a block was cut from was mapped (or moved by mremap) at.  Only cached
 * ranges of one origin are joined: they are then parts of one kernel mapping, which mremap can grow. */
typedef struct { uintptr_t addr; size_t size; uintptr_t origin; } entry;
typedef struct { uintptr_t addr; size_t size; uint64_t since; bool purged; uintptr_t origin; } cached;

static pthread_mutex_t huge_lock = PTHREAD_MUTEX_INITIALIZER;
static entry *table;              /* capacity a power of two; addr 0 = empty */
static size_t capacity, count, live_bytes;
static cached cache[CACHE_SLOTS];
static size_t cache_count, cache_bytes;
/* The resident cache allowed whatever the live huge bytes: CACHE_RESIDENT_MIN, doubled (up to
 * CACHE_RESIDENT_MAX) by every "regret", a huge allocation that has to fault in a purged range within
 * CACHE_PURGE_MS of a purge over the budget (the pages just given back are faulted in again: with the
 * large workload's few huge blocks live, a 48 MiB floor re-faulted 1.3 GB), and halved once for every
 * CACHE_KEEP_MS without one (at the next huge free).  A program that does not churn huge blocks keeps the
 * 48 MiB floor. */
static size_t resident_floor = CACHE_RESIDENT_MIN;
static uint64_t budget_purge_ms;   /* the last purge over the budget (0: none yet) */
static uint64_t floor_changed_ms;  /* the last regret, or halving */

void mk__huge_lock(void) { pthread_mutex_lock(&huge_lock); }
void mk__huge_unlock(void) { pthread_mutex_unlock(&huge_lock); }
void mk__huge_reset_lock(void) { pthread_mutex_init(&huge_lock, NULL); }

static size_t page_round(size_t n) { return (n + MK_PAGE_SIZE - 1) & ~(size_t)(MK_PAGE_SIZE - 1); }
static size_t slot_of(uintptr_t a) { return (size_t)((a >> 12) * 0x9e3779b97f4a7c15ull >> 20) & (capacity - 1); }

static entry *find(uintptr_t a)
{
	if (!capacity)
		return NULL;
	for (size_t i = slot_of(a);; i = (i + 1) & (capacity - 1)) {
		if (table[i].addr == a)
			return &table[i];
		if (table[i].addr == 0)
			return NULL;
	}
}

static void put(entry e)
{
	size_t i = slot_of(e.addr);
	while (table[i].addr)
		i = (i + 1) & (capacity - 1);
	table[i] = e;
}

static bool grow(void)
{
	size_t new_cap = capacity ? capacity * 2 : 256;
	entry *old = table;
	size_t old_cap = capacity;
	entry *t = mk__os_map(new_cap * sizeof(entry));
	if (!t)
		return false;
	table = t;
	capacity = new_cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].addr)
			put(old[i]);
	if (mk__os_unmap(old, old_cap * sizeof(entry)) != 0)
		mk__os_purge(old, old_cap * sizeof(entry));   /* keep the address space, give the pages back */
	return true;
}

static bool insert(uintptr_t a, size_t size, uintptr_t origin)
{
	if ((count + 1) * 2 > capacity && !grow())
		return false;
	put((entry){ a, size, origin });
	count++;
	live_bytes += size;
	return true;
}

/* Linear probing deletion: moves later entries of the same cluster back so lookups never stop early. */
static void erase(entry *e)
{
	live_bytes -= e->size;
	count--;
	size_t i = (size_t)(e - table);
	for (size_t j = (i + 1) & (capacity - 1); table[j].addr; j = (j + 1) & (capacity - 1)) {
		size_t home = slot_of(table[j].addr);
		if (((j - home) & (capacity - 1)) >= ((j - i) & (capacity - 1))) {
			table[i] = table[j];
			i = j;
		}
	}
	table[i].addr = 0;
}

static void cache_drop(size_t k);

/* Unmaps a mapping nobody refers to any more; if the system refuses, at least its pages go back (the
 * address range is lost to us, never handed out again). */
static void release(uintptr_t addr, size_t size)
{
	MK_ASAN_LIVE((void *)addr, size);
	if (mk__os_unmap((void *)addr, size) != 0)
		mk__os_purge((void *)addr, size);
}

/* Adds a free mapping to the cache, unmapping the oldest entries to make room (or this one, if it is too
 * big to keep).  A cached neighbour (the other part of a mapping that was split, mostly) in the same state
 * (both purged, or both not: a joined range that is mostly purged would be taken for a resident one) is
 * joined to it, while the whole stays cacheable: free address space comes back together as it would in one heap, and a
 * later request larger than any single freed block finds resident pages instead of growing a mapping
 * into new ones (the page faults are what huge blocks cost).  Called with the lock held. */
static void cache_put(cached c)
{
	if (mk__opt.purge_delay_ms == 0 || c.size > CACHE_MAX_BYTES / 4) {
		release(c.addr, c.size);
		return;
	}
	for (size_t k = 0; k < cache_count; k++) {
		cached *o = &cache[k];
		if ((o->addr + o->size != c.addr && c.addr + c.size != o->addr) || o->origin != c.origin || o->purged != c.purged ||
		    c.size + o->size > CACHE_MAX_BYTES / 4)
			continue;
		c.addr = o->addr < c.addr ? o->addr : c.addr;
		c.size += o->size;
		c.since = o->since > c.since ? o->since : c.since;   /* the newest part's age */
		cache_bytes -= o->size;
		*o = cache[--cache_count];
		k = (size_t)-1;   /* the joined range may now touch another entry */
	}
	while (cache_count == CACHE_SLOTS || cache_bytes + c.size > CACHE_MAX_BYTES) {
		size_t oldest = 0;
		for (size_t k = 1; k < cache_count; k++)
			if (cache[k].since < cache[oldest].since)
				oldest = k;
		cache_drop(oldest);
	}
	cache[cache_count++] = c;
	cache_bytes += c.size;
}

static void cache_drop(size_t k)
{
	release(cache[k].addr, cache[k].size);
	cache_bytes -= cache[k].size;
	cache[k] = cache[--cache_count];
}

/* Unmaps what waited too long, purges what waited past the purge delay (at least CACHE_PURGE_MS), and
 * purges the oldest until the resident part of the cache is within the live huge bytes (at least
 * resident_floor: with a few huge blocks live, 32 MiB made a third of the large workload's huge pages
 * fault in again):
 * a program replacing huge blocks at random reuses about as much as it keeps, and a page faulted in
 * again costs more than the memset of a resident one. */
static void cache_age(bool all, uint64_t now)
{
	size_t resident = 0;
	for (size_t k = 0; k < cache_count;) {
		uint64_t age = now - cache[k].since;
		if (all || age >= CACHE_KEEP_MS) {
			cache_drop(k);
			continue;
		}
		uint64_t delay = (uint64_t)mk__opt.purge_delay_ms;
		if (!cache[k].purged && age >= (delay > CACHE_PURGE_MS ? delay : CACHE_PURGE_MS))
			cache[k].purged = mk__os_purge((void *)cache[k].addr, cache[k].size) == 0;
		if (!cache[k].purged)
			resident += cache[k].size;
		k++;
	}
	if (resident_floor > CACHE_RESIDENT_MIN && now - floor_changed_ms >= CACHE_KEEP_MS) {
		for (uint64_t s = (now - floor_changed_ms) / CACHE_KEEP_MS; s && resident_floor > CACHE_RESIDENT_MIN; s--)
			resident_floor /= 2;   /* once for every second that passed */
		resident_floor = resident_floor > CACHE_RESIDENT_MIN ? resident_floor : CACHE_RESIDENT_MIN;
		floor_changed_ms = now;
	}
	if (all)
		budget_purge_ms = 0;   /* malloc_trim's: no purge over the budget */
	size_t budget = live_bytes > resident_floor ? live_bytes : resident_floor;
	if (resident > budget)
		budget_purge_ms = now;
	while (resident > budget) {
		size_t oldest = CACHE_SLOTS;
		for (size_t k = 0; k < cache_count; k++)
			if (!cache[k].purged && (oldest == CACHE_SLOTS || cache[k].since < cache[oldest].since))
				oldest = k;
		if (mk__os_purge((void *)cache[oldest].addr, cache[oldest].size) != 0)
			break;   /* refused: it would be refused again; it stays resident, counted as such */
		cache[oldest].purged = true;
		resident -= cache[oldest].size;
	}
}

/* The smallest resident cached mapping that fits (the caller splits off what it does not need); failing
 * that, with may_grow, the largest resident one (the caller grows it with mremap, keeping its pages);
 * failing that, the smallest purged one that fits. */
static bool cache_take(size_t size, size_t align, bool may_grow, cached *out)
{
	size_t best = CACHE_SLOTS, largest = CACHE_SLOTS;
	for (size_t k = 0; k < cache_count; k++) {
		cached *c = &cache[k];
		if ((c->addr & (align - 1)) != 0)
			continue;
		if (c->size >= size &&
		    (best == CACHE_SLOTS || (c->purged == cache[best].purged ? c->size < cache[best].size : !c->purged)))
			best = k;
		if (!c->purged && (largest == CACHE_SLOTS || c->size > cache[largest].size))
			largest = k;
	}
	/* Growing the largest resident one faults in only what it lacks, where a purged one would fault in
	 * the whole block. */
	if (may_grow && largest != CACHE_SLOTS && (best == CACHE_SLOTS || cache[best].purged))
		best = largest;
	if (best == CACHE_SLOTS)
		return false;
	*out = cache[best];
	cache_bytes -= cache[best].size;
	cache[best] = cache[--cache_count];
	return true;
}

static bool purged_fits(size_t size, size_t align)
{
	for (size_t k = 0; k < cache_count; k++)
		if (cache[k].purged && cache[k].size >= size && (cache[k].addr & (align - 1)) == 0)
			return true;
	return false;
}

/* calloc's bytes [p, p + n) of a cached range that was not purged.  Where most of its pages are resident
 * (the last block there was used whole) a memset clears them; where most are not (it was used sparsely:
 * a zeroed table, a buffer written at its ends) the range is purged instead, which costs about what its
 * resident pages cost to free, and then reads zero: the program faults in only what it touches, where a
 * memset would fault in all of it and make it resident.  Which is the case is judged from ZERO_SAMPLES
 * windows of ZERO_WINDOW pages spread over the range (mincore on all of it costs more than the purge).
 * A query or a purge the system refuses leaves the memset. */
#define ZERO_SAMPLES 4
#define ZERO_WINDOW  16
static void zero_reused(void *p, size_t n)
{
	size_t pages = page_round(n) / MK_PAGE_SIZE, sampled = 0, resident = 0;
	int saved = errno;   /* a refused query or purge is no error of calloc's */
	for (size_t k = 0; k < ZERO_SAMPLES; k++) {
		size_t first = pages * k / ZERO_SAMPLES, len = pages - first < ZERO_WINDOW ? pages - first : ZERO_WINDOW;
		long r = mk__os_resident((char *)p + first * MK_PAGE_SIZE, len * MK_PAGE_SIZE);
		if (r < 0)
			break;
		sampled += len;
		resident += (size_t)r;
	}
	if (sampled == ZERO_SAMPLES * ZERO_WINDOW && resident * 2 < sampled && mk__os_purge(p, page_round(n)) == 0)
		return;   /* n's last page is the block's own whole: purged with the rest */
	errno = saved;
	memset(p, 0, n);
}

void *mk__huge_alloc(size_t n, size_t align, bool zero)
{
	size_t size = page_round(n);
	if (align < MK_PAGE_SIZE)
		align = MK_PAGE_SIZE;
	cached c;
	pthread_mutex_lock(&huge_lock);
	bool hit = cache_take(size, align, align == MK_PAGE_SIZE, &c);
	/* Regretted only when the pages to fault in are a purged range's: one taken, or one that fits and was
	 * passed over for growing a smaller resident one (a bigger floor would have kept it resident).  A
	 * request no cached range fits faults in as much whatever the floor. */
	if (mk_unlikely(hit && (c.purged || (c.size < size && purged_fits(size, align)))) && budget_purge_ms) {
		uint64_t now = mk__now_ms();
		if (now - budget_purge_ms < CACHE_PURGE_MS) {
			resident_floor = resident_floor * 2 < CACHE_RESIDENT_MAX ? resident_floor * 2 : CACHE_RESIDENT_MAX;
			floor_changed_ms = now;
			budget_purge_ms = 0;   /* one regret per purge */
		}
	}
	size_t old_size = hit ? c.size : 0;   /* what may hold old data: a grown range's tail reads zero */
	if (hit && c.size < size) {   /* grown in place or moved: its pages come along, only the rest faults */
		pthread_mutex_unlock(&huge_lock);
		MK_ASAN_LIVE((void *)c.addr, c.size);   /* the range it may leave behind goes to whoever maps it */
		int saved = errno;   /* refused, the block is mapped afresh: no error of the caller's */
		void *q = mk__os_remap((void *)c.addr, c.size, size, 1);
		errno = saved;
		pthread_mutex_lock(&huge_lock);
		if (q) {
			if ((uintptr_t)q != c.addr)
				c.origin = (uintptr_t)q;   /* moved: a mapping of its own now */
			c.addr = (uintptr_t)q;
			c.size = size;
		} else {
			MK_ASAN_FREE((void *)c.addr, c.size);
			cache_put(c);
			hit = false;
		}
	}
	if (hit) {
		/* A bigger mapping is split: its tail stays cached with its resident pages (mapping afresh would
		 * cost a fault per page). */
		if (c.size - size >= MK_LARGE_MAX)
			cache_put((cached){ c.addr + size, c.size - size, c.since, c.purged, c.origin });
		else
			size = c.size;
	} else if ((count + 1) * 2 > capacity) {
		/* The registry grows before the block is mapped: its table mapped after the block, and refused,
		 * would cost the block (below, a refused block gets the segments' free memory back first). */
		(void)grow();
	}
	pthread_mutex_unlock(&huge_lock);
	void *p;
	if (hit) {
		p = (void *)c.addr;
		MK_ASAN_LIVE(p, size);
		if (zero && !c.purged)
			zero_reused(p, n < old_size ? n : old_size);
	} else {
		p = align > MK_PAGE_SIZE ? mk__os_map_aligned(size, align) : mk__os_map(size);
		/* Refused (RLIMIT_AS, the map count): what malloc_trim(0) gives back (empty spans of this
		 * thread's and of abandoned heaps, this thread's large-block cache, wholly free segments and
		 * cached mappings waiting out the purge delay) holds address space that this block may have;
		 * give it back and, if something went, ask once more.  No lock is held here. */
		if (!p && mk__engine_trim(0))
			p = align > MK_PAGE_SIZE ? mk__os_map_aligned(size, align) : mk__os_map(size);
		if (!p)
			return NULL;
		c.origin = (uintptr_t)p;
	}
	pthread_mutex_lock(&huge_lock);
	bool ok = insert((uintptr_t)p, size, c.origin);
	pthread_mutex_unlock(&huge_lock);
	if (!ok) {
		release((uintptr_t)p, size);
		return NULL;
	}
	mk__stat_huge(size, 1);
	return p;
}

bool mk__huge_free(void *p)
{
	pthread_mutex_lock(&huge_lock);
	uint64_t now = mk__now_ms();   /* under the lock: ages computed from it never go negative */
	entry *e = find((uintptr_t)p);
	if (!e) {
		pthread_mutex_unlock(&huge_lock);
		return false;
	}
	size_t size = e->size;
	uintptr_t origin = e->origin;
	erase(e);
	mk__stat_huge(size, -1);
	MK_ASAN_FREE(p, size);
	cache_put((cached){ (uintptr_t)p, size, now, false, origin });
	cache_age(false, now);
	pthread_mutex_unlock(&huge_lock);
	return true;
}

/* p is page-aligned and in a cached mapping (freed blocks are joined there, so p may lie inside one). */
bool mk__huge_was_freed(const void *p)
{
	bool found = false;
	uintptr_t a = (uintptr_t)p;
	pthread_mutex_lock(&huge_lock);
	for (size_t k = 0; k < cache_count; k++)
		found |= (a & (MK_PAGE_SIZE - 1)) == 0 && a - cache[k].addr < cache[k].size;
	pthread_mutex_unlock(&huge_lock);
	return found;
}

size_t mk__huge_usable(const void *p)
{
	pthread_mutex_lock(&huge_lock);
	entry *e = find((uintptr_t)p);
	size_t size = e ? e->size : 0;
	pthread_mutex_unlock(&huge_lock);
	return size;
}

/* Grows or shrinks with mremap, so the pages move instead of being copied; under the lock (see the top). */
void *mk__huge_realloc(void *p, size_t n)
{
	size_t want = page_round(n);
	pthread_mutex_lock(&huge_lock);
	entry *e = find((uintptr_t)p);
	if (!e) {   /* freed by another thread since the caller looked it up */
		pthread_mutex_unlock(&huge_lock);
		mk__fatal("realloc(): invalid pointer", p);
	}
	size_t size = e->size;
	if (want <= size && want >= size / 2) {
		pthread_mutex_unlock(&huge_lock);
		return p;
	}
	if (want > size && want < size + size / 4)   /* growing: leave room for the next steps */
		want = page_round(size + size / 4);
	void *q = mk__os_remap(p, size, want, 1);
	mk__os_point("huge_realloc.after_remap");
	if (q) {
		mk__stat_huge_realloc(size, want);
		MK_ASAN_LIVE(q, want);
		uintptr_t origin = q == p ? e->origin : (uintptr_t)q;
		/* erase() made room for one entry, so this insert needs no growth and cannot fail. */
		erase(e);
		insert((uintptr_t)q, want, origin);
	}
	pthread_mutex_unlock(&huge_lock);
	if (!q && (q = mk__huge_alloc(n, 0, false)) != NULL) {
		/* mremap refused (the block spans two kernel mappings, or the system is short): copy */
		memcpy(q, p, n < size ? n : size);
		mk__huge_free(p);
	}
	return q;
}

void mk__huge_purge(bool all)
{
	pthread_mutex_lock(&huge_lock);
	uint64_t now = mk__now_ms();
	cache_age(all, now);
	pthread_mutex_unlock(&huge_lock);
}

void mk__huge_info(size_t *n, size_t *bytes, size_t *cached_bytes)
{
	pthread_mutex_lock(&huge_lock);
	*n = count;
	*bytes = live_bytes;
	*cached_bytes = cache_bytes;
	pthread_mutex_unlock(&huge_lock);
}

/* No two of the ranges (registry and cache) overlap: sorted by address (shell sort, in a scratch mapping:
 * nothing here may call malloc), each ends before the next begins. */
static int check_overlaps(void)
{
	size_t n = count + cache_count;
	if (n < 2)
		return 0;
	entry *all = mk__os_map(n * sizeof *all);
	if (!all)
		return 0;   /* cannot look: not an error of the heap */
	size_t k = 0;
	for (size_t i = 0; i < capacity && k < n; i++)
		if (table[i].addr)
			all[k++] = table[i];
	for (size_t i = 0; i < cache_count && k < n; i++)
		all[k++] = (entry){ cache[i].addr, cache[i].size, cache[i].origin };
	for (size_t gap = k / 2; gap > 0; gap /= 2)
		for (size_t i = gap; i < k; i++)
			for (size_t j = i; j >= gap && all[j - gap].addr > all[j].addr; j -= gap) {
				entry t = all[j];
				all[j] = all[j - gap];
				all[j - gap] = t;
			}
	int errors = 0;
	for (size_t i = 1; i < k; i++)
		if (all[i - 1].addr + all[i - 1].size > all[i].addr) {
			mk__message("memkit: check: huge blocks %p (%zu bytes) and %p overlap\n", (void *)all[i - 1].addr,
			            all[i - 1].size, (void *)all[i].addr);
			errors++;
		}
	mk__os_unmap(all, n * sizeof *all);
	return errors;
}

int mk__huge_check(void)
{
	int errors = 0;
	size_t n = 0, bytes = 0, cbytes = 0;
	pthread_mutex_lock(&huge_lock);
	errors += check_overlaps();
	for (size_t i = 0; i < capacity; i++) {
		if (!table[i].addr)
			continue;
		n++;
		bytes += table[i].size;
		if (find(table[i].addr) != &table[i] || (table[i].addr & (MK_PAGE_SIZE - 1)) || table[i].size == 0) {
			mk__message("memkit: check: huge block %p is badly registered\n", (void *)table[i].addr);
			errors++;
		}
	}
	for (size_t k = 0; k < cache_count; k++) {
		cbytes += cache[k].size;
		if (find(cache[k].addr)) {
			mk__message("memkit: check: huge block %p is both live and cached\n", (void *)cache[k].addr);
			errors++;
		}
	}
	if (n != count || bytes != live_bytes || cbytes != cache_bytes || cache_bytes > CACHE_MAX_BYTES) {
		mk__message("memkit: check: huge block counts disagree\n");
		errors++;
	}
	pthread_mutex_unlock(&huge_lock);
	return errors;
}
