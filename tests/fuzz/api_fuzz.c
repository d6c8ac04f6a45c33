/* Coverage-guided fuzzing of the mk_ API with libFuzzer: the input is a program of allocator operations.
 *
 * Each operation takes up to 5 input bytes (missing ones read as 0):
 *   op    which function (below), modulo OP_COUNT
 *   slot  which of SLOTS block slots it works on
 *   kind  how to read the size (0, tiny, a size-class boundary +-1, 16 bits, large boundary, 64 KiB
 *         multiple, huge, any boundary), and the nudge
 *   v     16 bits for the size (little endian); for the aligned functions the low 5 bits of kind's
 *         high part choose the alignment (1 .. 4 MiB)
 * An allocation into a full slot frees its block first.  Every block carries the pattern of
 * tests/fuzz/shadow.h, checked whole before free and realloc (realloc: the kept prefix after), calloc must
 * give zeros, every block must be aligned, have usable >= asked and overlap no live block, and at the end of
 * each input, with every block freed, mk_check() must be 0.  A failure prints what and aborts (libFuzzer
 * saves the input).
 *
 * Built by mk/fuzz.mk with clang -fsanitize=fuzzer,address,undefined over the engine compiled with
 * -fsanitize=fuzzer-no-link,address,undefined; tests/fuzz/api-fuzz.sh runs it over tests/fuzz/corpus/api/. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "memkit.h"
#include "tests/fuzz/shadow.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { SLOTS = 32, MAX_BLOCK = 4 << 20 };

enum {
	OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOCARRAY, OP_FREE, OP_POSIX_MEMALIGN, OP_ALIGNED_ALLOC,
	OP_MEMALIGN, OP_VALLOC, OP_PVALLOC, OP_USABLE, OP_TRIM, OP_CHECK, OP_COUNT
};

typedef struct {
	unsigned char *p;
	size_t req, usable, align;
	uint64_t base;
} slot;

static slot slots[SLOTS];
static fz_interval set_storage[SLOTS + 1];
static fz_set live = {set_storage, 0, SLOTS + 1};
static size_t boundaries[256];
static unsigned nboundaries;
static uint64_t serial;
static size_t op_index;

static __attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "api_fuzz: operation %zu: ", op_index);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

typedef struct {
	const uint8_t *p;
	size_t n;
} input;

static unsigned take(input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

/* A boundary in [lo, hi] picked by v, nudged by -1, 0 or +1. */
static size_t boundary(size_t lo, size_t hi, unsigned v, unsigned nudge)
{
	unsigned first, last;
	if (!fz_boundaries_in(boundaries, nboundaries, lo, hi, &first, &last))
		return lo;
	return boundaries[first + v % (last - first)] + nudge % 3 - 1;
}

static size_t decode_size(unsigned kind, unsigned v)
{
	unsigned nudge = kind >> 3;
	switch (kind & 7) {
	case 0: return 0;
	case 1: return v % 1025;
	case 2: return boundary(16, 128 * KiB, v, nudge);
	case 3: return v;
	case 4: return boundary(128 * KiB, 2 * MiB, v, nudge);
	case 5: return (v % 32 + 1) * 64 * KiB + nudge % 3 - 1;
	case 6: return 2 * MiB + (size_t)v * 32;
	default: return boundary(16, MAX_BLOCK, v, nudge);
	}
}

static void verify(const slot *s, size_t upto)
{
	size_t bad = fz_find_bad(s->p, 0, upto, s->base);
	if (bad != FZ_NONE)
		fail("block %p (%zu bytes): byte %zu is %#x, not %#x", (void *)s->p, s->req, bad, s->p[bad],
		     fz_byte(s->base, bad));
}

/* A block just returned: check it, enter it in the live set, fill what is not kept. */
static void admit(slot *s, const char *what, int zeroed, size_t keep)
{
	if (s->p == NULL)
		fail("%s(%zu) returned NULL", what, s->req);
	if ((uintptr_t)s->p % s->align != 0)
		fail("%s(%zu) = %p is not aligned to %zu", what, s->req, (void *)s->p, s->align);
	s->usable = mk_malloc_usable_size(s->p);
	if (s->usable < s->req)
		fail("%s(%zu) = %p: usable %zu", what, s->req, (void *)s->p, s->usable);
	if (zeroed) {
		size_t nz = fz_find_nonzero(s->p, s->req);
		if (nz != FZ_NONE)
			fail("calloc(%zu) = %p: byte %zu is %#x", s->req, (void *)s->p, nz, s->p[nz]);
	}
	if (keep)
		verify(s, keep);
	fz_interval clash;
	uintptr_t a = (uintptr_t)s->p;
	if (fz_set_insert(&live, a, a + (s->usable ? s->usable : 1), 0, &clash) != 0)
		fail("%s(%zu) = [%p, %p) overlaps the live [%p, %p)", what, s->req, (void *)s->p,
		     (void *)(a + s->usable), (void *)clash.start, (void *)clash.end);
	fz_fill(s->p, keep, s->req, s->base);
}

static void retire(slot *s)
{
	verify(s, s->req);
	if (fz_set_remove(&live, (uintptr_t)s->p) != 0)
		fail("block %p missing from the live set", (void *)s->p);
}

static void release(slot *s)
{
	if (s->p == NULL)
		return;
	retire(s);
	mk_free(s->p);
	s->p = NULL;
}

static void run(unsigned op, slot *s, size_t n, unsigned kind)
{
	size_t align = (size_t)1 << ((kind >> 3) % 23);
	const char *what = "malloc";
	switch (op) {
	case OP_FREE:
		release(s);
		return;
	case OP_USABLE:
		if (s->p && mk_malloc_usable_size(s->p) != s->usable)
			fail("malloc_usable_size(%p) changed from %zu", (void *)s->p, s->usable);
		return;
	case OP_TRIM:
		mk_malloc_trim(n);
		return;
	case OP_CHECK:
		if (mk_check() != 0)
			fail("mk_check() found errors");
		return;
	case OP_REALLOC:
	case OP_REALLOCARRAY:
		if (s->p) {
			size_t keep = s->req < n ? s->req : n;
			retire(s);
			void *q = op == OP_REALLOC ? mk_realloc(s->p, n) : mk_reallocarray(s->p, n ? n : 1, n ? 1 : 0);
			if (n == 0) { /* frees, as glibc's does */
				if (q != NULL)
					fail("realloc(%p, 0) = %p, not NULL", (void *)s->p, q);
				s->p = NULL;
				return;
			}
			s->p = q;
			s->req = n;
			s->align = 16;
			admit(s, "realloc", 0, keep);
			return;
		}
		break;
	default:
		release(s);
		break;
	}
	s->req = n;
	s->align = 16;
	s->base = fz_base(0x5EED, serial++);
	int zeroed = 0;
	switch (op) {
	case OP_CALLOC:
		what = "calloc";
		s->p = n % 4 == 0 ? mk_calloc(n / 4, 4) : mk_calloc(1, n);
		zeroed = 1;
		break;
	case OP_POSIX_MEMALIGN: {
		what = "posix_memalign";
		s->align = align < sizeof(void *) ? sizeof(void *) : align;
		void *p = NULL;
		if (mk_posix_memalign(&p, s->align, n) != 0)
			fail("posix_memalign(%zu, %zu) failed", s->align, n);
		s->p = p;
		break;
	}
	case OP_ALIGNED_ALLOC:
		what = "aligned_alloc";
		s->align = align;
		s->p = mk_aligned_alloc(align, n);
		break;
	case OP_MEMALIGN:
		what = "memalign";
		s->align = align;
		s->p = mk_memalign(align, n);
		break;
	case OP_VALLOC:
		what = "valloc";
		s->align = (size_t)getpagesize();
		s->p = mk_valloc(n);
		break;
	case OP_PVALLOC: {
		what = "pvalloc";
		size_t page = (size_t)getpagesize();
		s->align = page;
		s->req = n == 0 ? page : (n + page - 1) & ~(page - 1);
		s->p = mk_pvalloc(n);
		break;
	}
	case OP_REALLOC:
	case OP_REALLOCARRAY:
		what = "realloc(NULL)";
		s->p = op == OP_REALLOC ? mk_realloc(NULL, n) : mk_reallocarray(NULL, 1, n);
		break;
	default:
		s->p = mk_malloc(n);
		break;
	}
	admit(s, what, zeroed, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (nboundaries == 0)
		nboundaries = fz_boundaries(boundaries, 256);
	input in = {data, size};
	for (op_index = 0; in.n > 0; op_index++) {
		unsigned op = take(&in) % OP_COUNT;
		slot *s = &slots[take(&in) % SLOTS];
		unsigned kind = take(&in);
		unsigned v = take(&in);
		v |= take(&in) << 8;
		size_t n = decode_size(kind, v);
		if (n > MAX_BLOCK)
			n = MAX_BLOCK;
		run(op, s, n, kind);
	}
	for (unsigned i = 0; i < SLOTS; i++)
		release(&slots[i]);
	if (live.n != 0)
		fail("%zu blocks left in the live set after all were freed", live.n);
	if (mk_check() != 0)
		fail("mk_check() found errors after all blocks were freed");
	return 0;
}
