/* mem-tester: drives slabfit (build/libmem.so) through three workloads and checks it after every step.
 *
 *   mem-tester HEAP_SIZE SLAB_SIZE [--threads N] [--ops N] [--seed N] [--svg FILE]
 *
 * Sizes take a k or m suffix.  Workloads, in order, on the one heap Mem_Init makes:
 *   scripted   fills the slab and spills into next fit, frees every other block, refills, frees all;
 *   random     N threads (default 8) allocate and free at random, slab-sized requests among them;
 *   fragment   leaves next fit full of holes (drawn with --svg), then frees everything.
 * Checks: no two live blocks overlap (a shared interval table), every address is 16-byte aligned and in
 * the part it should be, every written byte is intact when verified, Mem_Check() passes, and once all is
 * freed the slab is empty and next fit is one free block again.  Prints "PASS name" or "FAIL name" per
 * workload; exit status 1 when any failed. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "../../tools/heapsvg.h"

static int slab_size;
static struct mem_stats layout;
static _Atomic int failures;

__attribute__((format(printf, 1, 2))) static void FAIL(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mem-tester: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	failures++;
}

/* ---- live blocks: a table sorted by address, shared by all threads ---- */

struct live { char *p; size_t size; uint32_t tag; };

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct live *table;
static size_t table_len, table_cap;

static size_t table_find(const char *p) /* first entry with address >= p */
{
	size_t lo = 0, hi = table_len;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (table[mid].p < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Records a new block; fails when it overlaps a live one. */
static int table_add(char *p, size_t size, uint32_t tag)
{
	pthread_mutex_lock(&table_lock);
	size_t i = table_find(p);
	int ok = (i == 0 || table[i - 1].p + table[i - 1].size <= p) && (i == table_len || p + size <= table[i].p);
	if (!ok) {
		FAIL("block %p+%zu overlaps a live block", (void *)p, size);
	} else {
		if (table_len == table_cap) {
			table_cap = table_cap ? 2 * table_cap : 1024;
			table = realloc(table, table_cap * sizeof *table);
			if (!table) {
				perror("mem-tester");
				exit(2);
			}
		}
		memmove(&table[i + 1], &table[i], (table_len - i) * sizeof *table);
		table[i] = (struct live){p, size, tag};
		table_len++;
	}
	pthread_mutex_unlock(&table_lock);
	return ok;
}

static void table_remove(char *p)
{
	pthread_mutex_lock(&table_lock);
	size_t i = table_find(p);
	if (i < table_len && table[i].p == p) {
		memmove(&table[i], &table[i + 1], (table_len - i - 1) * sizeof *table);
		table_len--;
	} else {
		FAIL("freeing %p, which the table does not hold", (void *)p);
	}
	pthread_mutex_unlock(&table_lock);
}

/* ---- blocks with a fill pattern ---- */

static void fill(char *p, size_t n, uint32_t tag)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(tag + i * 7);
}

static int intact(const char *p, size_t n, uint32_t tag)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (char)(tag + i * 7)) {
			FAIL("block %p byte %zu changed", (const void *)p, i);
			return 0;
		}
	return 1;
}

static int in_slab(const char *p) { return p >= layout.slab_start && p < layout.slab_start + layout.slab_slots * layout.slab_slot_size; }
static int in_nf(const char *p) { return p >= layout.nf_start && p < layout.nf_end; }

/* Allocates, checks placement and alignment, fills and records; NULL when the heap had no room. */
static char *get(int size, uint32_t tag)
{
	char *p = Mem_Alloc(size);
	if (!p) {
		if (errno != ENOMEM)
			FAIL("Mem_Alloc(%d) failed with errno %d, not ENOMEM", size, errno);
		return NULL;
	}
	if ((uintptr_t)p % 16)
		FAIL("Mem_Alloc(%d) = %p is not 16-byte aligned", size, (void *)p);
	if (!(in_nf(p) && p + size <= layout.nf_end) && !(size == slab_size && in_slab(p)))
		FAIL("Mem_Alloc(%d) = %p lies in neither part it may come from", size, (void *)p);
	fill(p, (size_t)size, tag);
	table_add(p, (size_t)size, tag);
	return p;
}

static void put(char *p, int size, uint32_t tag)
{
	intact(p, (size_t)size, tag);
	table_remove(p);
	if (Mem_Free(p) != 0)
		FAIL("Mem_Free(%p) refused a live block", (void *)p);
}

static void verify_all(void)
{
	pthread_mutex_lock(&table_lock);
	for (size_t i = 0; i < table_len; i++)
		intact(table[i].p, table[i].size, table[i].tag);
	pthread_mutex_unlock(&table_lock);
	if (Mem_Check() != 0)
		FAIL("Mem_Check found broken invariants");
}

static void expect_empty(const char *when)
{
	struct mem_stats s;
	Mem_Stats(&s);
	if (s.slab_used != 0 || s.nf_free_blocks != 1 || s.nf_used_blocks != 0 ||
	    s.nf_free_bytes != (size_t)(s.nf_end - s.nf_start))
		FAIL("%s: slab %zu used, next fit %zu free blocks, %zu used; not one block again", when,
		     s.slab_used, s.nf_free_blocks, s.nf_used_blocks);
	if (Mem_Check() != 0)
		FAIL("%s: Mem_Check found broken invariants", when);
}

static void report(const char *name, int before)
{
	printf("%s %s\n", failures == before ? "PASS" : "FAIL", name);
	fflush(stdout);
}

/* ---- workloads ---- */

static uint64_t rng_next(uint64_t *s) /* xorshift64* */
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void scripted(void)
{
	int before = failures;
	size_t n = layout.slab_slots + 4, m = 64;
	char **slots = calloc(n, sizeof *slots), *blocks[64];
	int sizes[64];
	/* The slab fills up in slot order, then slab-sized requests spill into next fit. */
	for (size_t i = 0; i < n; i++) {
		slots[i] = get(slab_size, (uint32_t)i);
		if (slots[i] && (i < layout.slab_slots) != in_slab(slots[i]))
			FAIL("slab request %zu landed in the %s", i, in_slab(slots[i]) ? "slab" : "next-fit part");
		verify_all();
	}
	/* Mixed sizes in next fit; free every other; refill the holes; free all. */
	for (size_t i = 0; i < m; i++) {
		sizes[i] = 1 + (int)((i * 97) % 700);
		blocks[i] = get(sizes[i], (uint32_t)(1000 + i));
		verify_all();
	}
	for (size_t i = 0; i < m; i += 2) {
		if (blocks[i])
			put(blocks[i], sizes[i], (uint32_t)(1000 + i));
		blocks[i] = NULL;
		verify_all();
	}
	for (size_t i = 0; i < m; i += 2) {
		sizes[i] = 1 + (int)((i * 31) % 300);
		blocks[i] = get(sizes[i], (uint32_t)(2000 + i));
		verify_all();
	}
	for (size_t i = 0; i < n; i++)
		if (slots[i]) {
			put(slots[i], slab_size, (uint32_t)i);
			verify_all();
		}
	for (size_t i = 0; i < m; i++)
		if (blocks[i]) {
			put(blocks[i], sizes[i], (uint32_t)((i % 2 ? 1000 : 2000) + i));
			verify_all();
		}
	free(slots);
	expect_empty("scripted");
	report("scripted", before);
}

struct worker { int id; long ops; uint64_t seed; int max_size; };

static void *random_worker(void *arg)
{
	struct worker *w = arg;
	enum { LIVE = 128 };
	struct { char *p; int size; uint32_t tag; } live[LIVE] = {{0}};
	uint64_t s = w->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(w->id + 1));
	for (long op = 0; op < w->ops; op++) {
		uint64_t r = rng_next(&s);
		int k = (int)(r % LIVE);
		if (live[k].p) {
			put(live[k].p, live[k].size, live[k].tag);
			live[k].p = NULL;
		} else {
			int size = (r >> 32) % 4 == 0 ? slab_size : 1 + (int)((r >> 40) % (uint64_t)w->max_size);
			uint32_t tag = (uint32_t)(w->id << 24) ^ (uint32_t)op;
			live[k].p = get(size, tag);
			live[k].size = size;
			live[k].tag = tag;
		}
		if (op % 512 == 0)
			verify_all();
	}
	for (int k = 0; k < LIVE; k++)
		if (live[k].p)
			put(live[k].p, live[k].size, live[k].tag);
	return NULL;
}

static void random_mt(int threads, long ops, uint64_t seed)
{
	int before = failures;
	pthread_t t[64];
	struct worker w[64];
	/* Sizes up to 1/(4 * threads * LIVE) of next fit on average, so the heap is busy but rarely full. */
	int max = (int)((layout.nf_end - layout.nf_start) / (threads * 128));
	max = max < 16 ? 16 : max > 4096 ? 4096 : max;
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){i, ops, seed, max};
		pthread_create(&t[i], NULL, random_worker, &w[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	expect_empty("random");
	char name[96];
	snprintf(name, sizeof name, "random (%d threads, %ld ops each, sizes 1..%d and %d)", threads, ops, max, slab_size);
	report(name, before);
}

/* ---- the fragmenting workload and its picture ---- */

struct spans { struct heapsvg_span *v; size_t n, cap; };

static void collect(void *arg, enum mem_span kind, size_t offset, size_t length)
{
	struct spans *s = arg;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->v = realloc(s->v, s->cap * sizeof *s->v);
		if (!s->v) {
			perror("mem-tester");
			exit(2);
		}
	}
	s->v[s->n++] = (struct heapsvg_span){(int)kind, offset, length};
}

static void draw(const char *path)
{
	static const struct heapsvg_kind kinds[] = {
		[MEM_SPAN_META] = {"bookkeeping (bitmaps)", "#9e9e9e"},
		[MEM_SPAN_SLOT_USED] = {"slab slot, used", "#1f77b4"},
		[MEM_SPAN_SLOT_FREE] = {"slab slot, free", "#c6dbef"},
		[MEM_SPAN_HEADER] = {"next-fit header (16 B)", "#d62728"},
		[MEM_SPAN_USED] = {"next fit, used", "#ff7f0e"},
		[MEM_SPAN_FREE] = {"next fit, free", "#fdd0a2"},
	};
	struct spans s = {0};
	struct mem_stats st;
	Mem_Walk(collect, &s);
	Mem_Stats(&st);
	struct heapsvg_mark marks[2] = {{(size_t)(layout.nf_start - layout.region), "next fit"}};
	size_t nmarks = 1;
	if (st.nf_rover)
		marks[nmarks++] = (struct heapsvg_mark){(size_t)(st.nf_rover - st.region), "rover"};
	char title[160], n1[200], n2[200];
	snprintf(title, sizeof title, "slabfit after a fragmenting workload: %zu KiB region, slab slots of %zu bytes",
	         st.region_size / 1024, st.slab_slot_size);
	snprintf(n1, sizeof n1, "slab: %zu of %zu slots used;  next fit: %zu used blocks, %zu free blocks",
	         st.slab_used, st.slab_slots, st.nf_used_blocks, st.nf_free_blocks);
	snprintf(n2, sizeof n2, "free next-fit bytes %zu, largest free block %zu (%.0f%% of the free bytes)",
	         st.nf_free_bytes, st.nf_largest_free, st.nf_free_bytes ? 100.0 * (double)st.nf_largest_free / (double)st.nf_free_bytes : 0.0);
	struct heapsvg h = {.title = title, .notes = {n1, n2, "each row is 1/16 of the region, addresses grow left to right, top to bottom"},
	                    .total = st.region_size, .rows = 16, .kinds = kinds, .nkinds = 6,
	                    .spans = s.v, .nspans = s.n, .marks = marks, .nmarks = nmarks};
	if (heapsvg_write(&h, path) != 0)
		FAIL("cannot write %s: %s", path, strerror(errno));
	else
		printf("# wrote %s: %s; %s\n", path, n1, n2);
	free(s.v);
}

static void fragment(const char *svg, uint64_t seed)
{
	int before = failures;
	enum { MAX = 4096 };
	static struct { char *p; int size; } b[MAX];
	size_t nb = 0, target = (size_t)(layout.nf_end - layout.nf_start) * 7 / 10, used = 0;
	uint64_t s = seed | 1;
	/* Fill 70% of next fit with blocks of 16..1040 bytes and half the slab. */
	while (nb < MAX && used < target) {
		int size = 16 + (int)(rng_next(&s) % 1025);
		if (!(b[nb].p = get(size, (uint32_t)nb)))
			break;
		b[nb].size = size;
		used += (size_t)size + 16;
		nb++;
	}
	size_t ns = nb;
	for (size_t i = 0; i < layout.slab_slots / 2 && nb < MAX; i++, nb++) {
		b[nb].p = get(slab_size, (uint32_t)nb);
		b[nb].size = slab_size;
	}
	verify_all();
	/* Free two blocks in three at random, then allocate mid-sized blocks: the rover moves on through
	 * the holes it can use and leaves the small ones behind. */
	for (size_t i = 0; i < nb; i++)
		if (b[i].p && rng_next(&s) % 3 != 0) {
			put(b[i].p, b[i].size, (uint32_t)i);
			b[i].p = NULL;
		}
	verify_all();
	for (size_t i = 0; i < ns && i < 200; i++) {
		if (b[i].p)
			continue;
		int size = 200 + (int)(rng_next(&s) % 400);
		if ((b[i].p = get(size, (uint32_t)i)))
			b[i].size = size;
	}
	verify_all();
	if (svg)
		draw(svg);
	for (size_t i = 0; i < nb; i++)
		if (b[i].p)
			put(b[i].p, b[i].size, (uint32_t)i);
	expect_empty("fragment");
	report("fragment", before);
}

static long parse_size(const char *s)
{
	char *end;
	long v = strtol(s, &end, 0);
	if (*end == 'k' || *end == 'K')
		v *= 1024, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024, end++;
	return *end || v <= 0 || v > 0x7fffffff ? -1 : v;
}

int main(int argc, char **argv)
{
	const char *svg = NULL;
	int threads = 8;
	long ops = 20000;
	uint64_t seed = 1;
	if (argc < 3)
		goto usage;
	long heap = parse_size(argv[1]), slab = parse_size(argv[2]);
	if (heap < 0 || slab < 0)
		goto usage;
	for (int i = 3; i < argc; i++) {
		if (i + 1 >= argc)
			goto usage;
		if (!strcmp(argv[i], "--svg"))
			svg = argv[++i];
		else if (!strcmp(argv[i], "--threads"))
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ops"))
			ops = atol(argv[++i]);
		else if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[++i], NULL, 0);
		else
			goto usage;
	}
	if (threads < 1 || threads > 64 || ops < 0)
		goto usage;
	slab_size = (int)slab;
	if (!Mem_Init((int)heap, slab_size)) {
		fprintf(stderr, "mem-tester: Mem_Init(%ld, %ld): %s\n", heap, slab, strerror(errno));
		return 2;
	}
	Mem_Stats(&layout);
	printf("# region %zu bytes: slab %zu slots of %zu, next fit %zu bytes\n", layout.region_size,
	       layout.slab_slots, layout.slab_slot_size, (size_t)(layout.nf_end - layout.nf_start));
	printf("PLAN 3\n"); /* the workloads below, one PASS/FAIL line each */
	fflush(stdout);
	scripted();
	random_mt(threads, ops, seed);
	fragment(svg, seed);
	return failures ? 1 : 0;
usage:
	fprintf(stderr, "usage: mem-tester HEAP_SIZE SLAB_SIZE [--threads N] [--ops N] [--seed N] [--svg FILE]\n");
	return 2;
}
