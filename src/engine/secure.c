/* The secure build's blocks (docs/hardening.md): what libmemkit-secure.so adds around the engine.
 *
 * Layout of a block the program gets at p, inside an engine block that starts at base = p - 2^shift
 * (shift 4, or log2 of the alignment asked for):
 *
 *     base ... [ header: info, seal ] p [ n bytes of the program ] [ 8-byte canary ] (slack)
 *
 *   info   n (48 bits) | shift << 48 | kind << 56 | FREED (bit 63)
 *   seal   info ^ p ^ the secret: a header the program wrote over (an underflow), or one read at an
 *          address that is no block (an interior or foreign pointer), does not match it
 *   canary 8 bytes derived from p and the secret, right after the n bytes: an overflow by even one byte
 *          changes it, unless it writes the value already there (1 in 128 for a random byte of 0x80
 *          and up, never one below); checked by free and realloc, zeroed by free (and so checked zero by the
 *          quarantine, for large blocks)
 *
 * free(p) checks all three (and that the freeing function matches the allocating one), marks the header
 * freed, zeroes the block (whole up to ZERO_ALL bytes, else its first CHECK_HEAD bytes and last word),
 * writes the clean tag over its first 16 bytes (clean.h) and puts it in the calling thread's quarantine:
 * two batches, one going back to the engine whenever the other fills, so the next malloc never gets the
 * block just freed.  The malloc that hands a block out again checks its tag: a write after free into its
 * first 16 bytes, at any time while it was free, is reported then.  Large blocks (not carved, no tag)
 * are checked as they leave the quarantine instead.  A second free of a quarantined block finds the
 * FREED bit; of one that left, finds the engine's own free-block cookie.  Every finding is one line
 * (mk__fatal's form) and an abort.  A correct program never writes where a check looks, so it is never
 * stopped. */
#ifndef MK_SECURE
#define MK_SECURE 0
#endif
#if MK_SECURE   /* the file is in the engine's sources; only the secure build (mk/secure.mk) compiles it */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The engine's inlined free, as this file uses it, without its block-start and cookie tests: every block
 * handed to it here passed free's checks (a live block of ours: its header sealed for it, not freed) and
 * waited in one quarantine entry; a second free of it after that finds the cookie the push writes
 * (bad_pointer).  The engine's other files keep the tests. */
#define MK_FREE_CHECKS 0
#include "engine/clean.h"
#include "engine/secure.h"
#include "engine/zero.h"
#include "os/os.h"

/* The C library's copies, called without going through the checked names that checked.c interposes. */
extern void *__memset_chk(void *, int, size_t, size_t);
extern void *__memcpy_chk(void *, const void *, size_t, size_t);
#define raw_memset(d, c, n) __memset_chk((d), (c), (n), (size_t)-1)
#define raw_memcpy(d, s, n) __memcpy_chk((d), (s), (n), (size_t)-1)

typedef struct sec_header {
	uint64_t info;
	uint64_t seal;
} sec_header;

#define INFO_SIZE   (((uint64_t)1 << 48) - 1)
#define INFO_FREED  ((uint64_t)1 << 63)
#define CANARY      8
#define MIN_SHIFT   4
/* Every freed block is zeroed; a large one's first CHECK_HEAD bytes and last word must still be zero
 * when it leaves the quarantine. */
#define CHECK_HEAD  64
/* Blocks up to ZERO_ALL bytes are zeroed whole when freed (inline, by 16-byte stores): a read after free
 * finds none of the old data.  Bigger ones only at their first CHECK_HEAD bytes and last word: a memset of
 * every freed block was half the secure build's time on workloads of kilobyte blocks (in memory the
 * program often never touched, which it also made resident), and of blocks of 256 bytes to 1 KiB 15% of
 * the Larson server's instructions.  -DZERO_ALL=1048576 zeroes all that goes through the quarantine. */
#ifndef ZERO_ALL
#define ZERO_ALL    ((size_t)256)
#endif
/* The quarantine, per thread: two batches of Q_BATCH blocks, or of Q_BYTES / 2 bytes of blocks over 256. */
#ifndef Q_BATCH
#define Q_BATCH     128
#endif
#ifndef Q_BYTES
#define Q_BYTES     ((size_t)256 << 10)
#endif
#define Q_MAX_BLOCK ((size_t)1 << 20)   /* bigger blocks are zeroed and given back at once */

static const char *const kind_names[] = { "malloc()", "operator new", "operator new[]", "?" };
static const char *const free_names[] = { "free():", "operator delete():", "operator delete[]():", "?" };

/* The seal and the canary are computed on every malloc and free, so each is one operation with the
 * process's random secret (the engine's cookie secret).  What they must do is differ from what an
 * overflow, an underflow or a stray header copy leaves there: the address in both makes a header or
 * canary copied from elsewhere wrong here, and a program that wants to forge them must first read the
 * secret out of memkit (a keyed multiply, as before, is inverted as easily by one who reads a header).
 * The seal lies where a free engine block keeps its cookie (secret ^ its address): the two differ by
 * info ^ the two addresses, never 0 (info has the shift, 4, in bits 48 and up).  Every byte of the
 * canary has its top bit set: a string's terminator, an ASCII character or a small number written one
 * past the end always changes it (with the low bit set instead, an odd value went unseen once in 128). */
static uint64_t seal_of(uint64_t info, uintptr_t p) { return info ^ p ^ mk__secret; }
static uint64_t canary_of(uintptr_t p) { return (p + mk__secret) | 0x8080808080808080ull; }

static sec_header *header_of(void *p) { return (sec_header *)p - 1; }
static uint64_t load64(const void *a)
{
	uint64_t v;
	__builtin_memcpy(&v, a, sizeof v);   /* one unaligned load (the file is compiled with -fno-builtin) */
	return v;
}
static void store64(void *a, uint64_t v) { __builtin_memcpy(a, &v, sizeof v); }
typedef uint64_t v128 __attribute__((vector_size(16)));
static void store128(void *a, uint64_t v) { v128 x = { v, v }; __builtin_memcpy(a, &x, sizeof x); }

static void seal(void *p, size_t n, unsigned shift, mk_kind kind, uint64_t freed)
{
	uint64_t info = (uint64_t)n | (uint64_t)shift << 48 | (uint64_t)kind << 56 | freed;
	sec_header *h = header_of(p);
	h->info = info;
	h->seal = seal_of(info, (uintptr_t)p);
}

static __attribute__((noreturn, cold, format(printf, 1, 2))) void report(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	mk__message("memkit: %s\n", line);
	abort();
}

/* ---- allocation ---- */

static void *wrap(void *base, size_t n, unsigned shift, mk_kind kind)
{
	if (!base)
		return NULL;
	char *p = (char *)base + ((size_t)1 << shift);
	seal(p, n, shift, kind, 0);
	store64(p + n, canary_of((uintptr_t)p));
	return p;
}

/* Where the first of the 16 tag bytes at p that differs from what free or carving left is. */
static size_t first_untagged(const char *p)
{
	uint64_t t = mk__clean_tag((uintptr_t)p - 16);
	for (size_t i = 0; i < 16; i++)
		if ((unsigned char)p[i] != (unsigned char)(t >> (8 * (i & 7))))
			return i;
	return 0;
}

/* The engine block of a request for n bytes at the default alignment from a carved class, whose first
 * 16 bytes after its link words must still hold the clean tag (clean.h): anything else was written there
 * while the block was free, in the quarantine or on its span's free list.  One 16-byte load on a line
 * that the header's stores need anyway.  (Large and huge blocks are not carved: the quarantine checks
 * the large ones as they leave it.) */
static inline __attribute__((always_inline)) void *wrap_reused(void *base, size_t n, mk_kind kind)
{
	if (!base)
		return NULL;
	char *p = (char *)base + 16;
	uint64_t t = mk__clean_tag((uintptr_t)base);
	if (mk_unlikely((load64(p) ^ t) | (load64(p + 8) ^ t)))
		report("malloc(): write after free of %p (written at +%zu while the block was free)", (void *)p,
		       first_untagged(p));
	store128(p, 0);   /* the tag would tell the secret to a program that reads what it did not write */
	seal(p, n, MIN_SHIFT, kind, 0);
	store64(p + n, canary_of((uintptr_t)p));
	return p;
}
/* Whether a request for n bytes at the default alignment comes from a carved class (is checked on reuse). */
#define CARVED(n) ((n) <= MK_MEDIUM_MAX - sizeof(sec_header) - CANARY)

void *mk__secure_alloc_kind(size_t n, size_t align, mk_kind kind)
{
	if (n == 0 && kind == MK_KIND_MALLOC && align <= 16)
		return mk__engine_alloc(0);   /* the no-access area: every access faults */
	if (n > INFO_SIZE)
		return NULL;
	if (align <= 16) {
		void *base = mk__engine_alloc(n + sizeof(sec_header) + CANARY);
		return CARVED(n) ? wrap_reused(base, n, kind) : wrap(base, n, MIN_SHIFT, kind);
	}
	/* The header sits just before p = base + align, inside the engine block aligned to align. */
	unsigned shift = (unsigned)__builtin_ctzl(align);
	if (n > INFO_SIZE - align)
		return NULL;
	return wrap(mk__engine_alloc_aligned(align, n + align + CANARY), n, shift, kind);
}

void *mk__secure_alloc(size_t n)
{
	if (mk_likely(n - 1 < MK_MEDIUM_MAX - sizeof(sec_header) - CANARY))   /* not 0 (the no-access area) */
		return wrap_reused(mk__engine_alloc(n + sizeof(sec_header) + CANARY), n, MK_KIND_MALLOC);
	return mk__secure_alloc_kind(n, 0, MK_KIND_MALLOC);
}
void *mk__secure_alloc_aligned(size_t align, size_t n) { return mk__secure_alloc_kind(n, align, MK_KIND_MALLOC); }

/* The engine's calloc under the header: it knows which memory reads zero already (a fresh mapping, a large
 * block of purged slices), so a calloc of a big array does not fault in every page (it did: 1 GiB
 * resident at once for calloc(1, 1 GiB)); old headers and canaries in a reused block are cleared with
 * the rest, and wrap writes the new ones. */
void *mk__secure_alloc_zero(size_t n)
{
	if (n == 0 || n > INFO_SIZE)
		return mk__secure_alloc(n);
	return wrap(mk__engine_alloc_zero(n + sizeof(sec_header) + CANARY), n, MIN_SHIFT, MK_KIND_MALLOC);
}

/* ---- finding and checking a block ---- */

typedef struct blk {
	char *p;
	size_t n;
	unsigned shift;
	mk_kind kind;
	bool freed;
} blk;

/* The engine block holding address a in one of our segments (its start and size), or false. */
static inline __attribute__((always_inline)) bool engine_block(uintptr_t a, uintptr_t *start, size_t *size)
{
	mk_span *s = mk__span_of(mk__segment_of((void *)a), (void *)a);
	uint8_t state = MK_LOAD(s->state);
	if ((state != MK_SPAN_ACTIVE && state != MK_SPAN_FULL) || a < s->start)
		return false;
	/* a lies in one of the span's slices, under 4 MiB from its start: a 32-bit division, which is what
	 * every checked memcpy into the heap pays (sqlite's are 9% of its time under the secure build). */
	uint32_t i = (uint32_t)(a - s->start) / s->block_size;
	if (i >= MK_LOAD(s->carved))
		return false;
	*start = s->start + i * s->block_size;
	*size = s->block_size;
	return true;
}

/* The header of p when it is one we sealed for p. */
static bool read_header(const void *p, blk *b)
{
	const sec_header *h = (const sec_header *)p - 1;
	uint64_t info = h->info;
	if (h->seal != seal_of(info, (uintptr_t)p))
		return false;
	b->p = (char *)p;
	b->n = info & INFO_SIZE;
	b->shift = (info >> 48) & 63;
	b->kind = (mk_kind)((info >> 56) & 3);
	b->freed = (info & INFO_FREED) != 0;
	return true;
}

/* A huge block (its own mapping) whose header would be just before p: the mapping starts 2^shift before
 * p, shift 4 unless it was allocated aligned, and holds p - 16 (a pointer 2^shift past the start of a
 * smaller mapping is none of its: reading there could fault). */
static bool huge_header(const void *p)
{
	for (unsigned shift = MIN_SHIFT; shift <= 40; shift++) {
		size_t at = (size_t)1 << shift;
		if ((uintptr_t)p > at && mk__huge_usable((const char *)p - at) >= at)
			return true;
	}
	return false;
}

/* A pointer whose header does not check: says what it is, in mk__fatal's words where the default build
 * has them, and stops. */
static __attribute__((noreturn, cold)) void bad_pointer(const void *p, const char *fn, bool ours)
{
	char what[96];
	uintptr_t start;
	size_t size;
	if (!ours) {
		snprintf(what, sizeof what, "%s %s", fn,
		         mk__huge_was_freed((const char *)p - 16) ? "double free of" : "invalid pointer");
		mk__fatal(what, p);
	}
	if (((uintptr_t)p & 15) == 0 && engine_block((uintptr_t)p - 16, &start, &size) && start + 16 == (uintptr_t)p) {
		if (((const mk_block *)start)->cookie == mk__cookie((void *)start)) {
			snprintf(what, sizeof what, "%s double free of", fn);
			mk__fatal(what, p);
		}
		report("%s heap underflow before %p (its header at -16 was written over)", fn, p);
	}
	bool inside = engine_block((uintptr_t)p, &start, &size) && start != (uintptr_t)p;
	snprintf(what, sizeof what, "%s %s", fn, inside ? "interior pointer" : "invalid pointer");
	mk__fatal(what, p);
}

/* The checks every call that takes a block makes: header, canary, and (want != 0) the allocating kind. */
static void validate(const void *p, blk *b, const char *fn, int want)
{
	bool ours = mk__is_ours(p);
	/* The header is read only where memory is known to be ours: in a segment past its header slice, or
	 * just past the start of a huge mapping. */
	if (ours && ((uintptr_t)p & MK_SEG_MASK) < MK_SLICE_SIZE) {
		char what[96];
		snprintf(what, sizeof what, "%s invalid pointer", fn);
		mk__fatal(what, p);
	}
	if (!ours && !huge_header(p))
		bad_pointer(p, fn, false);
	if (!read_header(p, b))
		bad_pointer(p, fn, ours);
	if (b->freed) {
		char what[96];
		snprintf(what, sizeof what, "%s double free of", fn);
		mk__fatal(what, p);
	}
	if (load64(b->p + b->n) != canary_of((uintptr_t)p))
		report("%s heap overflow after %p (%zu-byte block, canary at +%zu)", fn, p, b->n, b->n);
	if (want >= 0 && b->kind != (mk_kind)want)
		report("%s mismatched free of %p (a %zu-byte block from %s)", fn, p, b->n, kind_names[b->kind]);
}

/* ---- the quarantine ---- */

/* Two batches: the blocks freed lately go into the current one; once it holds Q_BATCH blocks or half
 * of Q_BYTES, the other batch (the blocks freed before those) goes back to the engine in one loop and
 * the two trade places.  So every block waits between one batch and two of its thread's frees, the
 * next malloc never gets the block just freed, and a free costs one store into an array.  An entry is
 * the engine block's address (an aligned block's: the program's pointer) and two flags: a block of a
 * carved class at the default alignment goes back unlooked at (its next malloc checks it: clean.h), a
 * large one is checked (Q_CHECK), an aligned one's header checked and zeroed and its block tagged clean
 * (Q_ALIGNED) on its way out. */
#define Q_CHECK   ((uintptr_t)1)
#define Q_ALIGNED ((uintptr_t)2)
typedef struct quarantine {
	uintptr_t *next, *end;    /* where the current batch's next entry goes, and its end */
	unsigned old_n;           /* what the other batch holds */
	size_t bytes;             /* in the current batch */
	struct quarantine *pool;  /* next in the pool of exited threads' quarantines */
	uintptr_t e[2 * Q_BATCH];
} quarantine;

/* Initial-exec: a load off the thread pointer, not a __tls_get_addr call, on every free. */
#define Q_TLS __attribute__((tls_model("initial-exec")))
static __thread quarantine *tq Q_TLS;
static __thread int tq_failed Q_TLS;   /* its mapping was refused: this thread frees at once */
static pthread_key_t q_key;
static pthread_once_t q_once = PTHREAD_ONCE_INIT;
static int q_key_ok;
/* Quarantines of exited threads, for the next threads: a thread's start and exit cost no mmap and
 * munmap (two system calls and a page fault per thread, on workloads that replace threads all the
 * time).  The lock is only ever tried: held by another thread (or by one that forked), the thread
 * maps or unmaps its own. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static quarantine *pool;
static unsigned pool_n;
#define POOL_MAX 64

/* Whether what the check of a freed block looks at is still zero: its first CHECK_HEAD bytes (a write
 * after free through a dangling pointer starts there, or runs through it) and its last word.  Free zeroed
 * all of it (a read after free sees no old data); checking all of it would read a cold block end to end
 * for a write that almost always lands at its start. */
static bool looks_clean(const char *p, size_t n)
{
	if (mk_likely(n >= CHECK_HEAD))
		return !(load64(p) | load64(p + 8) | load64(p + 16) | load64(p + 24) | load64(p + 32) |
		         load64(p + 40) | load64(p + 48) | load64(p + 56) | load64(p + n - 8));
	uint64_t any = 0;
	if (n >= 8) {
		for (size_t i = 0; i + 8 <= n; i += 8)
			any |= load64(p + i);
		return !(any | load64(p + n - 8));   /* the tail, overlapping */
	}
	for (size_t i = 0; i < n; i++)
		any |= (unsigned char)p[i];
	return !any;
}

/* Where the first non-zero byte of what looks_clean looked at is (for the report). */
static size_t first_dirty(const char *p, size_t n)
{
	size_t head = n < CHECK_HEAD ? n : CHECK_HEAD;
	for (size_t i = 0; i < head; i++)
		if (p[i])
			return i;
	for (size_t i = n - 8; i < n; i++)
		if (p[i])
			return i;
	return 0;
}

/* A large block leaving the quarantine: still zero (its canary too), its header as free left it. */
static __attribute__((noinline)) void check_large(char *p)
{
	blk b;
	if (mk_unlikely(!read_header(p, &b) || !b.freed))
		report("free(): heap underflow or write after free before %p (the freed block's header was written "
		       "over while it was in the quarantine)", (void *)p);
	if (mk_unlikely(!looks_clean(p, b.n)))
		report("free(): write after free of %p (%zu-byte block, written at +%zu while in the quarantine)",
		       (void *)p, b.n, first_dirty(p, b.n));
	if (mk_unlikely(load64(p + b.n) != 0))   /* the canary, zeroed by free */
		report("free(): heap overflow after %p (%zu-byte block, canary at +%zu, written while freed)", (void *)p,
		       b.n, b.n);
}

/* An aligned block back to the engine, its entry the program's pointer p: tagged clean here, not when
 * freed (with an alignment of 32 its header lies where the tag goes, and must say "freed" while it
 * waits), and its header zeroed: it lies inside the next block of the default alignment in this memory,
 * and its seal would tell that block's program the secret.  The engine block's start comes from the
 * header, which must still be the one free sealed. */
static __attribute__((noinline)) void evict_aligned(char *p)
{
	blk b;
	if (mk_unlikely(!read_header(p, &b) || !b.freed))
		report("free(): heap underflow or write after free before %p (the freed block's header was written "
		       "over while it was in the quarantine)", (void *)p);
	char *base = p - ((size_t)1 << b.shift);
	store128(p - 16, 0);
	mk__mark_clean(base);
	mk__engine_free(base);
}

/* An entry back to the engine. */
static inline __attribute__((always_inline)) void evict(uintptr_t e)
{
	char *base = (char *)(e & ~(uintptr_t)15);
	if (mk_unlikely(e & Q_ALIGNED)) {
		evict_aligned(base);
		return;
	}
	if (mk_unlikely(e & Q_CHECK))
		check_large(base + 16);
	mk__engine_free(base);
}

/* The other batch back to the engine; the current one becomes the other. */
static __attribute__((noinline)) void rotate(quarantine *q)
{
	uintptr_t *cur = q->end - Q_BATCH, *old = cur == q->e ? q->e + Q_BATCH : q->e;
	for (unsigned i = 0, k = q->old_n; i < k; i++)
		evict(old[i]);
	q->old_n = (unsigned)(q->next - cur);
	q->next = old;
	q->end = old + Q_BATCH;
	q->bytes = 0;
}

static void flush(quarantine *q)
{
	rotate(q);
	rotate(q);
}

static void thread_done(void *arg)
{
	quarantine *q = arg;
	if (q != tq)
		return;
	tq = NULL;
	tq_failed = 1;   /* later frees on this thread (other destructors) go to the engine at once */
	flush(q);
	if (pthread_mutex_trylock(&pool_lock) == 0) {
		if (pool_n < POOL_MAX) {
			q->pool = pool;
			pool = q;
			pool_n++;
			q = NULL;
		}
		pthread_mutex_unlock(&pool_lock);
	}
	if (q)
		mk__os_unmap(q, sizeof *q);
}

static void make_key(void) { q_key_ok = pthread_key_create(&q_key, thread_done) == 0; }

static __attribute__((noinline)) quarantine *new_quarantine(void)
{
	if (tq_failed)
		return NULL;
	int saved = errno;
	quarantine *q = NULL;
	if (pthread_mutex_trylock(&pool_lock) == 0) {
		if ((q = pool) != NULL) {
			pool = q->pool;
			pool_n--;
		}
		pthread_mutex_unlock(&pool_lock);
	}
	if (!q)
		q = mk__os_map(sizeof *q);
	pthread_once(&q_once, make_key);
	if (!q || !q_key_ok) {
		tq_failed = 1;
		if (q)
			mk__os_unmap(q, sizeof *q);
		errno = saved;
		return NULL;
	}
	q->next = q->e;
	q->end = q->e + Q_BATCH;
	q->old_n = 0;
	q->bytes = 0;
	tq = q;
	pthread_setspecific(q_key, q);   /* may allocate: the quarantine is in place already */
	errno = saved;
	return q;
}

/* A block too big to wait, or the first free of a thread (which makes its quarantine). */
static __attribute__((noinline)) void put_slow(uintptr_t e, size_t n)
{
	quarantine *q = n > Q_MAX_BLOCK ? NULL : new_quarantine();
	if (!q) {
		evict(e & ~Q_CHECK);   /* given back at once: it waited for nothing, so nothing to check */
		return;
	}
	*q->next++ = e;
	if (n > 256)
		q->bytes += n;
}

/* Takes the entry of a freed (zeroed) block of n bytes. */
static inline __attribute__((always_inline)) void quarantine_put(uintptr_t e, size_t n)
{
	quarantine *q = tq;
	if (mk_unlikely(!q || n > Q_MAX_BLOCK)) {
		put_slow(e, n);
		return;
	}
	uintptr_t *slot = q->next;
	*slot = e;
	q->next = slot + 1;
	/* Blocks of up to 256 bytes are not counted (a batch of them holds 32 KiB at most): the byte
	 * budget is for the big ones. */
	size_t bytes = q->bytes;
	if (n > 256)
		q->bytes = bytes += n;
	if (mk_unlikely(slot + 1 == q->end || bytes > Q_BYTES / 2))
		rotate(q);
}

/* ---- freeing ---- */

/* Zeroes what the program had: all of a block up to ZERO_ALL bytes, and of a bigger one what the reuse
 * check looks at (its first CHECK_HEAD bytes and last word); and the canary.  Blocks over Q_MAX_BLOCK are given back at
 * once and zeroed the same way: purging their pages instead (as this did) made the next huge malloc
 * fault every page in again, 4.4 times the default build's time on the huge workload; the engine
 * purges free memory after its delay as it does for the default build. */
/* Zeroes [p + i, p + n) with 16-byte stores, n >= 16 and i <= n: pairs, one more, then the last 16 bytes
 * overlapping what came before (never past n: the canary's place). */
static inline __attribute__((always_inline)) void zero_by_16(char *p, size_t i, size_t n)
{
	for (; i + 32 <= n; i += 32) {
		store128(p + i, 0);
		store128(p + i + 16, 0);
	}
	if (i + 16 <= n)
		store128(p + i, 0);
	store128(p + n - 16, 0);
}

static inline __attribute__((always_inline)) void scrub(char *p, size_t n)
{
	/* The canary is (p + the secret): left there, the next block in this memory would show it to a
	 * program reading bytes it has not written yet, and the secret lets one forge a header free accepts. */
	store64(p + n, 0);
	if (n <= 256 && n >= 16) {   /* small: a few 16-byte stores beat a call into the C library */
		zero_by_16(p, 0, n);
		return;
	}
	if (n < 16) {
		if (n >= 8) {
			store64(p, 0);
			store64(p + n - 8, 0);
		} else {
			for (size_t i = 0; i < n; i++)
				p[i] = 0;
		}
		return;
	}
	if (mk_likely(n <= ZERO_ALL)) {
		raw_memset(p, 0, n);
		return;
	}
	for (size_t i = 0; i < CHECK_HEAD; i += 16)   /* what the check looks at, no more (see ZERO_ALL) */
		store128(p + i, 0);
	store64(p + n - 8, 0);
}

/* A freed block, its header marked: zeroed, tagged clean for its next malloc if it is of a carved class
 * at the default alignment (while its lines are at hand), and into the quarantine. */
static __attribute__((noinline)) void retire(char *p, size_t n, unsigned shift)
{
	scrub(p, n);
	uintptr_t e = (uintptr_t)p - 16;
	if (shift != MIN_SHIFT)
		e = (uintptr_t)p | Q_ALIGNED;   /* p: evict_aligned finds the rest from its header */
	else if (CARVED(n))
		mk__mark_clean(p - 16);
	else
		e |= Q_CHECK;
	quarantine_put(e, n);
}

/* errno: nothing here sets it but the engine's free, which keeps it, and new_quarantine, which restores it. */
static void free_checked(void *p, size_t size, size_t align, mk_kind kind, const char *fn)
{
	if (mk_unlikely(!mk__is_ours(p)) && mk__zero_owns(p)) {
		mk__engine_free(p);   /* its own checks: a zero-size block has no header */
		return;
	}
	blk b;
	validate(p, &b, "free():", -1);   /* a bad pointer gets the default build's words, whoever frees it */
	if (b.kind != kind)
		report("%s mismatched free of %p (a %zu-byte block from %s)", fn, p, b.n, kind_names[b.kind]);
	if (size != MK_NO_SIZE && size != b.n)
		report("%s wrong size %zu for %p (a %zu-byte block)", fn, size, p, b.n);
	if (align > 16 && align != (size_t)1 << b.shift)
		report("%s wrong alignment %zu for %p (a block aligned to %zu)", fn, align, p,
		       b.shift > MIN_SHIFT ? (size_t)1 << b.shift : (size_t)16);
	seal(b.p, b.n, b.shift, b.kind, INFO_FREED);
	retire(b.p, b.n, b.shift);
}

/* The common case, checked in one pass: p in a segment past its header slice, its header sealed for a
 * live block of this kind at the default alignment (one compare of the top 16 bits of info), the size
 * a sized delete passes right, the canary intact.  A block of 16 to 256 bytes is then zeroed, tagged
 * and quarantined inline, with nothing but tail calls (so no registers to save); anything else,
 * NULL included, is free_checked's or retire's. */
static inline __attribute__((always_inline)) void free_common(void *p, size_t size, size_t align, mk_kind kind,
                                                              const char *fn)
{
	if (mk_unlikely(!mk__is_ours(p) || ((uintptr_t)p & MK_SEG_MASK) < MK_SLICE_SIZE || align > 16))
		goto checked;
	sec_header *h = header_of(p);
	uint64_t info = h->info;
	size_t n = info & INFO_SIZE;
	if (mk_unlikely((info >> 48) != (MIN_SHIFT | (uint64_t)kind << 8) || h->seal != seal_of(info, (uintptr_t)p) ||
	                (size != MK_NO_SIZE && size != n) || load64((char *)p + n) != canary_of((uintptr_t)p)))
		goto checked;
	h->info = info | INFO_FREED;   /* the seal is an xor: flipping the bit in both reseals */
	h->seal ^= INFO_FREED;
	if (mk_unlikely(n - 16 > 256 - 16)) {
		retire(p, n, MIN_SHIFT);
		return;
	}
	char *c = p;   /* zeroed from +16 (the tag then takes the first 16, and the tail store may overlap them) */
	zero_by_16(c, 16, n);
	store64(c + n, 0);   /* the canary too (scrub says why) */
	mk__mark_clean(c - 16);
	quarantine_put((uintptr_t)p - 16, n);
	return;
checked:
	if (p)
		free_checked(p, size, align, kind, fn);
}

void mk__secure_free(void *p) { free_common(p, MK_NO_SIZE, 0, MK_KIND_MALLOC, "free():"); }

void mk__secure_free_kind(void *p, size_t n, size_t align, mk_kind kind)
{
	free_common(p, n, align, kind, free_names[kind & 3]);   /* bad pointers: "free():", as the default build */
}

/* ---- the rest of the backend ---- */

/* A block kept in place by realloc, from old to n bytes: what it no longer holds, or what it now holds
 * beyond its old size, reads zero (the old canary is no data of the program's: reading it would tell
 * the secret), then the new header and canary. */
static void *resize(char *p, size_t old, size_t n, unsigned shift, mk_kind kind)
{
	if (n < old)
		raw_memset(p + n, 0, old - n + CANARY);
	else
		raw_memset(p + old, 0, n - old + CANARY);
	seal(p, n, shift, kind, 0);
	store64(p + n, canary_of((uintptr_t)p));
	return p;
}

void *mk__secure_realloc(void *p, size_t n)
{
	/* The common case, checked as free_common checks: a live malloc block at the default alignment in a
	 * segment, which still fits (the engine block's size is its span's). */
	if (mk_likely(mk__is_ours(p) && ((uintptr_t)p & MK_SEG_MASK) >= MK_SLICE_SIZE)) {
		sec_header *h = header_of(p);
		uint64_t info = h->info;
		size_t old = info & INFO_SIZE;
		if (mk_likely((info >> 48) == MIN_SHIFT && h->seal == seal_of(info, (uintptr_t)p) &&
		              load64((char *)p + old) == canary_of((uintptr_t)p))) {
			char *base = (char *)p - sizeof(sec_header);
			size_t room = mk__span_of(mk__segment_of(base), base)->block_size - sizeof(sec_header);
			if (n + CANARY <= room && n >= room / 2)
				return resize(p, old, n, MIN_SHIFT, MK_KIND_MALLOC);
		}
	}
	if (mk__zero_owns(p)) {
		void *q = mk__secure_alloc(n);
		if (q)
			mk__engine_free(p);
		return q;
	}
	blk b;
	validate(p, &b, "realloc():", MK_KIND_MALLOC);
	char *base = b.p - ((size_t)1 << b.shift);
	size_t room = SIZE_MAX;   /* what the engine block holds for n and the canary; unknown if aligned */
	if (b.shift == MIN_SHIFT)
		room = (mk__is_ours(base) ? mk__engine_usable_size(base) : mk__huge_usable(base)) - sizeof(sec_header);
	if (n + CANARY <= room && n >= room / 2)   /* it fits, without holding on to more than twice the need */
		return resize(b.p, b.n, n, b.shift, b.kind);
	if (b.shift == MIN_SHIFT && !mk__is_ours(base) && n + sizeof(sec_header) + CANARY > MK_LARGE_MAX) {
		/* huge to huge: the engine moves the pages with mremap; the header moves with them */
		char *nb = mk__huge_realloc(base, n + sizeof(sec_header) + CANARY);
		if (!nb)
			return NULL;
		if (n > b.n)   /* the old canary, now among the bytes the program has not written (see scrub) */
			store64(nb + sizeof(sec_header) + b.n, 0);
		return wrap(nb, n, MIN_SHIFT, b.kind);
	}
	/* A block that grows usually goes on growing: room for half again its size saves copies (as the
	 * engine's realloc does). */
	size_t cap = n;
	if (n > b.n && n < b.n + b.n / 2 && b.n + b.n / 2 <= MK_LARGE_MAX && b.shift == MIN_SHIFT)
		cap = b.n + b.n / 2;
	void *q;
	if (b.shift == MIN_SHIFT) {   /* n recorded, room for cap */
		void *nb = mk__engine_alloc(cap + sizeof(sec_header) + CANARY);
		q = CARVED(cap) ? wrap_reused(nb, n, MK_KIND_MALLOC) : wrap(nb, n, MIN_SHIFT, MK_KIND_MALLOC);
	} else {
		q = mk__secure_alloc_kind(n, (size_t)1 << b.shift, MK_KIND_MALLOC);
	}
	if (!q)
		return NULL;
	raw_memcpy(q, p, n < b.n ? n : b.n);
	free_checked(p, MK_NO_SIZE, 0, MK_KIND_MALLOC, "realloc():");
	return q;
}

size_t mk__secure_usable_size(const void *p)
{
	if (mk__zero_owns(p))
		return mk__engine_usable_size(p);
	blk b;
	validate(p, &b, "malloc_usable_size():", -1);
	return b.n;
}

int mk__secure_trim(size_t pad)
{
	if (tq)
		flush(tq);
	return mk__engine_trim(pad);
}

/* ---- checked.c's question ---- */

void mk__secure_check_write(const void *dst, size_t len, const char *fn)
{
	uintptr_t d = (uintptr_t)dst, start;
	size_t size;
	if (!mk__is_ours(dst) || (d & MK_SEG_MASK) < MK_SLICE_SIZE || !engine_block(d, &start, &size))
		return;
	/* Only the common layout is looked up (header at the engine block's start): an aligned block, or a
	 * header that does not check, is not ours to judge here; free will. */
	blk b;
	if (!read_header((void *)(start + 16), &b))
		return;
	if (b.freed)
		report("%s write into freed block %p (%zu bytes at +%td)", fn, (void *)b.p, len, (char *)dst - b.p);
	if (d < (uintptr_t)b.p)
		report("%s heap underflow before %p (%zu bytes written at %td)", fn, (void *)b.p, len, (char *)dst - b.p);
	if (d - (uintptr_t)b.p > b.n || len > b.n - (d - (uintptr_t)b.p))
		report("%s heap overflow of %p (%zu-byte block, %zu bytes written at +%td)", fn, (void *)b.p, b.n, len,
		       (char *)dst - b.p);
}
#endif
