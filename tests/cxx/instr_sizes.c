/* The block sizes of bench/workloads/instr.c, for tests/cxx/instr_new.cpp (wl.h is C only): 8..512 bytes,
 * about log-uniform, from the same seed and the same draws. */
#include "bench/workloads/wl.h"

void instr_sizes(unsigned *size_of, int blocks)
{
	wl_rng r = wl_seed(1);
	for (int i = 0; i < blocks; i++) {
		unsigned lo = 8u << wl_below(&r, 6);
		size_of[i] = lo + (unsigned)wl_below(&r, lo + 1);
	}
}
