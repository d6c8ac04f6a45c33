/* Size classes: 16-byte steps up to 256 bytes, then 8 classes per doubling up to 128 KiB.
 *
 * With 8 steps per doubling a request just above a class boundary 2^k wastes less than 2^k/8 bytes, so no
 * request loses more than 12.5% of its 16-byte-rounded size (16-byte rounding is the alignment every
 * block owes anyway).  Each class also fixes its span length: enough 64 KiB slices for at least 8 blocks,
 * which bounds the unusable tail of a span by 1/8 too. */
#include "engine/engine.h"

mk_class_info mk__classes[MK_NCLASSES];
uint8_t mk__direct_class[MK_DIRECT_COUNT];

static uint64_t inverse_odd(uint64_t odd)
{
	uint64_t x = odd; /* correct to 3 bits; each Newton step doubles that */
	for (int i = 0; i < 5; i++)
		x *= 2 - odd * x;
	return x;
}

static size_t class_size(unsigned cls)
{
	if (cls < 16)
		return 16 * (size_t)(cls + 1);
	unsigned k = 8 + (cls - 16) / 8;  /* the class lies in (2^k, 2^(k+1)] */
	unsigned j = (cls - 16) % 8 + 1;
	return ((size_t)1 << k) + j * ((size_t)1 << (k - 3));
}

unsigned mk__class_of(size_t n)
{
	if (n <= 256)
		return n <= 16 ? 0 : (unsigned)((n + 15) >> 4) - 1;
	size_t m = n - 1;
	unsigned k = 63u - (unsigned)__builtin_clzl(m);   /* 2^k < n <= 2^(k+1) */
	unsigned j = (unsigned)((m - ((size_t)1 << k)) >> (k - 3));
	return 16 + (k - 8) * 8 + j;
}

void mk__classes_init(void)
{
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		mk_class_info *ci = &mk__classes[c];
		size_t size = class_size(c);
		ci->size = (uint32_t)size;
		size_t slices = (8 * size + MK_SLICE_SIZE - 1) / MK_SLICE_SIZE;
		ci->span_slices = (uint32_t)(slices ? slices : 1);
		unsigned shift = (unsigned)__builtin_ctzl(size);
		ci->div_shift = (uint8_t)shift;
		ci->div_mul = inverse_odd(size >> shift);
	}
	for (unsigned d = 0; d < MK_DIRECT_COUNT; d++) {
		unsigned c = mk__class_of(d * 16);  /* non-decreasing in d: each class owns one range */
		mk__direct_class[d] = (uint8_t)c;
		if (d == 0)   /* malloc(0) always takes the slow path, to the no-access area (zero.c) */
			continue;
		if (mk__classes[c].direct_hi == 0)
			mk__classes[c].direct_lo = (uint8_t)d;
		mk__classes[c].direct_hi = (uint8_t)(d + 1);
	}
}
