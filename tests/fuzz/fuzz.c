/* Differential fuzzer of the whole malloc family: random operation sequences checked against a shadow model.
 *
 * Worker threads (-j, default 4) each run random operations over every function of the family: malloc,
 * calloc, realloc (also of NULL and to 0), reallocarray, free, posix_memalign, aligned_alloc, memalign,
 * valloc, pvalloc, malloc_usable_size, malloc_trim and mk_check().  The shadow model (tests/fuzz/shadow.h)
 * knows every live block: its requested size, its alignment, its usable size and the pattern it holds.
 * Before a block is freed or reallocated every byte of it is compared with its pattern (realloc: then the
 * preserved prefix in the new block); calloc must give zeros; every new block must be aligned, have
 * usable >= requested, and overlap no live block of any thread (one sorted interval array under a mutex).
 *
 * Blocks travel: a thread hands blocks to another through locked queues (that one frees or reallocates
 * them); each thread lives a random number of operations and exits with its blocks still out, which go to
 * an orphan pool that later threads adopt; thread 0 forks now and then while the others run, and the child
 * checks the blocks it inherited, runs a short sequence of its own and _exit(0)s.
 *
 * Deterministic from the seed: thread i of generation g draws from an RNG seeded with (seed, i, g), and
 * with -j 1 the whole run is a function of the seed.  With several threads, which blocks reach a thread
 * through its queue depends on timing, but each thread's choices do not.  A failure prints the seed, the
 * thread, its generation and operation index, what was being done and a command that replays it.
 *
 *   fuzz, fuzz -T         the make-test run: a fixed seed, then a random one, a few seconds in all
 *   fuzz -s SEED -t SEC   one run (-n OPS per thread index, -j THREADS, -m MiB of live data at most,
 *                         -M MiB per block at most, -F no fork, -l LABEL, -v every operation on stderr,
 *                         -W and -X: around two engine races, see usage())
 *
 * Sizes: 0, every size-class boundary and its neighbours, log-uniform within each range, up to 64 MiB and
 * rarely 256 MiB; alignments 1 .. 1 GiB, big ones rarely.  Built like the contract tests: -DMK_TEST_PREFIXED
 * against build/libmemkit-mk.a, plain under LD_PRELOAD (tests/fuzz/fuzz-preload.sh), and against the
 * sanitizer builds (tests/fuzz/fuzz-sanitize.sh: -DMK_TEST_SANITIZE, and -DMK_TEST_NO_FORK for TSan). */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "tests/common/test.h"
#include "tests/contract/api.h"
#include "tests/fuzz/shadow.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum {
	MAX_THREADS = 16,
	SLOTS = 512,          /* live blocks one thread holds at most */
	QCAP = 128,           /* blocks waiting in one thread's queue */
	ORPHANS = 4096,       /* blocks left by exited threads */
	SET_CAP = MAX_THREADS * (SLOTS + QCAP) + ORPHANS + 64,
	CHECK_EVERY = 256,    /* operations between a thread's mk_check() calls */
	CHILD_OPS = 300,      /* operations a forked child runs */
};

#ifdef MK_TEST_NO_FORK
static const bool can_fork = false;
#else
static const bool can_fork = true;
#endif

/* What the run was asked for (command line). */
static struct {
	uint64_t seed;
	double seconds;
	uint64_t ops;       /* per thread index, 0: no limit */
	int threads;
	size_t max_live;    /* bytes, all threads together */
	size_t max_size;    /* bytes, one block */
	bool fork;
	bool verbose;
	bool warm;
	bool alone;         /* mk_check and malloc_trim only once the threads are gone */
	const char *label;
	const char *argv0;
} opt;

/* One live block, as the shadow knows it. */
typedef struct {
	unsigned char *p;
	size_t req;         /* size asked for */
	size_t usable;      /* malloc_usable_size when it was made */
	size_t filled;      /* bytes that hold the pattern: req, or sometimes all of usable */
	size_t align;       /* alignment promised */
	uint64_t id;        /* thread index << 56 | generation << 32 | serial */
	uint64_t base;      /* pattern base, from the seed and id */
} block;

typedef struct {
	pthread_mutex_t lock;
	block items[QCAP];
	unsigned head, count;
} queue;

typedef enum {
	OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOCARRAY, OP_FREE, OP_POSIX_MEMALIGN, OP_ALIGNED_ALLOC,
	OP_MEMALIGN, OP_VALLOC, OP_PVALLOC, OP_USABLE, OP_VERIFY, OP_GIVE, OP_TAKE, OP_ADOPT, OP_TRIM,
	OP_CHECK, OP_FORK, OP_COUNT
} op_kind;

static const char *const op_name[OP_COUNT] = {
	"malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc", "memalign",
	"valloc", "pvalloc", "malloc_usable_size", "verify", "give", "take", "adopt", "malloc_trim", "mk_check",
	"fork",
};

/* Weights out of 1000 (the rest after these: malloc). */
static const unsigned op_weight[OP_COUNT] = {
	[OP_CALLOC] = 70, [OP_REALLOC] = 150, [OP_REALLOCARRAY] = 30, [OP_FREE] = 230,
	[OP_POSIX_MEMALIGN] = 40, [OP_ALIGNED_ALLOC] = 30, [OP_MEMALIGN] = 30, [OP_VALLOC] = 10,
	[OP_PVALLOC] = 10, [OP_USABLE] = 30, [OP_VERIFY] = 20, [OP_GIVE] = 60, [OP_TAKE] = 25, [OP_ADOPT] = 5,
	[OP_TRIM] = 1, [OP_CHECK] = 3, [OP_FORK] = 0, /* fork is drawn apart */
};

/* A worker: one thread index, one generation at a time. */
typedef struct {
	int index;
	unsigned gen;
	uint64_t rng;
	uint64_t op;             /* operations done in this generation */
	uint64_t life;           /* operations this generation lives */
	uint64_t serial;
	op_kind doing;
	const block *subject;    /* the block the operation is about, for the failure message */
	block slots[SLOTS];
	unsigned n;
	pthread_t tid;
	_Atomic int finished;
	bool running;
} worker;

static worker workers[MAX_THREADS];
static queue queues[MAX_THREADS];

static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER;
static block orphans[ORPHANS];
static unsigned norphans;

static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;
static fz_interval set_storage[SET_CAP];
static fz_set live_set = {set_storage, 0, SET_CAP};

static _Atomic size_t live_bytes;        /* requested bytes of all live blocks */
static _Atomic uint64_t done_ops[MAX_THREADS];
static _Atomic uint64_t counts[OP_COUNT];
static _Atomic unsigned forks;
static _Atomic int stop;
static bool in_child;
static double deadline;

static size_t boundaries[256];
static unsigned nboundaries;
static size_t page_size;

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- failures ---------------------------------------------------------------------------------------- */

/* Says what failed, where, and how to replay it, then ends the process: after a failure the heap and the
 * shadow disagree, and going on would only add noise.  A forked child writes with write(2) (another thread
 * of the parent may have held stdio's lock at fork) and exits 3. */
static __attribute__((noreturn, format(printf, 2, 3))) void fail(const worker *w, const char *fmt, ...)
{
	char what[512], where[256], blk[256] = "", line[1400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (w)
		snprintf(where, sizeof where, "thread %d gen %u op %" PRIu64 " (%s)%s", w->index, w->gen, w->op,
		         op_name[w->doing], in_child ? " in a forked child" : "");
	else
		snprintf(where, sizeof where, "final check");
	if (w && w->subject)
		snprintf(blk, sizeof blk, "; block id %#" PRIx64 " at %p, %zu bytes asked, %zu usable, align %zu",
		         w->subject->id, (void *)w->subject->p, w->subject->req, w->subject->usable, w->subject->align);
	snprintf(line, sizeof line,
	         "FAIL %s seed %" PRIu64 ": %s: %s%s\n  replay: %s -s %" PRIu64 " -j %d -n %" PRIu64
	         " -t %g -m %zu -M %zu%s%s%s\n",
	         opt.label, opt.seed, where, what, blk, opt.argv0, opt.seed, opt.threads, opt.ops, opt.seconds,
	         opt.max_live / MiB, opt.max_size / MiB, opt.fork ? "" : " -F", opt.warm ? " -W" : "",
	         opt.alone ? " -X" : "");
	if (in_child) {
		ssize_t unused = write(2, line, strlen(line));
		(void)unused;
		_exit(3);
	}
	pthread_mutex_lock(&fail_lock);
	fputs(line, stdout);
	fflush(stdout);
	fflush(stderr);
	_exit(1);
}

/* --- random draws ------------------------------------------------------------------------------------ */

static uint64_t rnd(worker *w) { return test_rand(&w->rng); }
static uint64_t below(worker *w, uint64_t n) { return n ? rnd(w) % n : 0; }

/* Uniform in [lo, hi] on a log scale, then uniform within the octave. */
static size_t log_uniform(worker *w, size_t lo, size_t hi)
{
	unsigned a = 63u - (unsigned)__builtin_clzl(lo | 1), b = 63u - (unsigned)__builtin_clzl(hi | 1);
	unsigned k = a + (unsigned)below(w, b - a + 1);
	size_t from = (size_t)1 << k, to = k >= 63 ? SIZE_MAX : ((size_t)1 << (k + 1)) - 1;
	if (from < lo)
		from = lo;
	if (to > hi)
		to = hi;
	return from + below(w, to - from + 1);
}

/* A boundary of the grid in [lo, hi], nudged by -1, 0 or +1 (sometimes by a page). */
static size_t near_boundary(worker *w, size_t lo, size_t hi)
{
	unsigned first, last;
	if (!fz_boundaries_in(boundaries, nboundaries, lo, hi, &first, &last))
		return lo;
	size_t b = boundaries[first + below(w, last - first)];
	uint64_t r = below(w, 16);
	if (r < 5)
		return b - 1;
	if (r < 10)
		return b;
	if (r < 15)
		return b + 1;
	return below(w, 2) || b <= page_size ? b + page_size : b - page_size / 2;
}

static size_t draw_size(worker *w)
{
	/* per 100,000: the big ones are rare, their bytes still dominate the fuzzer's time */
	uint64_t r = below(w, 100000);
	size_t n;
	if (r < 3000)
		n = 0;
	else if (r < 25000)
		n = 1 + below(w, 1024);
	else if (r < 45000)
		n = near_boundary(w, 16, 1024);
	else if (r < 63000)
		n = below(w, 2) ? near_boundary(w, 1024, 128 * KiB) : log_uniform(w, 1025, 128 * KiB);
	else if (r < 67000) /* large: 64 KiB spans up to 2 MiB */
		n = below(w, 3) ? near_boundary(w, 128 * KiB, 2 * MiB)
		               : (1 + below(w, 32)) * 64 * KiB + below(w, 3) - 1;
	else if (r < 99280)
		n = log_uniform(w, 1, 64 * KiB);
	else if (r < 99880) /* huge: a mapping each */
		n = below(w, 2) ? near_boundary(w, 2 * MiB, 16 * MiB) : log_uniform(w, 2 * MiB, 16 * MiB);
	else if (r < 99990)
		n = log_uniform(w, 16 * MiB, 64 * MiB);
	else
		n = log_uniform(w, 64 * MiB, 256 * MiB);
	if (n > opt.max_size)
		n = below(w, opt.max_size + 1);
	/* bound what is live: past the budget, small blocks only */
	if (n > 64 * KiB && atomic_load(&live_bytes) + n > opt.max_live)
		n = below(w, 64 * KiB);
	return n;
}

/* A power of two: mostly up to a page, rarely up to 1 GiB (then with a small size). */
static size_t draw_align(worker *w, bool small_ok)
{
	uint64_t r = below(w, 1000);
	unsigned k;
	if (small_ok && r < 40)
		k = (unsigned)below(w, 4);          /* 1 .. 8 */
	else if (r < 650)
		k = 4 + (unsigned)below(w, 9);      /* 16 .. 4096 */
	else if (r < 900)
		k = 13 + (unsigned)below(w, 4);     /* 8 KiB .. 64 KiB */
	else if (r < 985)
		k = 17 + (unsigned)below(w, 5);     /* 128 KiB .. 2 MiB */
	else if (r < 998)
		k = 22 + (unsigned)below(w, 5);     /* 4 MiB .. 64 MiB */
	else
		k = 27 + (unsigned)below(w, 4);     /* 128 MiB .. 1 GiB */
	return (size_t)1 << k;
}

/* --- the shadow -------------------------------------------------------------------------------------- */

static void verify(worker *w, const block *b, size_t upto)
{
	size_t bad = fz_find_bad(b->p, 0, upto, b->base);
	if (bad != FZ_NONE)
		fail(w, "byte %zu of the block is %#x, not the pattern's %#x", bad, b->p[bad], fz_byte(b->base, bad));
}

/* Records a block the allocator just returned: checks it, enters it in the live set, fills it. */
static void admit(worker *w, block *b, bool zeroed, size_t keep)
{
	w->subject = b;
	if (b->p == NULL)
		fail(w, "returned NULL (%zu bytes live in all)", atomic_load(&live_bytes));
	if ((uintptr_t)b->p % b->align != 0)
		fail(w, "not aligned to %zu", b->align);
	b->usable = M(malloc_usable_size)(b->p);
	if (b->usable < b->req)
		fail(w, "malloc_usable_size %zu < %zu asked", b->usable, b->req);
	if (zeroed) {
		size_t nz = fz_find_nonzero(b->p, b->req);
		if (nz != FZ_NONE)
			fail(w, "calloc'ed byte %zu is %#x", nz, b->p[nz]);
	}
	if (keep != FZ_NONE)
		verify(w, b, keep);
	uintptr_t start = (uintptr_t)b->p, end = start + (b->usable ? b->usable : 1);
	fz_interval clash;
	pthread_mutex_lock(&set_lock);
	int r = fz_set_insert(&live_set, start, end, b->id, &clash);
	pthread_mutex_unlock(&set_lock);
	if (r == -1)
		fail(w, "[%p, %p) overlaps live block id %#" PRIx64 " at [%p, %p)", (void *)start, (void *)end, clash.id,
		     (void *)clash.start, (void *)clash.end);
	if (r == -2)
		fail(w, "the fuzzer's live set is full (%d entries)", SET_CAP);
	/* mostly the bytes asked for; a quarter of the blocks use all of their usable size */
	size_t filled = below(w, 4) == 0 ? b->usable : b->req;
	fz_fill(b->p, keep == FZ_NONE ? 0 : keep, filled, b->base);
	b->filled = filled;
	atomic_fetch_add(&live_bytes, b->req);
	w->subject = NULL;
}

/* Takes a block out of the live set before the allocator gets it back. */
static void retire(worker *w, const block *b)
{
	w->subject = b;
	verify(w, b, b->filled);
	pthread_mutex_lock(&set_lock);
	int r = fz_set_remove(&live_set, (uintptr_t)b->p);
	pthread_mutex_unlock(&set_lock);
	if (r != 0)
		fail(w, "live block missing from the fuzzer's set");
	atomic_fetch_sub(&live_bytes, b->req);
	w->subject = NULL;
}

static block new_block(worker *w, size_t req, size_t align)
{
	uint64_t id = (uint64_t)w->index << 56 | (uint64_t)(w->gen & 0xFFFFFF) << 32 | (w->serial++ & 0xFFFFFFFF);
	return (block){.req = req, .align = align, .id = id, .base = fz_base(opt.seed, id)};
}

static void keep_block(worker *w, const block *b) { w->slots[w->n++] = *b; }

static block take_slot(worker *w, unsigned k)
{
	block b = w->slots[k];
	w->slots[k] = w->slots[--w->n];
	return b;
}

/* --- operations -------------------------------------------------------------------------------------- */

static void do_alloc(worker *w, op_kind kind)
{
	size_t n = draw_size(w), align = 16;
	block b;
	bool zeroed = false;
	switch (kind) {
	case OP_CALLOC: {
		/* count * size == n, split in various ways */
		size_t count = 1, size = n;
		uint64_t r = below(w, 4);
		if (r == 1 && n > 0) {
			size = 1;
			count = n;
		} else if (r == 2 && n >= 16) {
			size_t f = (size_t)1 << below(w, 5);
			count = n / f;
			size = f;
			n = count * size;
		}
		b = new_block(w, n, 16);
		b.p = M(calloc)(count, size);
		zeroed = true;
		break;
	}
	case OP_POSIX_MEMALIGN: {
		align = draw_align(w, false);
		if (align < sizeof(void *))
			align = sizeof(void *);
		if (align >= 4 * MiB && n > 8 * MiB)
			n = below(w, 8 * MiB);
		b = new_block(w, n, align);
		void *p = NULL;
		int rc = M(posix_memalign)(&p, align, n);
		if (rc != 0)
			fail(w, "posix_memalign(%zu, %zu) returned %d", align, n, rc);
		b.p = p;
		break;
	}
	case OP_ALIGNED_ALLOC:
	case OP_MEMALIGN:
		align = draw_align(w, true);
		if (align >= 4 * MiB && n > 8 * MiB)
			n = below(w, 8 * MiB);
		b = new_block(w, n, align);
		b.p = kind == OP_MEMALIGN ? M(memalign)(align, n) : M(aligned_alloc)(align, n);
		break;
	case OP_VALLOC:
		b = new_block(w, n, page_size);
		b.p = M(valloc)(n);
		break;
	case OP_PVALLOC:
		/* pvalloc rounds the request up to whole pages (0 to one page), and all of it is usable */
		b = new_block(w, n == 0 ? page_size : (n + page_size - 1) & ~(page_size - 1), page_size);
		b.p = M(pvalloc)(n);
		break;
	default:
		b = new_block(w, n, 16);
		b.p = M(malloc)(n);
		break;
	}
	if (opt.verbose)
		fprintf(stderr, "t%d.%u op %" PRIu64 ": %s %zu align %zu -> %p\n", w->index, w->gen, w->op,
		        op_name[kind], b.req, b.align, (void *)b.p);
	admit(w, &b, zeroed, FZ_NONE);
	keep_block(w, &b);
}

static void do_free(worker *w, unsigned k)
{
	block b = take_slot(w, k);
	retire(w, &b);
	if (opt.verbose)
		fprintf(stderr, "t%d.%u op %" PRIu64 ": free %p\n", w->index, w->gen, w->op, (void *)b.p);
	M(free)(b.p);
}

/* A new size for a realloc: next to the old one, across its usable size, or anything. */
static size_t realloc_size(worker *w, const block *b)
{
	switch (below(w, 6)) {
	case 0:
		return b->req + 1 + below(w, b->req / 4 + 16);
	case 1:
		return b->req - below(w, b->req / 2 + 1);
	case 2:
		return b->usable + below(w, 3);
	case 3:
		return b->usable > 0 ? b->usable - below(w, 2) : 1;
	default:
		return draw_size(w);
	}
}

static void do_realloc(worker *w, op_kind kind)
{
	/* realloc(NULL, n) is malloc */
	if (w->n == 0 || below(w, 50) == 0) {
		size_t n = draw_size(w);
		block b = new_block(w, n, 16);
		b.p = kind == OP_REALLOC ? M(realloc)(NULL, n) : M(reallocarray)(NULL, 1, n);
		admit(w, &b, false, FZ_NONE);
		keep_block(w, &b);
		return;
	}
	unsigned k = (unsigned)below(w, w->n);
	block old = take_slot(w, k);
	/* realloc(p, 0) frees, as glibc's does (reallocarray too) */
	if (kind == OP_REALLOC && below(w, 100) == 0) {
		retire(w, &old);
		void *r = M(realloc)(old.p, 0);
		if (r != NULL)
			fail(w, "realloc(%p, 0) returned %p, not NULL", (void *)old.p, r);
		return;
	}
	size_t n = realloc_size(w, &old);
	if (n > opt.max_size)
		n = below(w, opt.max_size + 1);
	if (n == 0)
		n = 1;
	if (n > 64 * KiB && n > old.req && atomic_load(&live_bytes) + (n - old.req) > opt.max_live)
		n = old.req ? old.req : 1;
	retire(w, &old);
	block b = old;
	b.req = n;
	b.align = 16;
	if (kind == OP_REALLOCARRAY) {
		size_t size = n % 8 == 0 ? 8 : 1;
		b.p = M(reallocarray)(old.p, n / size, size);
	} else {
		b.p = M(realloc)(old.p, n);
	}
	if (opt.verbose)
		fprintf(stderr, "t%d.%u op %" PRIu64 ": %s %p %zu -> %zu at %p\n", w->index, w->gen, w->op,
		        op_name[kind], (void *)old.p, old.req, n, (void *)b.p);
	admit(w, &b, false, old.req < n ? old.req : n);
	keep_block(w, &b);
}

static void do_usable(worker *w)
{
	if (w->n == 0)
		return;
	const block *b = &w->slots[below(w, w->n)];
	w->subject = b;
	size_t u = M(malloc_usable_size)(b->p);
	if (u != b->usable)
		fail(w, "malloc_usable_size now %zu, was %zu", u, b->usable);
	w->subject = NULL;
}

static void do_verify(worker *w)
{
	if (w->n == 0)
		return;
	const block *b = &w->slots[below(w, w->n)];
	w->subject = b;
	verify(w, b, b->filled);
	w->subject = NULL;
}

static void heap_check(worker *w)
{
	int errors = test_heap_check();
	if (errors != 0)
		fail(w, "mk_check() found %d errors", errors);
}

/* Hands a block to another thread's queue (it stays live: only its owner changes). */
static void do_give(worker *w)
{
	if (w->n == 0 || opt.threads < 2)
		return;
	unsigned k = (unsigned)below(w, w->n);
	int to = (w->index + 1 + (int)below(w, (uint64_t)opt.threads - 1)) % opt.threads;
	queue *q = &queues[to];
	pthread_mutex_lock(&q->lock);
	if (q->count < QCAP) {
		q->items[(q->head + q->count++) % QCAP] = w->slots[k];
		w->slots[k] = w->slots[--w->n];
	}
	pthread_mutex_unlock(&q->lock);
}

static void do_take(worker *w)
{
	queue *q = &queues[w->index];
	pthread_mutex_lock(&q->lock);
	while (q->count > 0 && w->n < SLOTS) {
		keep_block(w, &q->items[q->head]);
		q->head = (q->head + 1) % QCAP;
		q->count--;
	}
	pthread_mutex_unlock(&q->lock);
}

static void do_adopt(worker *w)
{
	pthread_mutex_lock(&orphan_lock);
	for (unsigned i = 0; i < 64 && norphans > 0 && w->n < SLOTS; i++) {
		unsigned k = (unsigned)below(w, norphans);
		keep_block(w, &orphans[k]);
		orphans[k] = orphans[--norphans];
	}
	pthread_mutex_unlock(&orphan_lock);
}

static void do_trim(worker *w)
{
	M(malloc_trim)(below(w, 2) ? 0 : below(w, 4 * MiB));
	/* trimming must not take what is live: look at one block whole */
	do_verify(w);
}

static void run_op(worker *w, op_kind kind);

/* The child of a fork: only this thread exists.  Checks every block it inherited, runs a short sequence of
 * its own (no other threads, no queues) and exits 0; a failure exits 3 with its line on stderr. */
static __attribute__((noreturn)) void child_run(worker *w)
{
	in_child = true;
	for (unsigned i = 0; i < w->n; i++) {
		w->subject = &w->slots[i];
		verify(w, &w->slots[i], w->slots[i].filled);
	}
	w->subject = NULL;
	heap_check(w);
	for (unsigned i = 0; i < CHILD_OPS; i++, w->op++) {
		uint64_t r = below(w, 10);
		op_kind kind = r < 4 ? OP_MALLOC : r < 7 ? OP_FREE : r < 8 ? OP_REALLOC : r < 9 ? OP_CALLOC : OP_MEMALIGN;
		run_op(w, kind);
	}
	heap_check(w);
	_exit(0);
}

/* Waits for pid at most `seconds`: a child stuck on a lock held at fork never exits. */
static int wait_child(pid_t pid, double seconds)
{
	double until = now() + seconds;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 || now() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

static void do_fork(worker *w)
{
	/* holding the set's lock across fork hands the child a consistent set */
	fflush(stdout);
	fflush(stderr);
	pthread_mutex_lock(&set_lock);
	pid_t pid = fork();
	pthread_mutex_unlock(&set_lock);
	if (pid < 0)
		fail(w, "fork failed: %s", strerror(errno));
	if (pid == 0)
		child_run(w);
	int status = wait_child(pid, 30);
	if (status == -1)
		fail(w, "the forked child hung (killed after 30 s)");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail(w, "the forked child ended with status %#x (its report is on stderr)", status);
	atomic_fetch_add(&forks, 1);
}

static void run_op(worker *w, op_kind kind)
{
	/* -X: what reads other threads' span counters waits for the end */
	if (opt.alone && (kind == OP_CHECK || kind == OP_TRIM))
		kind = OP_VERIFY;
	w->doing = kind;
	/* a full table must give back, an empty one must take */
	if (w->n >= SLOTS - 1 && kind != OP_FREE && kind != OP_GIVE)
		kind = w->doing = OP_FREE;
	switch (kind) {
	case OP_FREE:
		if (w->n > 0)
			do_free(w, (unsigned)below(w, w->n));
		break;
	case OP_REALLOC:
	case OP_REALLOCARRAY:
		do_realloc(w, kind);
		break;
	case OP_USABLE:
		do_usable(w);
		break;
	case OP_VERIFY:
		do_verify(w);
		break;
	case OP_GIVE:
		if (!in_child)
			do_give(w);
		break;
	case OP_TAKE:
		if (!in_child)
			do_take(w);
		break;
	case OP_ADOPT:
		if (!in_child)
			do_adopt(w);
		break;
	case OP_TRIM:
		do_trim(w);
		break;
	case OP_CHECK:
		heap_check(w);
		break;
	case OP_FORK:
		if (!in_child)
			do_fork(w);
		break;
	default:
		do_alloc(w, kind);
		break;
	}
	atomic_fetch_add_explicit(&counts[kind], 1, memory_order_relaxed);
}

static op_kind draw_op(worker *w)
{
	/* thread 0 forks about once per 3000 operations */
	if (w->index == 0 && opt.fork && can_fork && below(w, 3000) == 0)
		return OP_FORK;
	uint64_t r = below(w, 1000);
	for (unsigned k = 0; k < OP_COUNT; k++) {
		if (r < op_weight[k])
			return (op_kind)k;
		r -= op_weight[k];
	}
	return OP_MALLOC;
}

/* --- threads ----------------------------------------------------------------------------------------- */

static bool should_stop(const worker *w)
{
	if (atomic_load_explicit(&stop, memory_order_relaxed))
		return true;
	if (opt.ops && atomic_load(&done_ops[w->index]) >= opt.ops)
		return true;
	return false;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	while (w->op < w->life && !should_stop(w)) {
		run_op(w, draw_op(w));
		w->op++;
		atomic_fetch_add_explicit(&done_ops[w->index], 1, memory_order_relaxed);
		if (w->op % 16 == 0)
			do_take(w);
		if (w->op % CHECK_EVERY == 0) {
			w->doing = OP_CHECK;
			if (!opt.alone)
				heap_check(w);
			if (now() > deadline)
				atomic_store(&stop, 1);
		}
	}
	/* exit with the blocks still out: the orphan pool has them, later threads free them */
	w->doing = OP_CHECK;
	if (!opt.alone)
		heap_check(w);
	pthread_mutex_lock(&orphan_lock);
	while (w->n > 0 && norphans < ORPHANS)
		orphans[norphans++] = w->slots[--w->n];
	pthread_mutex_unlock(&orphan_lock);
	while (w->n > 0)
		do_free(w, w->n - 1);
	atomic_store(&w->finished, 1);
	return NULL;
}

static void start_worker(int index, unsigned gen)
{
	worker *w = &workers[index];
	w->index = index;
	w->gen = gen;
	w->rng = fz_mix(opt.seed ^ fz_mix(((uint64_t)index << 32 | gen) + 0x5EED)) | 1;
	w->op = 0;
	w->life = 2000 + below(w, 20000);
	w->serial = 0;
	w->n = 0;
	w->subject = NULL;
	atomic_store(&w->finished, 0);
	int rc = pthread_create(&w->tid, NULL, worker_main, w);
	if (rc != 0)
		fail(NULL, "pthread_create: %s", strerror(rc));
	w->running = true;
}

/* Frees what is left in the queues and the orphan pool, checking each block. */
static void drain(void)
{
	worker *w = &workers[0]; /* the main thread borrows a worker's shadow for the failure messages */
	w->index = 0;
	w->n = 0;
	w->doing = OP_FREE;
	for (int i = 0; i < opt.threads; i++) {
		w->index = i;
		do_take(w);
		while (w->n > 0)
			do_free(w, w->n - 1);
	}
	while (norphans > 0 || w->n > 0) {
		do_adopt(w);
		while (w->n > 0)
			do_free(w, w->n - 1);
	}
}

static int run(void)
{
	printf("fuzz: seed %" PRIu64 "\n", opt.seed);
	fflush(stdout);
	double start = now();
	deadline = start + opt.seconds;
	atomic_store(&stop, 0);
	atomic_store(&forks, 0);
	for (unsigned k = 0; k < OP_COUNT; k++)
		atomic_store(&counts[k], 0);
	unsigned gens[MAX_THREADS] = {0};
	for (int i = 0; i < opt.threads; i++) {
		atomic_store(&done_ops[i], 0);
		queues[i].head = queues[i].count = 0;
	}
	for (int i = 0; i < opt.threads; i++)
		start_worker(i, gens[i]++);
	/* replace every thread that ends until time or the operation count is up */
	int running = opt.threads;
	while (running > 0) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
		if (now() > deadline)
			atomic_store(&stop, 1);
		for (int i = 0; i < opt.threads; i++) {
			worker *w = &workers[i];
			if (!w->running || !atomic_load(&w->finished))
				continue;
			pthread_join(w->tid, NULL);
			w->running = false;
			running--;
			if (!atomic_load(&stop) && !(opt.ops && atomic_load(&done_ops[i]) >= opt.ops)) {
				start_worker(i, gens[i]++);
				running++;
			}
		}
	}
	size_t held = norphans;
	for (int i = 0; i < opt.threads; i++)
		held += workers[i].n + queues[i].count;
	if (held != live_set.n && getenv("FUZZ_DEBUG")) {
		for (size_t k = 0; k < live_set.n; k++) {
			bool found = false;
			for (int i = 0; i < opt.threads; i++)
				for (unsigned j = 0; j < workers[i].n; j++)
					found |= workers[i].slots[j].id == live_set.v[k].id;
			for (int i = 0; i < opt.threads; i++)
				for (unsigned j = 0; j < queues[i].count; j++)
					found |= queues[i].items[(queues[i].head + j) % QCAP].id == live_set.v[k].id;
			for (unsigned j = 0; j < norphans; j++)
				found |= orphans[j].id == live_set.v[k].id;
			if (!found)
				fprintf(stderr, "lost %#" PRIx64 " at %p\n", live_set.v[k].id, (void *)live_set.v[k].start);
		}
	}
	if (held != live_set.n)
		fail(NULL, "the fuzzer lost track: %zu blocks held, %zu in the live set", held, live_set.n);
	drain();
	workers[0].doing = OP_CHECK;
	if (opt.alone)
		M(malloc_trim)(0);
	heap_check(NULL);
	if (live_set.n != 0 || atomic_load(&live_bytes) != 0)
		fail(NULL, "%zu blocks (%zu bytes) still in the fuzzer's set after all were freed, the first id %#" PRIx64
		     " at %p", live_set.n, atomic_load(&live_bytes), live_set.n ? live_set.v[0].id : 0,
		     live_set.n ? (void *)live_set.v[0].start : NULL);
	uint64_t total = 0;
	unsigned generations = 0;
	for (int i = 0; i < opt.threads; i++) {
		total += atomic_load(&done_ops[i]);
		generations += gens[i];
	}
	printf("PASS %s seed %" PRIu64 ": %" PRIu64 " operations in %.1f s, %d threads x %u generations, %u forks\n",
	       opt.label, opt.seed, total, now() - start, opt.threads, generations, atomic_load(&forks));
	printf("  ");
	for (unsigned k = 0; k < OP_COUNT; k++)
		printf("%s %" PRIu64 "%s", op_name[k], atomic_load(&counts[k]), k + 1 < OP_COUNT ? ", " : "\n");
	fflush(stdout);
	return 0;
}

static uint64_t random_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return fz_mix((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 12) % 1000000000;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: %s [-T] [-s SEED] [-t SECONDS] [-n OPS] [-j THREADS] [-m LIVE_MiB] [-M BLOCK_MiB] [-F] [-W] [-X] [-l LABEL] [-v]\n"
	        "  -T (or no options): the make-test run, a fixed seed for a fixed count, then a random one\n"
	        "  -F: no fork; -W: make the allocator's first call in main before the threads start (the engine\n"
	        "      once read its class table before initialising it in aligned allocation; fixed)\n"
	        "  -X: mk_check and malloc_trim only at the end, alone (they read other threads' span counters\n"
	        "      unsynchronised, which ThreadSanitizer reports)\n"
	        "  -v: every allocation and free on stderr\n",
	        opt.argv0);
	exit(2);
}

int main(int argc, char **argv)
{
#ifdef MK_TEST_SANITIZE
	enum { TEST_OPS = 2000, TEST_SECONDS = 1, TEST_LIVE = 256, TEST_BLOCK = 64 };
#else
	enum { TEST_OPS = 8000, TEST_SECONDS = 2, TEST_LIVE = 512, TEST_BLOCK = 256 };
#endif
	setvbuf(stdout, NULL, _IOLBF, 0);
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	nboundaries = fz_boundaries(boundaries, 256);
	for (int i = 0; i < MAX_THREADS; i++)
		pthread_mutex_init(&queues[i].lock, NULL);
	opt.argv0 = argv[0];
#ifdef MK_TEST_PREFIXED
	opt.label = "fuzz-mk";
#else
	opt.label = "fuzz-plain";
#endif
	opt.threads = 4;
	opt.max_live = (size_t)1024 * MiB;
	opt.max_size = (size_t)256 * MiB;
	opt.fork = true;
	opt.seconds = 60;
	bool seeded = false, test_mode = argc == 1;
	int c;
	while ((c = getopt(argc, argv, "s:t:n:j:m:M:Fl:vTWX")) != -1) {
		switch (c) {
		case 's': opt.seed = strtoull(optarg, NULL, 0); seeded = true; break;
		case 't': opt.seconds = strtod(optarg, NULL); break;
		case 'n': opt.ops = strtoull(optarg, NULL, 0); break;
		case 'j': opt.threads = atoi(optarg); break;
		case 'm': opt.max_live = strtoull(optarg, NULL, 0) * MiB; break;
		case 'M': opt.max_size = strtoull(optarg, NULL, 0) * MiB; break;
		case 'F': opt.fork = false; break;
		case 'l': opt.label = optarg; break;
		case 'v': opt.verbose = true; break;
		case 'T': test_mode = true; break;
		case 'W': opt.warm = true; break;
		case 'X': opt.alone = true; break;
		default: usage();
		}
	}
	if (optind != argc || opt.threads < 1 || opt.threads > MAX_THREADS || opt.seconds <= 0)
		usage();
	/* The allocator's first call made here, before the threads race to make it (see -W in usage()). */
	if (opt.warm)
		M(free)(M(malloc)(1));
	if (test_mode) {
		/* the make-test run: the fixed seed for a fixed count (capped in time), then a random seed;
		 * two cases (tests/run-all.sh's PLAN rule) */
		printf("PLAN 2\n");
		fflush(stdout);
		opt.max_live = (size_t)TEST_LIVE * MiB;
		opt.max_size = (size_t)TEST_BLOCK * MiB;
		opt.seed = 1;
		opt.ops = TEST_OPS;
		opt.seconds = 20;
		run();
		opt.seed = random_seed();
		opt.ops = 0;
		opt.seconds = TEST_SECONDS;
		return run();
	}
	if (!seeded)
		opt.seed = random_seed();
	printf("PLAN 1\n");
	fflush(stdout);
	return run();
}
