/* The fuzzers' shadow of the heap: what each live block must hold, and where every live block lies.
 *
 * Pattern.  A block's bytes are a function of its pattern base (derived from the run's seed and the block's
 * id) and the byte's offset in the block: the 8-byte word at offset 8k holds base + k * FZ_STEP (little
 * endian), so filling and checking go a word at a time and a block of another block's bytes, or of stale
 * bytes, shows.  The pattern depends on the offset, not the address: it survives realloc moving the block.
 *
 * Intervals.  Every live block's [p, p + usable) sits in one sorted array; inserting a block that overlaps
 * another live one fails and names the other.  The array is static (no allocation: under LD_PRELOAD the
 * allocator under test must not hold the fuzzer's own bookkeeping) and callers serialise it themselves.
 *
 * Used by tests/fuzz/fuzz.c (threads, under a mutex) and tests/fuzz/api_fuzz.c (libFuzzer, one thread). */
#ifndef MK_FUZZ_SHADOW_H
#define MK_FUZZ_SHADOW_H

#include <stddef.h>
#include <stdint.h>

#define FZ_STEP 0x9E3779B97F4A7C15ULL
#define FZ_NONE ((size_t)-1)

/* The pattern loops are the fuzzers' own work, not what is under test: left uninstrumented in the
 * libFuzzer build (clang), where they would otherwise dominate the time per input. */
#ifdef __clang__
#define FZ_PLAIN __attribute__((no_sanitize("address", "undefined", "coverage")))
#else
#define FZ_PLAIN
#endif

/* Word access to block memory that the byte loops also touch. */
typedef uint64_t __attribute__((may_alias)) fz_word;

/* splitmix64's finaliser: a well-mixed 64-bit function. */
static inline uint64_t fz_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBULL;
	x ^= x >> 31;
	return x;
}

static inline uint64_t fz_base(uint64_t seed, uint64_t id) { return fz_mix(seed ^ fz_mix(id + 1)); }

static inline unsigned char fz_byte(uint64_t base, size_t i)
{
	return (unsigned char)((base + (uint64_t)(i >> 3) * FZ_STEP) >> ((i & 7) * 8));
}

/* Writes the pattern into bytes [from, to) of the block at p (p is 8-byte aligned: every block is). */
FZ_PLAIN static inline void fz_fill(unsigned char *p, size_t from, size_t to, uint64_t base)
{
	size_t i = from;
	for (; i < to && (i & 7) != 0; i++)
		p[i] = fz_byte(base, i);
	uint64_t v = base + (uint64_t)(i >> 3) * FZ_STEP;
	for (; i + 8 <= to; i += 8, v += FZ_STEP)
		*(fz_word *)(p + i) = v;
	for (; i < to; i++)
		p[i] = fz_byte(base, i);
}

/* The offset of the first byte in [from, to) that is not the pattern, or FZ_NONE. */
FZ_PLAIN static inline size_t fz_find_bad(const unsigned char *p, size_t from, size_t to, uint64_t base)
{
	size_t i = from;
	for (; i < to && (i & 7) != 0; i++)
		if (p[i] != fz_byte(base, i))
			return i;
	uint64_t v = base + (uint64_t)(i >> 3) * FZ_STEP;
	for (; i + 8 <= to; i += 8, v += FZ_STEP)
		if (*(const fz_word *)(p + i) != v)
			break;
	for (; i < to; i++)
		if (p[i] != fz_byte(base, i))
			return i;
	return FZ_NONE;
}

/* The offset of the first non-zero byte in [0, n), or FZ_NONE. */
FZ_PLAIN static inline size_t fz_find_nonzero(const unsigned char *p, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		if (*(const fz_word *)(p + i) != 0)
			break;
	for (; i < n; i++)
		if (p[i] != 0)
			return i;
	return FZ_NONE;
}

/* --- live intervals ---------------------------------------------------------------------------------- */

typedef struct {
	uintptr_t start, end; /* [start, end) */
	uint64_t id;
} fz_interval;

typedef struct {
	fz_interval *v;
	size_t n, cap;
} fz_set;

/* The index of the first interval starting after a. */
static inline size_t fz_set_upper(const fz_set *s, uintptr_t a)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Adds [start, end).  Returns 0, or -1 with *clash set to the live interval it overlaps, or -2 when the
 * set is full. */
static inline int fz_set_insert(fz_set *s, uintptr_t start, uintptr_t end, uint64_t id, fz_interval *clash)
{
	size_t k = fz_set_upper(s, start);
	if (k > 0 && s->v[k - 1].end > start) {
		*clash = s->v[k - 1];
		return -1;
	}
	if (k < s->n && s->v[k].start < end) {
		*clash = s->v[k];
		return -1;
	}
	if (s->n == s->cap)
		return -2;
	for (size_t i = s->n; i > k; i--)
		s->v[i] = s->v[i - 1];
	s->v[k] = (fz_interval){start, end, id};
	s->n++;
	return 0;
}

/* Removes the interval that starts at start; 0 when there was one. */
static inline int fz_set_remove(fz_set *s, uintptr_t start)
{
	size_t k = fz_set_upper(s, start);
	if (k == 0 || s->v[k - 1].start != start)
		return -1;
	for (size_t i = k - 1; i + 1 < s->n; i++)
		s->v[i] = s->v[i + 1];
	s->n--;
	return 0;
}

/* --- sizes worth asking for -------------------------------------------------------------------------- */

/* Every multiple of 16 up to 256 and, from 256 on, the eight points 2^k * (1 + j/8) of each doubling up
 * to 2^28: memkit's size classes are exactly these up to 128 KiB, and the same grid covers the large
 * (64 KiB spans) and huge (page-rounded mappings) ranges densely.  Sorted; returns the count. */
static inline unsigned fz_boundaries(size_t *out, unsigned cap)
{
	unsigned n = 0;
	for (size_t s = 16; s < 256 && n < cap; s += 16)
		out[n++] = s;
	for (unsigned k = 8; k < 28; k++)
		for (unsigned j = 0; j < 8 && n < cap; j++)
			out[n++] = ((size_t)1 << k) + j * ((size_t)1 << (k - 3));
	return n;
}

/* The boundaries b[first..last) of the sorted b[0..n) that lie in [lo, hi]; false when none does. */
static inline int fz_boundaries_in(const size_t *b, unsigned n, size_t lo, size_t hi, unsigned *first,
                                   unsigned *last)
{
	unsigned f = 0, l = n;
	while (f < n && b[f] < lo)
		f++;
	while (l > f && b[l - 1] > hi)
		l--;
	*first = f;
	*last = l;
	return f < l;
}

#endif
