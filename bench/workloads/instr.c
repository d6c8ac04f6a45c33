/* The instruction-count loop for callgrind: each iteration allocates 64 blocks of mixed sizes between 8
 * and 512 bytes and frees them in reverse order.  Run as
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=measure ./instr ITERATIONS
 * so that only measure() (and what it calls: malloc, free, their PLT stubs) is counted; a warm-up run of
 * the same loop before it takes the allocator's start-up and first-touch paths out of the figure.
 * instructions / (64 * ITERATIONS) is then the cost of one malloc/free pair including the loop's own.
 * Arguments: iterations (default 20000).  Self-check: each block's first byte is written and read back. */
#include "wl.h"

#define BLOCKS 64

static unsigned size_of[BLOCKS];

static inline __attribute__((always_inline)) uint64_t loop(long iterations)
{
	void *p[BLOCKS];
	uint64_t sum = 0;
	for (long it = 0; it < iterations; it++) {
		for (int i = 0; i < BLOCKS; i++) {
			p[i] = malloc(size_of[i]);
			*(unsigned char *)p[i] = (unsigned char)i;
		}
		for (int i = BLOCKS - 1; i >= 0; i--) {
			sum += *(unsigned char *)p[i];
			free(p[i]);
		}
	}
	return sum;
}

/* Two copies of the same loop, so that callgrind can count the second alone. */
__attribute__((noinline)) uint64_t warm_up(long iterations) { return loop(iterations); }
__attribute__((noinline)) uint64_t measure(long iterations) { return loop(iterations); }

int main(int argc, char **argv)
{
	long iterations = wl_arg(argc, argv, 1, 20000);
	wl_rng r = wl_seed(1);
	for (int i = 0; i < BLOCKS; i++) {   /* 8..512, about log-uniform: small sizes dominate, as in life */
		unsigned lo = 8u << wl_below(&r, 6);
		size_of[i] = lo + (unsigned)wl_below(&r, lo + 1);
	}
	uint64_t per_iteration = BLOCKS * (BLOCKS - 1) / 2;
	long warm = iterations / 10 + 1;
	uint64_t sum = warm_up(warm) + measure(iterations);
	uint64_t expect = (uint64_t)(iterations + warm) * per_iteration;
	if (sum != expect)
		WL_FAIL("sum %llu, expected %llu", (unsigned long long)sum, (unsigned long long)expect);
	wl_ok(sum);
	return 0;
}
