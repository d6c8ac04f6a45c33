/* memkit classic: the sbrk allocator.
 *
 * One heap, grown and shrunk with the program break, cut into blocks that carry their bookkeeping in band.
 * This is the allocator of the A2 / xv6 seeds: simple enough to read in one sitting, complete enough to
 * run ls, python3 and gcc as their system malloc (build/libmemkit-sbrk.so).
 *
 * Layout (addresses grow to the right; every block starts 8 bytes before a multiple of 16):
 *
 *   used block   [head 8][payload ..................................]
 *   free block   [head 8][next 8][prev 8][ ..unused.. ][footer 8]
 *   heap         [block][block]...[block][epilogue 8] | program break
 *
 *   head    = size (bits 4..47, a multiple of 16, header included)
 *           | FREE (bit 0) | PREV_FREE (bit 1) | FENCE (bit 2)
 *           | seal (bits 48..63: a hash of the block's address and size)
 *   footer  = a copy of head, present only in free blocks (the boundary tag that lets free() find a free
 *             left neighbour); used blocks pay 8 bytes of header and nothing else.
 *   epilogue = a head of size 0, never free: the walk's end marker; its PREV_FREE says whether the block
 *             that touches the break is free.
 *   fence   = a used block that is never handed out: it spans memory between two of our segments that
 *             someone else's sbrk took, so the walk stays one linked chain.
 *
 * Invariants (check() verifies every one):
 *  I1 blocks tile [heap start, epilogue) exactly; each is sealed, a multiple of 16, at least 32 bytes
 *     (fences at least 16), and payloads are 16-byte aligned.
 *  I2 no two free blocks are neighbours (free() coalesces at once), so a free block's left neighbour is
 *     always used and its PREV_FREE bit is clear.
 *  I3 PREV_FREE of every block (and of the epilogue) equals FREE of the block before it.
 *  I4 a free block's footer equals its head.
 *  I5 the free list is doubly linked, holds exactly the free blocks, and is kept in LIFO order: free()
 *     pushes the (coalesced) block at the head and malloc takes the first block that fits from the head,
 *     so the most recently freed memory, still warm in cache, is reused first.
 *  I6 while the break is ours, the free block touching it is smaller than MK_SBRK_TRIM_AT: anything
 *     bigger went back to the kernel with a negative sbrk (down to MK_SBRK_TRIM_KEEP).
 *
 * Policies: growth asks for at least MK_SBRK_GROW_MIN bytes in whole pages, so N small allocations
 * cost about N * block / GROW_MIN brk calls.  Large requests come from the break too (this allocator
 * teaches the break; the engine is the one that maps).  realloc shrinks in place, grows into a free right
 * neighbour, or extends the break when the block is the last one, and only then moves.
 * One mutex guards everything; pthread_atfork holds it across fork so that the child's heap is whole.
 * Bad pointers are caught before anything is written: wrong alignment, outside the heap, broken seal,
 * or already free: the allocator prints one line and aborts. */
#include "classic/sbrk.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/os.h"

#define FREE       ((uint64_t)1)
#define PREV_FREE  ((uint64_t)2)
#define FENCE      ((uint64_t)4)
#define SIZE_MASK  ((uint64_t)0x0000fffffffffff0)
#define SEAL_SHIFT 48
#define MAX_REQUEST ((size_t)1 << 44)   /* keeps every computed block size far inside SIZE_MASK */

typedef struct block {
	uint64_t head;
	struct block *next, *prev;   /* only while the block is free */
} block;

static struct {
	pthread_mutex_t lock;
	char *start;           /* first block's head; NULL until the first growth */
	char *end;             /* our idea of the program break; the epilogue sits at end - 8 */
	block *free_head;      /* LIFO free list */
	unsigned long grow_calls, shrink_calls;
	size_t grown;
} H = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- one-line diagnostics without stdio (stdio may allocate, and we may be malloc) ---- */

struct line {
	char buf[160];
	size_t len;
};

static void put_str(struct line *l, const char *s)
{
	while (*s && l->len < sizeof l->buf - 1)
		l->buf[l->len++] = *s++;
}

static void put_num(struct line *l, uint64_t v, unsigned base)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (base == 16)
		put_str(l, "0x");
	while (n && l->len < sizeof l->buf - 1)
		l->buf[l->len++] = tmp[--n];
}

static void put_end(struct line *l)
{
	l->buf[l->len++] = '\n';
	ssize_t r = write(2, l->buf, l->len);
	(void)r;
	l->len = 0;
}

static __attribute__((noreturn, cold)) void die(const char *what, const void *p, const char *op)
{
	struct line l = { .len = 0 };
	put_str(&l, "memkit-sbrk: ");
	put_str(&l, what);
	put_str(&l, " ");
	put_num(&l, (uintptr_t)p, 16);
	put_str(&l, " (");
	put_str(&l, op);
	put_str(&l, ")");
	put_end(&l);
	abort();
}

/* ---- blocks ---- */

static size_t bsize(const block *b) { return (size_t)(b->head & SIZE_MASK); }
static int is_free(const block *b) { return (b->head & FREE) != 0; }
static void *payload(block *b) { return (char *)b + MK_SBRK_HEADER; }
static block *next_block(const block *b) { return (block *)((char *)b + bsize(b)); }
static block *epilogue(void) { return (block *)(H.end - 8); }

/* The seal ties a head to its address: a stray pointer, or a user's bytes in front of one, almost never
 * carries the right 16 bits. */
static uint64_t seal(const void *at, size_t size)
{
	uint64_t h = ((uint64_t)(uintptr_t)at ^ ((uint64_t)size << 17)) * 0x9e3779b97f4a7c15ull;
	return (h >> SEAL_SHIFT ^ 0x6d6b) << SEAL_SHIFT;
}

static int sealed(const block *b) { return (b->head & ~(SIZE_MASK | 7)) == seal(b, bsize(b)); }

static void set_head(block *b, size_t size, uint64_t flags) { b->head = seal(b, size) | size | flags; }

/* The left neighbour of a block whose PREV_FREE bit is set, found through that neighbour's footer. */
static block *left_free(const block *b)
{
	uint64_t footer = ((const uint64_t *)b)[-1];
	return (block *)((char *)b - (footer & SIZE_MASK));
}

/* Makes b a free block of `size` bytes (not yet on the list); its left neighbour is used (I2). */
static void make_free(block *b, size_t size)
{
	set_head(b, size, FREE);
	*(uint64_t *)((char *)b + size - 8) = b->head;
	next_block(b)->head |= PREV_FREE;
}

static size_t block_size(size_t n)
{
	size_t s = (n + MK_SBRK_HEADER + MK_SBRK_ALIGN - 1) & ~(size_t)(MK_SBRK_ALIGN - 1);
	return s < MK_SBRK_MIN_BLOCK ? MK_SBRK_MIN_BLOCK : s;
}

/* ---- the free list ---- */

static void list_push(block *b)
{
	b->prev = NULL;
	b->next = H.free_head;
	if (H.free_head)
		H.free_head->prev = b;
	H.free_head = b;
}

static void list_remove(block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		H.free_head = b->next;
	if (b->next)
		b->next->prev = b->prev;
}

/* `repl` takes `old`'s place in the list (a split keeps the remainder where the block was). */
static void list_replace(block *old, block *repl)
{
	block *n = old->next, *p = old->prev;
	repl->next = n;
	repl->prev = p;
	if (p)
		p->next = repl;
	else
		H.free_head = repl;
	if (n)
		n->prev = repl;
}

/* ---- the break ---- */

/* Gives the top free block back down to `keep` bytes when it has reached `at`.  Returns 1 when the break
 * moved.  Only whole pages go, and only when nobody else moved the break past us. */
static int trim_top(size_t at, size_t keep)
{
	block *e = epilogue();
	if (!H.start || !(e->head & PREV_FREE))
		return 0;
	block *top = left_free(e);
	size_t size = bsize(top);
	if (keep < MK_SBRK_MIN_BLOCK)
		keep = MK_SBRK_MIN_BLOCK;
	if (size < at || size <= keep)
		return 0;
	size_t release = (size - keep) & ~(size_t)(MK_PAGE_SIZE - 1);
	if (release == 0 || mk__os_sbrk(0) != H.end)
		return 0;
	if (mk__os_sbrk(-(intptr_t)release) == (void *)-1)
		return 0;
	H.end -= release;
	H.shrink_calls++;
	set_head(epilogue(), 0, 0);
	make_free(top, size - release);   /* same place in the list, smaller */
	return 1;
}

/* Frees b: coalesces it with free neighbours (I2) and pushes the result at the list head (I5).  The old
 * head keeps its FREE bit even when it ends up inside a bigger block, so a second free() of it is
 * recognised as a double free. */
static void release(block *b, int may_trim)
{
	size_t size = bsize(b);
	block *right = next_block(b);
	b->head |= FREE;
	if (b->head & PREV_FREE) {
		block *left = left_free(b);
		list_remove(left);
		size += bsize(left);
		b = left;
	}
	if (is_free(right)) {
		list_remove(right);
		size += bsize(right);
	}
	make_free(b, size);
	list_push(b);
	if (may_trim)
		trim_top(MK_SBRK_TRIM_AT, MK_SBRK_TRIM_KEEP);
}

/* One sbrk call that adds at least `extra` usable bytes at the top of the heap, as a free block merged
 * with a free top block if there is one.  0 on failure (nothing changed). */
static int extend(size_t extra)
{
	size_t inc = extra + 3 * MK_SBRK_ALIGN;   /* slack for aligning a fresh segment */
	if (inc < MK_SBRK_GROW_MIN)
		inc = MK_SBRK_GROW_MIN;
	inc = (inc + MK_PAGE_SIZE - 1) & ~(size_t)(MK_PAGE_SIZE - 1);
	char *old = mk__os_sbrk((intptr_t)inc);
	if (old == (void *)-1)
		return 0;
	H.grow_calls++;
	H.grown += inc;
	block *b;
	if (H.start && old == H.end) {
		/* Contiguous: the old epilogue becomes the new block's head. */
		b = epilogue();
		uint64_t prev_free = b->head & PREV_FREE;
		H.end += inc;
		set_head(epilogue(), 0, 0);
		set_head(b, inc, prev_free);
	} else {
		if (H.start && old < H.end)
			die("program break moved below the heap at", old, "sbrk");
		char *first = (char *)((((uintptr_t)old + 8 + 15) & ~(uintptr_t)15) - 8);
		char *end = (char *)(((uintptr_t)old + inc) & ~(uintptr_t)15);
		if (H.start) {
			/* Someone else's sbrk took [H.end, old): fence it off. */
			block *e = epilogue();
			set_head(e, (size_t)(first - (char *)e), (e->head & PREV_FREE) | FENCE);
		} else {
			H.start = first;
		}
		H.end = end;
		set_head(epilogue(), 0, 0);
		b = (block *)first;
		set_head(b, (size_t)(H.end - 8 - first), 0);
	}
	release(b, 0);
	return 1;
}

/* The free block that touches the break, or NULL. */
static block *top_free(void)
{
	return H.start && (epilogue()->head & PREV_FREE) ? left_free(epilogue()) : NULL;
}

/* Grows the heap until its top free block holds `want` bytes; returns that block or NULL. */
static block *grow(size_t want)
{
	for (int tries = 0;; tries++) {   /* more than one try only when someone else's sbrk cut in */
		block *top = top_free();
		size_t have = top ? bsize(top) : 0;
		if (have >= want)
			return top;
		if (tries == 3 || !extend(want - have))
			return NULL;
	}
}

/* ---- allocation ---- */

/* Turns free block b into a used block of `need` bytes; a remainder worth a block stays free in b's
 * place on the list. */
static void take(block *b, size_t need)
{
	size_t size = bsize(b);
	if (size - need >= MK_SBRK_MIN_BLOCK) {
		block *rest = (block *)((char *)b + need);
		list_replace(b, rest);
		set_head(b, need, 0);
		make_free(rest, size - need);
	} else {
		list_remove(b);
		set_head(b, size, 0);
		next_block(b)->head &= ~PREV_FREE;
	}
}

/* First fit from the list head: the most recently freed block that is big enough. */
static block *alloc_block(size_t need)
{
	block *b = H.free_head;
	while (b && bsize(b) < need)
		b = b->next;
	if (!b)
		b = grow(need);
	if (b)
		take(b, need);
	return b;
}

/* Cuts used block b down to `need` bytes, freeing the tail when it is worth a block. */
static void shrink_tail(block *b, size_t need)
{
	size_t size = bsize(b);
	if (size - need < MK_SBRK_MIN_BLOCK)
		return;
	set_head(b, need, b->head & PREV_FREE);
	block *tail = (block *)((char *)b + need);
	set_head(tail, size - need, 0);
	release(tail, 1);
}

/* The used block behind p, or a one-line abort naming what is wrong with p. */
static block *validate(const void *p, const char *op)
{
	uintptr_t u = (uintptr_t)p;
	if (u % MK_SBRK_ALIGN || !H.start || u < (uintptr_t)H.start + MK_SBRK_HEADER || u >= (uintptr_t)H.end)
		die("invalid pointer", p, op);
	block *b = (block *)(u - MK_SBRK_HEADER);
	size_t size = bsize(b);
	if (!sealed(b) || size < MK_SBRK_MIN_BLOCK || size > (uintptr_t)H.end - 8 - (uintptr_t)b ||
	    (b->head & FENCE))
		die("invalid pointer", p, op);
	if (is_free(b))
		die(op[0] == 'f' ? "double free of" : "use after free of", p, op);
	block *right = next_block(b);
	if (!sealed(right) || (right->head & PREV_FREE))
		die("heap corruption (overflow?) after", p, op);
	return b;
}

static void lock(void) { pthread_mutex_lock(&H.lock); }
static void unlock(void) { pthread_mutex_unlock(&H.lock); }

/* Fork: the child gets the heap as the locking thread left it, i.e. whole. */
static void unlock_after_fork(void) { unlock(); }
static __attribute__((constructor)) void register_fork_handlers(void)
{
	pthread_atfork(lock, unlock_after_fork, unlock_after_fork);
}

void *mk__sbrk_alloc(size_t n)
{
	if (n > MAX_REQUEST)
		return NULL;
	lock();
	block *b = alloc_block(block_size(n));
	unlock();
	return b ? payload(b) : NULL;
}

void *mk__sbrk_alloc_zero(size_t n)
{
	void *p = mk__sbrk_alloc(n);
	if (p)
		memset(p, 0, n);
	return p;
}

void *mk__sbrk_alloc_aligned(size_t align, size_t n)
{
	if (n > MAX_REQUEST || align > MAX_REQUEST)
		return NULL;
	size_t need = block_size(n);
	lock();
	/* Room for a leading free block (at least MIN_BLOCK) before the first aligned payload. */
	block *b = alloc_block(need + align + MK_SBRK_MIN_BLOCK);
	if (b) {
		uintptr_t pl = (uintptr_t)payload(b);
		uintptr_t q = (pl + align - 1) & ~(uintptr_t)(align - 1);
		if (q != pl) {
			while (q - pl < MK_SBRK_MIN_BLOCK)
				q += align;
			block *nb = (block *)(q - MK_SBRK_HEADER);
			set_head(nb, bsize(b) - (q - pl), 0);
			set_head(b, q - pl, b->head & PREV_FREE);
			release(b, 0);
			b = nb;
		}
		shrink_tail(b, need);
	}
	unlock();
	return b ? payload(b) : NULL;
}

void mk__sbrk_free(void *p)
{
	if (!p)
		return;
	int saved = errno;
	lock();
	release(validate(p, "free"), 1);
	unlock();
	errno = saved;
}

/* Grows b in place to `need` bytes if its right neighbour is free (or the break can move); 1 if done. */
static int grow_in_place(block *b, size_t need)
{
	size_t size = bsize(b);
	block *right = next_block(b);
	int last = right == epilogue() || (is_free(right) && next_block(right) == epilogue());
	size_t avail = size + (is_free(right) ? bsize(right) : 0);
	if (avail < need && last && grow(need - size))
		right = next_block(b);          /* the (new) top free block, if the break was contiguous */
	if (!is_free(right) || size + bsize(right) < need)
		return 0;
	list_remove(right);
	set_head(b, size + bsize(right), b->head & PREV_FREE);
	next_block(b)->head &= ~PREV_FREE;
	shrink_tail(b, need);
	return 1;
}

void *mk__sbrk_realloc(void *p, size_t n)
{
	if (n > MAX_REQUEST)
		return NULL;
	size_t need = block_size(n);
	lock();
	block *b = validate(p, "realloc");
	void *q = p;
	if (need <= bsize(b)) {
		shrink_tail(b, need);
	} else if (!grow_in_place(b, need)) {
		block *nb = alloc_block(need);
		q = nb ? payload(nb) : NULL;
		if (q) {
			memcpy(q, p, bsize(b) - MK_SBRK_HEADER);
			release(b, 1);
		}
	}
	unlock();
	return q;
}

size_t mk__sbrk_usable_size(const void *p)
{
	lock();
	size_t n = bsize(validate(p, "malloc_usable_size")) - MK_SBRK_HEADER;
	unlock();
	return n;
}

int mk__sbrk_trim(size_t pad)
{
	lock();
	int r = trim_top(0, pad);
	unlock();
	return r;
}

/* ---- introspection ---- */

static void walk_locked(mk_sbrk_visit *fn, void *arg)
{
	if (!H.start)
		return;
	for (block *b = (block *)H.start; b != epilogue(); b = next_block(b))
		fn(arg, (uintptr_t)b, bsize(b),
		   (b->head & FENCE) ? MK_SBRK_FENCE : is_free(b) ? MK_SBRK_FREE : MK_SBRK_USED);
}

void mk__sbrk_walk(mk_sbrk_visit *fn, void *arg)
{
	lock();
	walk_locked(fn, arg);
	unlock();
}

static void count_block(void *arg, uintptr_t at, size_t size, int kind)
{
	struct mk_sbrk_counters *c = arg;
	(void)at;
	if (kind == MK_SBRK_FREE) {
		c->free_blocks++;
		c->free_bytes += size;
	} else if (kind == MK_SBRK_USED) {
		c->used_blocks++;
		c->used_bytes += size;
	}
}

static void counters_locked(struct mk_sbrk_counters *c)
{
	memset(c, 0, sizeof *c);
	c->grow_calls = H.grow_calls;
	c->shrink_calls = H.shrink_calls;
	c->brk_bytes_grown = H.grown;
	c->heap_start = (uintptr_t)H.start;
	c->heap_end = (uintptr_t)H.end;
	walk_locked(count_block, c);
	block *top = top_free();
	c->top_free = top ? bsize(top) : 0;
}

void mk__sbrk_counters(struct mk_sbrk_counters *c)
{
	lock();
	counters_locked(c);
	unlock();
}

void mk__sbrk_info(struct mallinfo2 *mi)
{
	struct mk_sbrk_counters c;
	mk__sbrk_counters(&c);
	mi->arena = c.heap_end - c.heap_start;
	mi->ordblks = c.free_blocks;
	mi->uordblks = c.used_bytes;
	mi->fordblks = c.free_bytes;
	mi->keepcost = c.top_free;
}

void mk__sbrk_stats_print(void)
{
	struct mk_sbrk_counters c;
	mk__sbrk_counters(&c);
	static const char *const names[] = {
		"heap bytes", "used blocks", "used bytes", "free blocks", "free bytes", "top free bytes",
		"brk growths", "brk shrinks", "bytes grown",
	};
	uint64_t values[] = {
		c.heap_end - c.heap_start, c.used_blocks, c.used_bytes, c.free_blocks, c.free_bytes, c.top_free,
		c.grow_calls, c.shrink_calls, c.brk_bytes_grown,
	};
	struct line l = { .len = 0 };
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		put_str(&l, "memkit-sbrk: ");
		put_str(&l, names[i]);
		put_str(&l, " ");
		put_num(&l, values[i], 10);
		put_end(&l);
	}
}

static int report(const char *what, const void *at)
{
	struct line l = { .len = 0 };
	put_str(&l, "memkit-sbrk check: ");
	put_str(&l, what);
	put_str(&l, " at ");
	put_num(&l, (uintptr_t)at, 16);
	put_end(&l);
	return 1;
}

/* A pointer that may be followed: inside the heap, where a block head can be. */
static int plausible(const block *b)
{
	uintptr_t u = (uintptr_t)b;
	return u >= (uintptr_t)H.start && u < (uintptr_t)H.end - 8 && u % MK_SBRK_ALIGN == 8;
}

static int check_free_links(const block *b)
{
	int bad = 0;
	if (b->prev ? !plausible(b->prev) || b->prev->next != b : H.free_head != b)
		bad += report("free block's prev link broken (I5)", b);
	if (b->next && (!plausible(b->next) || b->next->prev != b))
		bad += report("free block's next link broken (I5)", b);
	return bad;
}

static int check_locked(void)
{
	if (!H.start)
		return H.free_head ? report("free list without a heap", H.free_head) : 0;
	int bad = 0;
	size_t walked_free = 0;
	uint64_t left_was_free = 0;
	block *b = (block *)H.start;
	block *const end = epilogue();
	while (b < end) {
		size_t size = bsize(b);
		size_t min = (b->head & FENCE) ? 16 : MK_SBRK_MIN_BLOCK;
		if (!sealed(b) || size < min || size > (size_t)((char *)end - (char *)b))
			return bad + report("block head broken (I1), walk stops", b);
		if ((b->head & PREV_FREE) != left_was_free)
			bad += report("PREV_FREE disagrees with the left neighbour (I3)", b);
		if (is_free(b)) {
			walked_free++;
			if (left_was_free)
				bad += report("two free neighbours (I2)", b);
			if (b->head & FENCE)
				bad += report("free fence (I1)", b);
			if (*(uint64_t *)((char *)b + size - 8) != b->head)
				bad += report("footer differs from head (I4)", b);
			bad += check_free_links(b);
		}
		left_was_free = is_free(b) ? PREV_FREE : 0;
		b = next_block(b);
	}
	if (b != end)
		return bad + report("blocks overrun the epilogue (I1)", b);
	if (!sealed(end) || bsize(end) != 0 || is_free(end))
		bad += report("epilogue broken (I1)", end);
	if ((end->head & PREV_FREE) != left_was_free)
		bad += report("epilogue's PREV_FREE disagrees (I3)", end);
	size_t listed = 0;
	for (block *f = H.free_head; f; f = f->next) {
		if (++listed > walked_free)
			return bad + report("free list longer than the free blocks (I5)", f);
		if (!plausible(f) || !sealed(f) || !is_free(f))
			return bad + report("free list holds a non-free block (I5)", f);
	}
	if (listed != walked_free)
		bad += report("free blocks missing from the free list (I5)", H.free_head);
	block *top = top_free();
	if (top && bsize(top) >= MK_SBRK_TRIM_AT && mk__os_sbrk(0) == H.end)
		bad += report("top free block not trimmed (I6)", top);
	return bad;
}

int mk__sbrk_check(void)
{
	lock();
	int bad = check_locked();
	unlock();
	return bad;
}
