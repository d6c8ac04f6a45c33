/* fragment-compare: one fragmenting workload through slabfit's next fit and the sbrk allocator's first
 * fit, the figures side by side, and optionally both heaps drawn in the same style.
 *
 *   fragment-compare [--svg-prefix PATH]     (writes PATH-slabfit.svg and PATH-sbrk.svg)
 *
 * The workload is mem-tester's "fragment": blocks of 16..1040 bytes up to 70% of slabfit's next-fit heap,
 * two in three freed at random, then 200 blocks of 200..600 bytes.  slabfit's slab is given a size the
 * workload never asks for, so only next fit is measured.  Both allocators run it with the same sizes in
 * the same order; each one's check() runs after every phase (the PASS/FAIL lines).  This program calls no
 * malloc of its own (static arrays, a static stdout buffer), so the sbrk heap holds the workload only. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "classic/sbrk.h"
#include "../../tools/heapsvg.h"

enum { REGION = 256 * 1024, SLAB = 4000, MAXB = 4096, REFILL = 200 };

struct figures { size_t heap, used_blocks, free_blocks, free_bytes, largest, failed; };

struct allocator {
	const char *name;
	void *(*alloc)(size_t);
	void (*release)(void *);
	int (*check)(void);
	void (*measure)(struct figures *);
};

static void *nf_alloc(size_t n) { return Mem_Alloc((int)n); }
static void nf_release(void *p) { Mem_Free(p); }
static void nf_measure(struct figures *f)
{
	struct mem_stats s;
	Mem_Stats(&s);
	*f = (struct figures){(size_t)(s.nf_end - s.nf_start), s.nf_used_blocks, s.nf_free_blocks, s.nf_free_bytes,
	                      s.nf_largest_free, f->failed};
}

static void sbrk_largest(void *arg, uintptr_t block, size_t size, int kind)
{
	(void)block;
	size_t *largest = arg;
	if (kind == MK_SBRK_FREE && size > *largest)
		*largest = size;
}
static void sbrk_measure(struct figures *f)
{
	struct mk_sbrk_counters c;
	mk__sbrk_counters(&c);
	size_t largest = 0;
	mk__sbrk_walk(sbrk_largest, &largest);
	*f = (struct figures){(size_t)(c.heap_end - c.heap_start), c.used_blocks, c.free_blocks, c.free_bytes,
	                      largest, f->failed};
}

static const struct allocator allocators[] = {
	{"slabfit next fit", nf_alloc, nf_release, Mem_Check, nf_measure},
	{"sbrk first fit", mymalloc, myfree, mk__sbrk_check, sbrk_measure},
};

static uint64_t rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void *blocks[MAXB];
static int failures;

enum { PHASES = 3 }; /* phase_ok calls in run() */

static void phase_ok(const struct allocator *a, const char *phase)
{
	int ok = a->check() == 0;
	printf("%s %s: checks hold after %s\n", ok ? "PASS" : "FAIL", a->name, phase);
	failures += !ok;
}

static void run(const struct allocator *a, size_t budget, struct figures *f)
{
	uint64_t s = 1;
	size_t n = 0, used = 0;
	memset(f, 0, sizeof *f);
	while (n < MAXB && used < budget) {
		size_t size = 16 + rng(&s) % 1025;
		if (!(blocks[n] = a->alloc(size)))
			f->failed++;
		used += size + 16;
		n++;
	}
	phase_ok(a, "filling");
	for (size_t i = 0; i < n; i++)
		if (rng(&s) % 3 != 0) {
			a->release(blocks[i]);
			blocks[i] = NULL;
		}
	phase_ok(a, "freeing two in three");
	for (size_t i = 0, k = 0; i < n && k < REFILL; i++) {
		if (blocks[i])
			continue;
		if (!(blocks[i] = a->alloc(200 + rng(&s) % 401)))
			f->failed++;
		k++;
	}
	phase_ok(a, "refilling");
	a->measure(f);
}

struct spans { struct heapsvg_span v[3 * MAXB + 16]; size_t n; uintptr_t base; };

static void sbrk_span(void *arg, uintptr_t block, size_t size, int kind)
{
	struct spans *sp = arg;
	if (sp->n + 2 > sizeof sp->v / sizeof *sp->v)
		return;
	sp->v[sp->n++] = (struct heapsvg_span){MEM_SPAN_HEADER, block - sp->base, MK_SBRK_HEADER};
	sp->v[sp->n++] = (struct heapsvg_span){kind == MK_SBRK_FREE ? MEM_SPAN_FREE : kind == MK_SBRK_USED ? MEM_SPAN_USED : MEM_SPAN_META,
	                                        block - sp->base + MK_SBRK_HEADER, size - MK_SBRK_HEADER};
}

static void nf_span(void *arg, enum mem_span kind, size_t offset, size_t length)
{
	struct spans *sp = arg;
	if (kind == MEM_SPAN_HEADER || kind == MEM_SPAN_USED || kind == MEM_SPAN_FREE)
		if (sp->n < sizeof sp->v / sizeof *sp->v)
			sp->v[sp->n++] = (struct heapsvg_span){(int)kind, offset - sp->base, length};
}

static struct spans spans;

static void draw(const char *path, const char *title, const struct figures *f)
{
	static const struct heapsvg_kind shown[] = {{"header", "#d62728"}, {"used", "#ff7f0e"}, {"free", "#fdd0a2"}};
	/* Remap the kinds onto the three that the legend shows. */
	for (size_t i = 0; i < spans.n; i++)
		spans.v[i].kind = spans.v[i].kind == MEM_SPAN_HEADER ? 0 : spans.v[i].kind == MEM_SPAN_USED ? 1 : 2;
	char n1[160];
	snprintf(n1, sizeof n1, "%zu bytes: %zu used blocks, %zu free blocks, %zu free bytes, largest free block %zu",
	         f->heap, f->used_blocks, f->free_blocks, f->free_bytes, f->largest);
	struct heapsvg h = {.title = title, .notes = {n1, "each row is 1/16 of the heap"}, .total = f->heap, .rows = 16,
	                    .kinds = shown, .nkinds = 3, .spans = spans.v, .nspans = spans.n};
	if (heapsvg_write(&h, path) != 0) {
		fprintf(stderr, "fragment-compare: %s: %s\n", path, strerror(errno));
		failures++;
	}
}

int main(int argc, char **argv)
{
	static char outbuf[1 << 14];
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	const char *prefix = argc == 3 && !strcmp(argv[1], "--svg-prefix") ? argv[2] : NULL;
	if (argc != 1 && !prefix) {
		fprintf(stderr, "usage: fragment-compare [--svg-prefix PATH]\n");
		return 2;
	}
	if (!Mem_Init(REGION, SLAB)) {
		perror("fragment-compare: Mem_Init");
		return 2;
	}
	struct mem_stats st;
	Mem_Stats(&st);
	size_t budget = (size_t)(st.nf_end - st.nf_start) * 7 / 10;
	struct figures f[2];
	char path[4096], title[200];
	printf("PLAN %d\n", PHASES * 2); /* run-all.sh: the PASS/FAIL lines phase_ok prints */
	for (int i = 0; i < 2; i++) {
		run(&allocators[i], budget, &f[i]);
		if (prefix) {
			spans.n = 0;
			if (i == 0) {
				spans.base = (uintptr_t)(st.nf_start - st.region);
				Mem_Walk(nf_span, &spans);
			} else {
				struct mk_sbrk_counters c;
				mk__sbrk_counters(&c);
				spans.base = c.heap_start;
				mk__sbrk_walk(sbrk_span, &spans);
			}
			snprintf(path, sizeof path, "%s-%s.svg", prefix, i == 0 ? "slabfit" : "sbrk");
			snprintf(title, sizeof title, "%s after the fragmenting workload", allocators[i].name);
			draw(path, title, &f[i]);
		}
	}
	printf("# same workload (%zu bytes of requests, then two in three freed, then %d refills)\n", budget, REFILL);
	printf("# %-18s %8s %6s %6s %8s %8s %6s\n", "allocator", "heap", "used", "free", "freebytes", "largest", "failed");
	for (int i = 0; i < 2; i++)
		printf("# %-18s %8zu %6zu %6zu %8zu %8zu %6zu\n", allocators[i].name, f[i].heap, f[i].used_blocks,
		       f[i].free_blocks, f[i].free_bytes, f[i].largest, f[i].failed);
	return failures ? 1 : 0;
}
