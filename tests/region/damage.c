/* Region heaps given damaged or hostile bytes: a region is untrusted input, so every offset and size read
 * from it is validated before use.  Each case builds a damaged heap on purpose, then calls the API on it in
 * a child process with an alarm, over memory with wide PROT_NONE guards on both sides, and checks that
 * nothing crashed (an access outside the region hits a guard), nothing hung (the alarm), the header's
 * geometry was not overwritten, and the documented error came back.
 *
 * The damage: a bin head whose prev link is forged (the allocator once split a block smaller than the
 * request and wrote past the region), bins and links pointing outside the region, into the header or
 * between units, list cycles, impossible counters, a zeroed block header (the walks of foreach and reclaim
 * once spun on its size 0 holding the lock), sizes past the end, forged previous sizes, geometry edited
 * under a live heap, and the same damage in a file opened alone, opened while another process has it, and
 * in memory given to mkr_attach. */
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "helpers.h"
#include "region/layout.h"

#define SIZE (64u * 1024)
#define GUARD (256ull << 20) /* PROT_NONE on each side: a stray access within 256 MiB faults */

/* --- guarded memory and children ------------------------------------------------------------------ */
static char *guarded(size_t size)
{
	char *r = mmap(NULL, size + 2 * GUARD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	if (mprotect(r + GUARD, size, PROT_READ | PROT_WRITE) != 0) {
		munmap(r, size + 2 * GUARD);
		return NULL;
	}
	return r + GUARD;
}

static void unguard(char *mem, size_t size) { munmap(mem - GUARD, size + 2 * GUARD); }

/* Runs fn(arg) in a child that has 10 seconds: 1 when it exited 0 (its CHECKs held). */
static int in_child(const char *what, void (*fn)(void *), void *arg)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(getenv("MKR_TEST_ALARM") ? (unsigned)atoi(getenv("MKR_TEST_ALARM")) : 10);
		test_case_failed = 0;
		fn(arg);
		fflush(stderr);
		_exit(test_case_failed ? 1 : 0);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		fprintf(stderr, "  %s: no child\n", what);
		return 0;
	}
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		fprintf(stderr, "  %s: child killed by signal %d (%s)\n", what, sig,
		        sig == SIGALRM ? "hung" : sig == SIGSEGV || sig == SIGBUS ? "access outside the region" : "crash");
		return 0;
	}
	if (WEXITSTATUS(status) != 0) {
		fprintf(stderr, "  %s: checks failed in the child\n", what);
		return 0;
	}
	return 1;
}
#define CHILD(fn, arg) CHECK(in_child(#fn, fn, arg))

/* --- a heap image to damage ------------------------------------------------------------------------ */
/* A 64 KiB heap in guarded memory: p[0] 100 bytes, p[1..5] the smallest blocks (2 units), p[6] 200 bytes,
 * then one large free block; p[1] and p[3] are freed, so bin 2 holds p[3] -> p[1] (p[1].prev = p[3]), p[2]
 * lies between two free blocks and p[5] between two used ones. */
struct img {
	char *mem;
	mkr_heap *h;
	struct rg_header *hd;
	uint64_t b[7];        /* header offsets of the blocks */
	uint64_t big;         /* header offset of the large free block */
	char geometry[56];    /* the header's first bytes, to prove no write landed there */
};

static int make_image(struct img *m)
{
	memset(m, 0, sizeof *m);
	if (!(m->mem = guarded(SIZE)) || !(m->h = mkr_create_in(m->mem, SIZE)))
		return 0;
	m->hd = (struct rg_header *)m->mem;
	static const size_t sizes[7] = {100, 16, 16, 16, 16, 16, 200};
	for (int i = 0; i < 7; i++) {
		char *p = mkr_alloc(m->h, sizes[i]);
		if (!p)
			return 0;
		m->b[i] = (uint64_t)(p - m->mem) - RG_UNIT;
	}
	m->big = m->b[6] + (uint32_t)*(uint64_t *)(m->mem + m->b[6]) * RG_UNIT;
	if (mkr_free(m->h, m->mem + m->b[1] + RG_UNIT) || mkr_free(m->h, m->mem + m->b[3] + RG_UNIT) || mkr_check(m->h))
		return 0;
	memcpy(m->geometry, m->mem, sizeof m->geometry);
	return 1;
}

static void drop_image(struct img *m)
{
	if (m->h)
		mkr_close(m->h);
	if (m->mem)
		unguard(m->mem, SIZE);
}

static uint64_t *w0(struct img *m, uint64_t off) { return (uint64_t *)(m->mem + off); }
static uint64_t *w1(struct img *m, uint64_t off) { return (uint64_t *)(m->mem + off + 8); }
static uint64_t *nextl(struct img *m, uint64_t off) { return (uint64_t *)(m->mem + off + 16); }
static uint64_t *prevl(struct img *m, uint64_t off) { return (uint64_t *)(m->mem + off + 24); }
static void *pay(struct img *m, int i) { return m->mem + m->b[i] + RG_UNIT; }
static uint32_t units(struct img *m, uint64_t off) { return (uint32_t)*w0(m, off); }
static void set_bin(struct img *m, unsigned b, uint64_t off)
{
	m->hd->bins[b] = off;
	m->hd->bin_map[b / 64] |= 1ull << (b % 64);
}
static unsigned bin_for(uint64_t u) /* the bin of a size, as heap.c files it */
{
	if (u < 64)
		return (unsigned)u;
	unsigned lg = 63u - (unsigned)__builtin_clzll(u);
	return 64 + (lg - 6) * 4 + (unsigned)(u >> (lg - 2) & 3);
}

#define GEOMETRY_INTACT(m) CHECK(memcmp((m)->mem, (m)->geometry, sizeof (m)->geometry) == 0)
#define EIO_FROM(call) CHECK((call) == -1 && errno == EIO)

/* Every API call once, on a heap that may be damaged: each either works or fails with one of the
 * documented errors; nothing may crash, hang or write outside the region. */
static void every_call(struct img *m)
{
	mkr_heap *h = m->h;
	struct mkr_stats st;
	errno = 0;
	void *a = mkr_alloc(h, 40);
	CHECK(a || errno == ENOMEM || errno == EIO);
	CHECK(!a || mkr_to_off(h, a) >= m->hd->heap_off + RG_UNIT);
	void *big = mkr_alloc(h, SIZE / 2);
	CHECK(big || errno == ENOMEM || errno == EIO);
	void *r = mkr_realloc(h, pay(m, 0), 3000);
	CHECK(r || errno == ENOMEM || errno == EIO || errno == EINVAL);
	if (r)
		CHECK(mkr_free(h, r) == 0 || errno == EIO);
	CHECK(mkr_free(h, pay(m, 2)) == 0 || errno == EIO || errno == EINVAL);
	CHECK(mkr_free(h, a) == 0 || errno == EIO || errno == EINVAL);
	CHECK(mkr_free(h, big) == 0 || errno == EIO || errno == EINVAL);
	CHECK(mkr_usable_size(h, pay(m, 4)) > 0 || errno == EIO || errno == EINVAL);
	(void)mkr_owner(h, pay(m, 4)); /* any value: the owner field is the file's to say */
	CHECK(mkr_foreach(h, NULL, NULL) == -1);
	CHECK(mkr_reclaim_owner(h, 1 << 22) >= 0 || errno == EIO);
	CHECK(mkr_reclaim_owner(h, getpid()) >= 0 || errno == EIO);
	CHECK(mkr_reclaim_dead(h) >= 0 || errno == EIO);
	if (mkr_stats(h, &st) == 0)
		CHECK(st.used_bytes + st.free_bytes <= st.heap_size && st.largest_free <= st.heap_size);
	else
		CHECK(errno == EIO);
	CHECK(mkr_check(h) == 0 || errno == EIO);
	mkr_root_set(h, 0, m->b[4] + RG_UNIT);
	(void)mkr_to_ptr(h, mkr_root_get(h, 0));
	CHECK(mkr_lock_holder(h) == 0);
	GEOMETRY_INTACT(m);
}

static int count_block(void *arg, mkr_off off, size_t size, pid_t owner)
{
	(void)off, (void)size, (void)owner;
	++*(int *)arg;
	return 0;
}

/* --- 11: forged bin heads and links --------------------------------------------------------------- */
/* Bin b (for the request) gets the 2-unit free block p[1] as head; p[1].prev = p[3] and p[3].next = p[1]
 * already, so the old link check passed and the allocator split a 2-unit block for a request of thousands
 * of units: `have - units` underflowed and the remainder's header went far past the region. */
static void forged_head_alloc(void *arg)
{
	struct img *m = arg;
	size_t n = units(m, m->big) * 16; /* one unit more than the largest block: the only answer is ENOMEM */
	set_bin(m, bin_for((n + 31) / 16), m->b[1]);
	errno = 0;
	CHECK(mkr_alloc(m->h, n) == NULL && errno == ENOMEM);
	CHECK_HEAP(m->h); /* the forged bin was found out and the lists rebuilt from the block headers */
	GEOMETRY_INTACT(m);
	every_call(m);
}

static void forged_head_fits(void *arg)
{
	struct img *m = arg;
	size_t n = (units(m, m->big) - 8) * 16;
	unsigned b = bin_for((n + 31) / 16);
	set_bin(m, b - 1, m->b[1]); /* found first: its blocks should all be too small for bin b - 1... */
	set_bin(m, b, m->b[1]);     /* ...and for bin b */
	char *p = mkr_alloc(m->h, n);
	CHECK(p == m->mem + m->big + RG_UNIT);
	CHECK(p && mkr_usable_size(m->h, p) >= n);
	CHECK_HEAP(m->h);
	GEOMETRY_INTACT(m);
}

static void test_forged_bin_head(void)
{
	struct img m;
	REQUIRE(make_image(&m));
	CHILD(forged_head_alloc, &m);
	CHILD(forged_head_fits, &m);
	drop_image(&m);
}

/* A bin head pointing outside the region, past its end, into the header, between units: free pushes onto
 * that bin and used to write its own offset at head + 24. */
static const uint64_t bad_offsets[] = {SIZE + 4096, 1ull << 40, UINT64_MAX - 15, 24, 40, SIZE - 8, 0, 8};

static void bad_head_push(void *arg)
{
	unsigned i = *(unsigned *)arg;
	struct img img, *m = &img;
	REQUIRE(make_image(m));
	uint64_t bad = bad_offsets[i] ? bad_offsets[i] : m->b[2] + 8; /* 0: misaligned, inside a block */
	bad = bad == 8 ? m->hd->heap_off - 16 : bad;                  /* 8: in the start bitmap */
	set_bin(m, 2, bad);
	CHECK(mkr_free(m->h, pay(m, 5)) == 0); /* p[5] is 2 units between used blocks: pushed on bin 2 */
	CHECK_HEAP(m->h);
	GEOMETRY_INTACT(m);
	set_bin(m, 2, bad);
	void *p = mkr_alloc(m->h, 16);
	CHECK(p == pay(m, 5) || p == pay(m, 3) || p == pay(m, 1));
	CHECK_HEAP(m->h);
	set_bin(m, 2, bad);
	CHECK(mkr_free(m->h, p) == 0);
	CHECK_HEAP(m->h);
	GEOMETRY_INTACT(m);
	every_call(m);
	drop_image(m);
}

/* Links out of the region in a free block's payload (next and prev), a two-block cycle, bits of bin_map
 * beyond the last bin, and a free-block counter that would let a cycle spin for ever. */
static void bad_links(void *arg)
{
	struct img *m = arg;
	for (unsigned i = 0; i < sizeof bad_offsets / sizeof bad_offsets[0]; i++) {
		*nextl(m, m->b[3]) = bad_offsets[i] ? bad_offsets[i] : m->b[0] + 8;
		*prevl(m, m->b[1]) = bad_offsets[i] ? bad_offsets[i] : m->b[0] + 8;
		void *p = mkr_alloc(m->h, 16);
		CHECK(p == pay(m, 3));
		CHECK_HEAP(m->h);
		CHECK(mkr_free(m->h, p) == 0);
		GEOMETRY_INTACT(m);
	}
	void *all = mkr_alloc(m->h, (units(m, m->big) - 1) * 16u); /* bin 2 is the only one left */
	CHECK(all == m->mem + m->big + RG_UNIT);
	*nextl(m, m->b[1]) = m->b[3]; /* p[3] <-> p[1] for ever, and a counter that lets a walk go round */
	*prevl(m, m->b[3]) = m->b[1];
	m->hd->free_blocks = UINT64_MAX;
	struct mkr_stats st;
	CHECK(mkr_stats(m->h, &st) == 0 && st.free_blocks == 2 && st.largest_free == 16);
	CHECK(mkr_free(m->h, all) == 0);
	m->hd->bin_map[1] = m->hd->bin_map[2] = ~0ull; /* bins marked full that are empty, and bits past the last */
	CHECK(mkr_alloc(m->h, 3000) != NULL);
	CHECK_HEAP(m->h);
	every_call(m);
}

static void test_bad_links(void)
{
	for (unsigned i = 0; i < sizeof bad_offsets / sizeof bad_offsets[0]; i++)
		if (!in_child("bad_head_push", bad_head_push, &i)) {
			fprintf(stderr, "  (bin head %u)\n", i);
			test_case_failed = 1;
		}
	struct img m;
	REQUIRE(make_image(&m));
	CHILD(bad_links, &m);
	drop_image(&m);
}

/* Impossible counters: stats rebuilds them rather than report sizes larger than the heap. */
static void bad_counters(void *arg)
{
	struct img *m = arg;
	struct mkr_stats st;
	m->hd->used_units = UINT64_MAX / 8;
	m->hd->free_units = 5;
	CHECK(mkr_stats(m->h, &st) == 0);
	CHECK(st.used_bytes + st.free_bytes == st.heap_size && st.used_blocks == 5 && st.free_blocks == 3);
	CHECK_HEAP(m->h);
}

/* A forged previous size in word1 (derived state): free must not merge with, or read, a block that is not
 * there. */
static void bad_prev_size(void *arg)
{
	struct img *m = arg;
	static const uint64_t forged[] = {UINT32_MAX, 1000, 3, 1};
	for (unsigned i = 0; i < 4; i++) {
		*w1(m, m->b[4]) = (uint64_t)getpid() << 32 | forged[i];
		*w1(m, m->b[2]) = (uint64_t)getpid() << 32 | forged[i];
		CHECK(mkr_usable_size(m->h, pay(m, 4)) == 16);
		void *q = mkr_realloc(m->h, pay(m, 4), 8);
		CHECK(q == pay(m, 4));
		CHECK_HEAP(m->h);
		GEOMETRY_INTACT(m);
	}
	*w1(m, m->b[2]) = (uint64_t)getpid() << 32 | UINT32_MAX;
	CHECK(mkr_free(m->h, pay(m, 2)) == 0); /* rebuilt, then merged with p[1] and p[3] */
	CHECK_HEAP(m->h);
	GEOMETRY_INTACT(m);
	every_call(m);
}

/* Geometry edited in the header under a live heap (with a matching sum): the handle keeps what was
 * validated when the heap was opened, and check() reports the edit. */
static void edited_geometry(void *arg)
{
	struct img *m = arg;
	m->hd->heap_end += 1ull << 20;
	m->hd->region_size += 1ull << 20;
	m->hd->geometry_sum = mk__rg_geometry_sum(m->hd);
	errno = 0;
	CHECK(mkr_alloc(m->h, SIZE + 4096) == NULL && errno == ENOMEM);
	void *p = mkr_alloc(m->h, units(m, m->big) * 16 - 16);
	CHECK(p == m->mem + m->big + RG_UNIT);
	CHECK(mkr_free(m->h, p) == 0);
	CHECK(mkr_to_ptr(m->h, SIZE + 64) == NULL);
	int n = 0;
	CHECK(mkr_foreach(m->h, count_block, &n) == 0 && n == 5);
	EIO_FROM(mkr_check(m->h));
	CHECK(strstr(mkr_last_error(), "header") != NULL);
}

static void test_bad_derived_state(void)
{
	void (*cases[])(void *) = {bad_counters, bad_prev_size, edited_geometry};
	const char *names[] = {"bad_counters", "bad_prev_size", "edited_geometry"};
	for (unsigned i = 0; i < 3; i++) {
		struct img m;
		REQUIRE(make_image(&m));
		CHECK(in_child(names[i], cases[i], &m));
		drop_image(&m);
	}
}

/* --- 12: walks over damaged block headers ------------------------------------------------------- */
/* Each damage to p[2]'s header (as an overrun of p[1] would leave it): every walk fails with EIO within
 * the alarm, releases the lock, and the heap stays flagged. */
enum { ZEROED, PAST_END, HUGE, MISSTEP, BAD_CHECK, NDAMAGE };
static const char *damage_names[] = {"zeroed", "size past the end", "size 2^32-1", "size that lands inside a block",
                                     "bad check"};

static void damage_block(struct img *m, int i, int kind)
{
	uint64_t off = m->b[i], end = m->hd->heap_end;
	switch (kind) {
	case ZEROED: *w0(m, off) = 0, *w1(m, off) = 0; break;
	case PAST_END: *w0(m, off) = mk__rg_word0(off, (end - off) / 16 + 1, 1); break;
	case HUGE: *w0(m, off) = mk__rg_word0(off, UINT32_MAX, 1); break;
	case MISSTEP: *w0(m, off) = mk__rg_word0(off, 3, 1); break; /* the next "block" starts in the next one */
	case BAD_CHECK: *w0(m, off) ^= 1ull << 50; break;
	}
}

static void damage_header(struct img *m, int kind) { damage_block(m, 2, kind); }

struct walk_case {
	struct img *m;
	int kind;
	int which; /* 0 foreach, 1 reclaim_dead, 2 reclaim_owner, 3 all of them in turn */
};

static void walk_damaged(void *arg)
{
	struct walk_case *c = arg;
	struct img *m = c->m;
	mkr_heap *h = m->h;
	damage_header(m, c->kind);
	int n = 0;
	errno = 0;
	if (c->which == 0 || c->which == 3) {
		EIO_FROM(mkr_foreach(h, count_block, &n));
		CHECK(mkr_lock_holder(h) == 0);
	}
	if (c->which == 1 || c->which == 3) {
		EIO_FROM(mkr_reclaim_dead(h));
		CHECK(mkr_lock_holder(h) == 0);
	}
	if (c->which == 2 || c->which == 3) {
		EIO_FROM(mkr_reclaim_owner(h, getpid()));
		CHECK(mkr_lock_holder(h) == 0);
	}
	/* flagged: every later call says EIO, none hangs on a lock still held */
	CHECK(mkr_alloc(h, 10) == NULL && errno == EIO);
	EIO_FROM(mkr_free(h, pay(m, 0)));
	CHECK(mkr_realloc(h, pay(m, 0), 10) == NULL && errno == EIO);
	CHECK(mkr_usable_size(h, pay(m, 0)) == 0 && errno == EIO);
	CHECK(mkr_owner(h, pay(m, 0)) == 0 && errno == EIO);
	EIO_FROM(mkr_foreach(h, count_block, &n));
	EIO_FROM(mkr_reclaim_dead(h));
	EIO_FROM(mkr_reclaim_owner(h, getpid()));
	EIO_FROM(mkr_check(h));
	CHECK(mkr_lock_holder(h) == 0);
	GEOMETRY_INTACT(m);
	every_call(m);
}

static void test_walks_on_damaged_headers(void)
{
	for (int kind = 0; kind < NDAMAGE; kind++)
		for (int which = 0; which < 4; which++) {
			struct img m;
			REQUIRE(make_image(&m));
			struct walk_case c = {&m, kind, which};
			if (!in_child("walk_damaged", walk_damaged, &c)) {
				fprintf(stderr, "  (damage: %s, walk %d)\n", damage_names[kind], which);
				test_case_failed = 1;
			}
			drop_image(&m);
		}
}

/* The same damage met from the other side: a free next to the damaged header, an allocation that
 * reaches it. */
static void ops_next_to_damage(void *arg)
{
	struct walk_case *c = arg;
	struct img *m = c->m;
	damage_block(m, 4, c->kind); /* p[5]'s previous block */
	errno = 0;
	if (c->which == 0)
		EIO_FROM(mkr_free(m->h, pay(m, 5)));
	else
		CHECK(mkr_realloc(m->h, pay(m, 5), 20) == NULL && errno == EIO);
	CHECK(mkr_lock_holder(m->h) == 0);
	GEOMETRY_INTACT(m);
	every_call(m);
}

static void test_ops_next_to_damaged_header(void)
{
	for (int kind = 0; kind < NDAMAGE; kind++)
		for (int which = 0; which < 2; which++) {
			struct img m;
			REQUIRE(make_image(&m));
			struct walk_case c = {&m, kind, which};
			if (!in_child("ops_next_to_damage", ops_next_to_damage, &c)) {
				fprintf(stderr, "  (damage: %s, op %d)\n", damage_names[kind], which);
				test_case_failed = 1;
			}
			drop_image(&m);
		}
}

/* --- attach and open: damage is found before the heap is used ------------------------------------- */
/* mkr_attach on memory holding a damaged heap: a damaged block header is EIO at attach; damaged derived
 * state (bins, links, counters, bitmap) is rebuilt. */
static void attach_damaged(void *arg)
{
	struct walk_case *c = arg;
	struct img *m = c->m;
	mkr_close(m->h);
	m->h = NULL;
	if (c->which == 0) {
		damage_header(m, c->kind);
		errno = 0;
		CHECK(mkr_attach(m->mem, SIZE) == NULL && errno == EIO);
		GEOMETRY_INTACT(m);
		return;
	}
	size_t too_big = units(m, m->big) * 16;
	set_bin(m, bin_for(too_big / 16 + 1), m->b[1]); /* the forged head of defect 11 */
	*nextl(m, m->b[3]) = 1ull << 40;
	m->hd->used_blocks = 77;
	uint64_t *bits = (uint64_t *)(m->mem + m->hd->bitmap_off);
	bits[0] = ~0ull;
	m->h = mkr_attach(m->mem, SIZE);
	REQUIRE(m->h);
	CHECK_HEAP(m->h);
	errno = 0;
	CHECK(mkr_alloc(m->h, too_big) == NULL && errno == ENOMEM);
	CHECK(mkr_alloc(m->h, 16) == pay(m, 3));
	CHECK_HEAP(m->h);
	GEOMETRY_INTACT(m);
	every_call(m);
}

static void test_attach_damaged(void)
{
	for (int kind = 0; kind < NDAMAGE; kind++)
		for (int which = 0; which < 2; which++) {
			if (which == 1 && kind > 0)
				continue;
			struct img m;
			REQUIRE(make_image(&m));
			struct walk_case c = {&m, kind, which};
			if (!in_child("attach_damaged", attach_damaged, &c)) {
				fprintf(stderr, "  (damage: %s, %s)\n", damage_names[kind], which ? "derived state" : "header");
				test_case_failed = 1;
			}
			drop_image(&m);
		}
}

/* A heap file with the same damage, opened alone (rebuilt on open) and while another process has it open
 * (which used to take the file as it was). */
static int write_file(const char *path, struct img *m)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	int ok = pwrite(fd, m->mem, SIZE, 0) == (ssize_t)SIZE;
	close(fd);
	return ok;
}

struct open_case {
	const char *path;
	int header_damage; /* a kind of damage_header, or -1 for damaged derived state */
	int others;        /* another process holds the file open */
};

static void open_damaged(void *arg)
{
	struct open_case *c = arg;
	struct img m;
	REQUIRE(make_image(&m));
	mkr_heap *mine = mkr_open_file(c->path, MKR_CREATE | MKR_EXCL, SIZE, 0600);
	REQUIRE(mine);
	mkr_close(mine);
	int ready[2], hold[2];
	REQUIRE(pipe(ready) == 0 && pipe(hold) == 0);
	pid_t other = -1;
	if (c->others) {
		other = fork();
		if (other == 0) {
			close(hold[1]);
			close(ready[0]);
			mkr_heap *h = mkr_open_file(c->path, 0, 0, 0);
			char x = h ? 'y' : 'n';
			CHECK(write(ready[1], &x, 1) == 1);
			CHECK(read(hold[0], &x, 1) >= 0); /* until the parent closes its end */
			_exit(0);
		}
		char x = 0;
		REQUIRE(read(ready[0], &x, 1) == 1 && x == 'y');
	}
	/* the other process has the file's shared flock; now the bytes go bad under it */
	if (c->header_damage >= 0) {
		damage_header(&m, c->header_damage);
	} else {
		set_bin(&m, bin_for(units(&m, m.big) + 1), m.b[1]);
		*prevl(&m, m.b[1]) = UINT64_MAX - 7;
		m.hd->free_units = 3;
	}
	REQUIRE(write_file(c->path, &m));
	errno = 0;
	mkr_heap *h = mkr_open_file(c->path, 0, 0, 0);
	if (c->header_damage >= 0) {
		CHECK(h == NULL && errno == EIO);
		CHECK(strstr(mkr_last_error(), "damaged") != NULL);
	} else {
		REQUIRE(h);
		CHECK_HEAP(h);
		errno = 0;
		CHECK(mkr_alloc(h, units(&m, m.big) * 16) == NULL && errno == ENOMEM);
		CHECK(mkr_alloc(h, 32) != NULL);
		CHECK_HEAP(h);
	}
	mkr_close(h);
	close(hold[1]);
	if (other > 0)
		waitpid(other, NULL, 0);
	close(hold[0]);
	close(ready[0]);
	close(ready[1]);
	drop_image(&m);
}

static void test_open_damaged_file(void)
{
	for (int others = 0; others < 2; others++)
		for (int d = -1; d < NDAMAGE; d++) {
			struct open_case c = {scratch_path("damage"), d, others};
			unlink(c.path);
			if (!in_child("open_damaged", open_damaged, &c)) {
				fprintf(stderr, "  (%s, %s)\n", d < 0 ? "derived state" : damage_names[d],
				        others ? "another process has it open" : "alone");
				test_case_failed = 1;
			}
			unlink(c.path);
		}
}

/* --- anything at all: random words overwritten --------------------------------------------------- */
/* Words after the header's geometry (the lock excepted: a live lock is shared with the other users and
 * trusted) and across the bitmap and blocks overwritten with random, small, boundary and "almost right"
 * values, then every call, through the live handle and through mkr_attach. */
static void random_damage(void *arg)
{
	uint64_t seed = *(uint64_t *)arg;
	for (int round = 0; round < 40; round++) {
		struct img m;
		REQUIRE(make_image(&m));
		uint64_t lock_end = offsetof(struct rg_header, lock_holder);
		for (int k = 0, n = 1 + (int)(rnd(&seed) % 6); k < n; k++) {
			uint64_t at = (rnd(&seed) % (m.hd->heap_end / 8)) * 8;
			if (at < lock_end)
				at = lock_end + at % 64 * 8;
			uint64_t v, r = rnd(&seed);
			switch (r % 6) {
			case 0: v = rnd(&seed); break;
			case 1: v = rnd(&seed) % SIZE; break;
			case 2: v = m.b[rnd(&seed) % 6] + (rnd(&seed) % 3) * 8; break;
			case 3: v = 0; break;
			case 4: v = UINT64_MAX - rnd(&seed) % 32; break;
			default: v = mk__rg_word0(at, rnd(&seed) % 8 ? rnd(&seed) % 64 : UINT32_MAX, (int)(r >> 8 & 1));
			}
			*(uint64_t *)(m.mem + at) = v;
		}
		every_call(&m);
		if (round % 2) {
			mkr_close(m.h);
			m.h = mkr_attach(m.mem, SIZE);
			if (m.h)
				every_call(&m);
			else
				CHECK(errno == EIO);
		}
		GEOMETRY_INTACT(&m);
		drop_image(&m);
	}
}

static void test_random_damage(void)
{
	for (uint64_t s = 1; s <= 25; s++) {
		uint64_t seed = s * 0x9e3779b97f4a7c15ull;
		if (!in_child("random_damage", random_damage, &seed)) {
			fprintf(stderr, "  (seed %" PRIu64 ")\n", s);
			test_case_failed = 1;
		}
	}
}

/* --- a header changing under the opener --------------------------------------------------------- */
/* Another thread (as another process could) flips heap_off between its true value and one 1 MiB past it,
 * in the guard, while this one attaches over and over: the geometry checked must be the one used (it was
 * once read a second time from the header, and the rebuild then cleared memory up to the forged offset). */
static volatile uint64_t *flipped;
static uint64_t flip_good, flip_evil;
static volatile int flip_stop;
static void *flipper(void *arg)
{
	(void)arg;
	while (!flip_stop) {
		*flipped = flip_evil;
		*flipped = flip_good;
	}
	return NULL;
}

static void attach_while_flipped(void *arg)
{
	char *r = arg;
	struct rg_header *hd = (struct rg_header *)r;
	flipped = &hd->heap_off;
	flip_good = hd->heap_off;
	flip_evil = flip_good + (1u << 20);
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	long attached = 0;
	for (int i = 0; i < 200000; i++) {
		mkr_heap *x = mkr_attach(r, SIZE);
		if (x) {
			CHECK(x->heap_off == flip_good);
			attached++;
			mkr_close(x);
		}
	}
	flip_stop = 1;
	pthread_join(t, NULL);
	CHECK(attached > 0);
}

static void test_header_changing_under_attach(void)
{
	char *r = guarded(SIZE);
	REQUIRE(r);
	mkr_heap *h = mkr_create_in(r, SIZE);
	REQUIRE(h);
	CHECK(mkr_alloc(h, 100) != NULL);
	mkr_close(h);
	CHILD(attach_while_flipped, r);
	unguard(r, SIZE);
}

static void cases(void)
{
	RUN(test_forged_bin_head);
	RUN(test_bad_links);
	RUN(test_bad_derived_state);
	RUN(test_walks_on_damaged_headers);
	RUN(test_ops_next_to_damaged_header);
	RUN(test_attach_damaged);
	RUN(test_open_damaged_file);
	RUN(test_random_damage);
	RUN(test_header_changing_under_attach);
}

int main(void) { return test_main(cases); }
