/* The profiler's own stack walker (x86-64): the unwind tables every object carries (.eh_frame, found
 * through .eh_frame_hdr's sorted table), read directly, with what each return address needs cached.
 *
 * Why not glibc's backtrace(): it goes through libgcc_s's unwinder, which decodes every frame's call-frame
 * program again on every call, about 1.5 thousand instructions a frame (16,000 per sample in the xthread
 * workload, where samples fall every few microseconds: half the profiler's cost), and whose first call
 * dlopens libgcc_s (allocating, and at every program's start).  Why not frame pointers: Debian builds
 * without them, so a walk of rbp links loses frames or follows a register used for data.
 *
 * What a frame needs, on x86-64, is three numbers: where its CFA (the caller's stack pointer) is, rsp or
 * rbp plus an offset; where the return address is (CFA - 8 in every ABI-conforming frame); where the
 * caller's rbp was saved, if it was.  They depend on the code address alone, so a table keyed by return
 * address holds them once decoded: a sample then costs a hash probe and two loads per frame.  A frame
 * whose rule is anything else (a DWARF expression: signal trampolines, realigned stacks), a code address
 * no object claims, or a return address marked undefined (the outermost frames, _start and clone) ends
 * the walk there: a shorter stack, never a wrong one.
 *
 * Entries are written once and never changed (a slot holds 0, BUSY while its writer fills it, or its
 * address, published with release after the rule): readers need no lock.  Every frame's address is
 * looked up with _dl_find_object (lock-free, safe in a forked child), which names the object that holds
 * the code now: a rule is used only for the object it was decoded from, so an object unloaded by dlclose
 * leaves no rule behind for one loaded at its addresses.  (dl_iterate_phdr, which counts unloads, takes
 * a loader lock that a fork can leave held in the child: tests/prof/sites.c's fork case hung on it.)
 *
 * Every read of the stack is of a slot a frame below the caller's own CFA, which the rules put in
 * increasing order (each CFA above the last: the walk stops otherwise), and every read of the tables is
 * within the object _dl_find_object names.  Allocates nothing (the table is one mapping, made by the
 * first walk) and takes no lock. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>

#include "os/os.h"
#include "prof/prof.h"

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))

/* A decoded rule, packed in a word: bit 0 set (so that a rule is never 0), bit 1 the walk ends here,
 * bit 2 the CFA is rbp + offset (else rsp), bit 3 the caller's rbp is saved, bits 8-23 where (CFA minus
 * this), bits 32-63 the CFA's offset. */
#define RULE_SET   1ull
#define RULE_END   2ull
#define RULE_RBP   4ull
#define RULE_SAVED 8ull
#define RULE_STOP  (RULE_SET | RULE_END)

/* owner: the object's link map and start, as _dl_find_object gives them, so that a rule is not used for
 * the code of another object loaded where an unloaded one was (unless both come back at one address
 * with one link map, as the same library reloaded does: then the rules are its own again). */
typedef struct cache_slot { _Atomic uint64_t pc; uint64_t owner, rule, pad_; } cache_slot;

#define CACHE_SLOTS 4096                /* 128 KiB, touched as used */
#define CACHE_PROBES 8
#define SLOT_BUSY 1ull

static _Atomic(cache_slot *) cache;
static _Atomic int cache_made;

/* ---- reading the tables ---- */

typedef struct reader { const uint8_t *p, *end; bool bad; } reader;

static uint64_t uleb(reader *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; r->p < r->end && shift < 64; shift += 7) {
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

static int64_t sleb(reader *r)
{
	int64_t v = 0;
	unsigned shift = 0;
	while (r->p < r->end && shift < 64) {
		uint8_t b = *r->p++;
		v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
		shift += 7;
		if (!(b & 0x80)) {
			if (shift < 64 && (b & 0x40))
				v |= -((int64_t)1 << shift);
			return v;
		}
	}
	r->bad = true;
	return 0;
}

static uint64_t fixed(reader *r, unsigned n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	memcpy(&v, r->p, n);
	r->p += n;
	return v;
}

/* A pointer in DW_EH_PE encoding enc; datarel is relative to base (the .eh_frame_hdr). */
static uintptr_t encoded(reader *r, uint8_t enc, uintptr_t base)
{
	uintptr_t at = (uintptr_t)r->p, v;
	switch (enc & 0x0f) {
	case 0x00: v = (uintptr_t)fixed(r, 8); break;
	case 0x01: v = (uintptr_t)uleb(r); break;
	case 0x02: v = (uintptr_t)fixed(r, 2); break;
	case 0x03: v = (uintptr_t)fixed(r, 4); break;
	case 0x04: v = (uintptr_t)fixed(r, 8); break;
	case 0x09: v = (uintptr_t)sleb(r); break;
	case 0x0a: v = (uintptr_t)(int64_t)(int16_t)fixed(r, 2); break;
	case 0x0b: v = (uintptr_t)(int64_t)(int32_t)fixed(r, 4); break;
	case 0x0c: v = (uintptr_t)fixed(r, 8); break;
	default: r->bad = true; return 0;
	}
	switch (enc & 0x70) {
	case 0x00: break;
	case 0x10: v += at; break;
	case 0x30: v += base; break;
	default: r->bad = true; return 0;
	}
	if (enc & 0x80)   /* indirect: not used for code addresses in .eh_frame */
		r->bad = true;
	return v;
}

/* ---- the call-frame program ---- */

typedef struct row { uint8_t cfa_reg; int64_t cfa_off; uint8_t rbp_kind, ra_kind; int64_t rbp_off, ra_off; } row;
enum { SAME, AT_OFFSET, UNDEFINED, OTHER };
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

static void set_rule(row *w, uint64_t reg, uint8_t kind, int64_t off)
{
	if (reg == REG_RBP)
		w->rbp_kind = kind, w->rbp_off = off;
	else if (reg == REG_RA)
		w->ra_kind = kind, w->ra_off = off;
}

/* Runs the instructions in r on w until the location passes target; false when one is not understood. */
static bool run_cfa(reader *r, row *w, const row *initial, uintptr_t loc, uintptr_t target, uint64_t code_align,
                    int64_t data_align, uint8_t fde_enc, uintptr_t base)
{
	row saved[4];
	int nsaved = 0;
	while (r->p < r->end && !r->bad) {
		uint8_t op = *r->p++, low = op & 0x3f;
		uint64_t reg, delta = 0;
		switch (op >> 6) {
		case 1: delta = low; goto advance;
		case 2: set_rule(w, low, AT_OFFSET, (int64_t)uleb(r) * data_align); continue;
		case 3: set_rule(w, low, low == REG_RBP ? initial->rbp_kind : initial->ra_kind,
		                 low == REG_RBP ? initial->rbp_off : initial->ra_off); continue;
		}
		switch (op) {
		case 0x00: break;                                              /* nop */
		case 0x01: loc = encoded(r, fde_enc, base); if (loc > target) return true; break;   /* set_loc */
		case 0x02: delta = fixed(r, 1); goto advance;
		case 0x03: delta = fixed(r, 2); goto advance;
		case 0x04: delta = fixed(r, 4); goto advance;
		case 0x05: reg = uleb(r); set_rule(w, reg, AT_OFFSET, (int64_t)uleb(r) * data_align); break;
		case 0x06: reg = uleb(r);
			set_rule(w, reg, reg == REG_RBP ? initial->rbp_kind : initial->ra_kind,
			         reg == REG_RBP ? initial->rbp_off : initial->ra_off);
			break;
		case 0x07: set_rule(w, uleb(r), UNDEFINED, 0); break;
		case 0x08: set_rule(w, uleb(r), SAME, 0); break;
		case 0x09: reg = uleb(r); uleb(r); set_rule(w, reg, OTHER, 0); break;      /* register */
		case 0x0a: if (nsaved == 4) return false; saved[nsaved++] = *w; break;
		case 0x0b: if (nsaved == 0) return false; *w = saved[--nsaved]; break;   /* with the CFA, as
			        compilers expect around an epilogue (remember, def_cfa rsp+8, ret, restore) */
		case 0x0c: w->cfa_reg = (uint8_t)uleb(r); w->cfa_off = (int64_t)uleb(r); break;
		case 0x0d: w->cfa_reg = (uint8_t)uleb(r); break;
		case 0x0e: w->cfa_off = (int64_t)uleb(r); break;
		case 0x0f: return false;                                       /* def_cfa_expression */
		case 0x10: case 0x16: {                                        /* (val_)expression */
			reg = uleb(r);
			uint64_t len = uleb(r);
			if (len > (uint64_t)(r->end - r->p))
				return false;
			r->p += len;
			set_rule(w, reg, OTHER, 0);
			break;
		}
		case 0x11: reg = uleb(r); set_rule(w, reg, AT_OFFSET, sleb(r) * data_align); break;
		case 0x12: w->cfa_reg = (uint8_t)uleb(r); w->cfa_off = sleb(r) * data_align; break;
		case 0x13: w->cfa_off = sleb(r) * data_align; break;
		case 0x14: case 0x15: reg = uleb(r); (op == 0x14 ? (void)uleb(r) : (void)sleb(r)); set_rule(w, reg, OTHER, 0); break;
		case 0x2e: uleb(r); break;                                     /* GNU_args_size */
		case 0x2f: reg = uleb(r); set_rule(w, reg, AT_OFFSET, -(int64_t)uleb(r) * data_align); break;
		default: return false;
		}
		continue;
	advance:
		loc += delta * code_align;
		if (loc > target)
			return true;
	}
	return !r->bad;
}

/* Decodes the rule for code address target of the object whose .eh_frame_hdr is hdr. */
static uint64_t decode(const uint8_t *hdr, const uint8_t *obj_end, uintptr_t target)
{
	reader r = { hdr, obj_end, false };
	uintptr_t base = (uintptr_t)hdr;
	if (fixed(&r, 1) != 1)
		return RULE_STOP;
	uint8_t ptr_enc = (uint8_t)fixed(&r, 1), count_enc = (uint8_t)fixed(&r, 1), table_enc = (uint8_t)fixed(&r, 1);
	if (r.bad || ptr_enc == 0xff || count_enc == 0xff || table_enc != 0x3b)   /* datarel sdata4 pairs */
		return RULE_STOP;
	encoded(&r, ptr_enc, base);
	uintptr_t count = encoded(&r, count_enc, base);
	if (r.bad || count == 0 || count > (uintptr_t)(obj_end - r.p) / 8)
		return RULE_STOP;
	const int32_t *table = (const int32_t *)r.p;
	size_t lo = 0, hi = count;        /* the last entry whose start <= target */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (base + (intptr_t)table[2 * mid] <= target)
			lo = mid;
		else
			hi = mid;
	}
	if (base + (intptr_t)table[2 * lo] > target)
		return RULE_STOP;
	const uint8_t *fde = (const uint8_t *)(base + (intptr_t)table[2 * lo + 1]);
	if (fde < (const uint8_t *)0x1000 || fde >= obj_end)
		return RULE_STOP;

	/* The FDE: length, CIE pointer, address range, augmentation data, instructions. */
	reader f = { fde, obj_end, false };
	uint64_t len = fixed(&f, 4);
	if (len == 0 || len >= 0xfffffff0u || len > (uint64_t)(obj_end - f.p))
		return RULE_STOP;
	f.end = f.p + len;
	const uint8_t *cie_field = f.p;
	uint32_t cie_off = (uint32_t)fixed(&f, 4);
	const uint8_t *cie = cie_field - cie_off;
	if (cie_off == 0 || cie < (const uint8_t *)0x1000 || cie >= obj_end)
		return RULE_STOP;

	/* The CIE: version, augmentation, alignment factors, return register, initial instructions. */
	reader c = { cie, obj_end, false };
	uint64_t clen = fixed(&c, 4);
	if (clen == 0 || clen >= 0xfffffff0u || clen > (uint64_t)(obj_end - c.p))
		return RULE_STOP;
	c.end = c.p + clen;
	if (fixed(&c, 4) != 0)
		return RULE_STOP;
	uint8_t version = (uint8_t)fixed(&c, 1);
	const char *aug = (const char *)c.p;
	while (c.p < c.end && *c.p)
		c.p++;
	if (c.p >= c.end || (version != 1 && version != 3))
		return RULE_STOP;
	c.p++;
	uint64_t code_align = uleb(&c);
	int64_t data_align = sleb(&c);
	uint64_t ra_reg = version == 1 ? fixed(&c, 1) : uleb(&c);
	uint8_t fde_enc = 0;
	bool has_z = aug[0] == 'z';
	if (has_z) {
		uint64_t alen = uleb(&c);
		const uint8_t *aend = c.p + alen;
		if (alen > (uint64_t)(c.end - c.p))
			return RULE_STOP;
		for (const char *a = aug + 1; *a; a++) {
			if (*a == 'R')
				fde_enc = (uint8_t)fixed(&c, 1);
			else if (*a == 'L')
				fixed(&c, 1);
			else if (*a == 'P')
				encoded(&c, (uint8_t)fixed(&c, 1) & 0x7f, base);   /* the personality: skipped */
			else
				return RULE_STOP;                                  /* 'S' (signal frames), unknown */
		}
		c.p = aend;
	} else if (aug[0]) {
		return RULE_STOP;
	}
	if (c.bad || ra_reg != REG_RA)
		return RULE_STOP;

	uintptr_t start = encoded(&f, fde_enc, base);
	uintptr_t range = encoded(&f, fde_enc & 0x0f, base);
	if (f.bad || target < start || target - start >= range)
		return RULE_STOP;
	if (has_z) {
		uint64_t alen = uleb(&f);
		if (alen > (uint64_t)(f.end - f.p))
			return RULE_STOP;
		f.p += alen;
	}

	row w = { REG_RSP, 8, SAME, SAME, 0, 0 }, initial;
	if (!run_cfa(&c, &w, &w, 0, UINTPTR_MAX, code_align, data_align, fde_enc, base))
		return RULE_STOP;
	initial = w;
	if (!run_cfa(&f, &w, &initial, start, target, code_align, data_align, fde_enc, base))
		return RULE_STOP;

	if (w.ra_kind == UNDEFINED)
		return RULE_STOP;      /* the outermost frame */
	if (w.ra_kind != AT_OFFSET || w.ra_off != -8 || (w.cfa_reg != REG_RSP && w.cfa_reg != REG_RBP) ||
	    w.cfa_off < 8 || w.cfa_off > INT32_MAX || (w.rbp_kind != SAME && w.rbp_kind != AT_OFFSET) ||
	    (w.rbp_kind == AT_OFFSET && (w.rbp_off >= 0 || w.rbp_off < -65535)))
		return RULE_STOP;
	uint64_t rule = RULE_SET | (uint64_t)w.cfa_off << 32;
	if (w.cfa_reg == REG_RBP)
		rule |= RULE_RBP;
	if (w.rbp_kind == AT_OFFSET)
		rule |= RULE_SAVED | (uint64_t)(-w.rbp_off) << 8;
	return rule;
}

/* ---- the table of decoded rules ---- */

static cache_slot *table_of(void)
{
	cache_slot *t = atomic_load_explicit(&cache, memory_order_acquire);
	if (t || atomic_exchange(&cache_made, 1))
		return t;          /* made, being made by another thread, or refused once: none for now */
	t = mk__os_map(CACHE_SLOTS * sizeof *t);
	atomic_store_explicit(&cache, t, memory_order_release);
	return t;
}

/* memkit's own text (stack.c sets it at the warm-up): it cannot be unloaded while this code runs, so its
 * frames (half of a sample's) are found in the table without asking _dl_find_object whose they are. */
static uintptr_t own_lo, own_hi;

void mk__prof_unwind_own_text(uintptr_t lo, uintptr_t hi)
{
	own_lo = lo;
	own_hi = hi;
}

static uint64_t rule_of(cache_slot *t, uintptr_t pc, uintptr_t target)
{
	struct dl_find_object obj;
	bool own = target >= own_lo && target < own_hi;
	uintptr_t owner = 0;
	if (!own) {
		if (_dl_find_object((void *)target, &obj) != 0 || !obj.dlfo_eh_frame)
			return RULE_STOP;            /* no object has this code, or no tables */
		owner = (uintptr_t)obj.dlfo_link_map ^ (uintptr_t)obj.dlfo_map_start;
	}
	size_t h = (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 52);
	if (t)
		for (int i = 0; i < CACHE_PROBES; i++) {
			cache_slot *s = &t[(h + (size_t)i) & (CACHE_SLOTS - 1)];
			uint64_t k = atomic_load_explicit(&s->pc, memory_order_acquire);
			if (k == pc && s->owner == owner)
				return s->rule;
			if (k == 0)
				break;
		}
	if (own && (_dl_find_object((void *)target, &obj) != 0 || !obj.dlfo_eh_frame))
		return RULE_STOP;
	uint64_t rule = decode(obj.dlfo_eh_frame, obj.dlfo_map_end, target);
	if (t)
		for (int i = 0; i < CACHE_PROBES; i++) {
			cache_slot *s = &t[(h + (size_t)i) & (CACHE_SLOTS - 1)];
			uint64_t expect = 0;
			if (atomic_compare_exchange_strong(&s->pc, &expect, SLOT_BUSY)) {
				s->rule = rule;
				s->owner = owner;
				atomic_store_explicit(&s->pc, pc, memory_order_release);
				break;
			}
			if (expect == pc && s->owner == owner)
				break;
		}
	return rule;
}

int mk__prof_unwind(uintptr_t *frames, int max)
{
	uintptr_t pc, sp, bp;
	__asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(pc), "=r"(sp), "=r"(bp));
	cache_slot *t = table_of();
	const uintptr_t first_sp = sp;
	int n = 0;
	/* The first pc is this function's own; every later one a return address, whose call is at pc - 1. */
	for (uintptr_t target = pc; n < max; target = pc - 1) {
		uint64_t rule = rule_of(t, pc, target);
		if (rule & RULE_END)
			break;
		uintptr_t cfa = ((rule & RULE_RBP) ? bp : sp) + (rule >> 32);
		/* Each frame's CFA lies above the last one's stack pointer, within 64 MiB of where the walk
		 * began: a rule that says otherwise is not followed. */
		if (cfa <= sp || cfa - first_sp > ((uintptr_t)64 << 20) || (cfa & 7))
			break;
		uintptr_t ra = *(const uintptr_t *)(cfa - 8);
		if (rule & RULE_SAVED)
			bp = *(const uintptr_t *)(cfa - ((rule >> 8) & 0xffff));
		sp = cfa;
		if (ra < 4096)
			break;
		pc = ra;
		frames[n++] = ra;
	}
	return n;
}

#else

void mk__prof_unwind_own_text(uintptr_t lo, uintptr_t hi)
{
	(void)lo;
	(void)hi;
}

int mk__prof_unwind(uintptr_t *frames, int max)
{
	(void)frames;
	(void)max;
	return -1;     /* not available: stack.c uses backtrace() */
}

#endif
