// The instruction-count loop of bench/workloads/instr.c (64 blocks of 8-512 bytes, freed in reverse order),
// through C++'s operators: `new` then `delete` (plain), or `delete` given the size (sized), or malloc/free
// for comparison.  Run by tests/cxx/instr.sh under callgrind, which counts measure() alone; a warm-up loop
// before it takes start-up and first-touch paths out of the figure.  Not a test: a measurement.
//   instr-new plain|sized|malloc [ITERATIONS]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#define BLOCKS 64

extern "C" void instr_sizes(unsigned *size_of, int blocks);   // instr_sizes.c
static unsigned size_of[BLOCKS];
static int mode;   // 0 plain, 1 sized, 2 malloc

// One copy of the loop per mode (a template argument), so that no pair pays a test of the mode.
template <int M> static inline __attribute__((always_inline)) uint64_t loop(long iterations)
{
	void *p[BLOCKS];
	uint64_t sum = 0;
	for (long it = 0; it < iterations; it++) {
		for (int i = 0; i < BLOCKS; i++) {
			p[i] = M == 2 ? malloc(size_of[i]) : ::operator new(size_of[i]);
			*(unsigned char *)p[i] = (unsigned char)i;
		}
		for (int i = BLOCKS - 1; i >= 0; i--) {
			sum += *(unsigned char *)p[i];
			if (M == 0)
				::operator delete(p[i]);
			else if (M == 1)
				::operator delete(p[i], size_of[i]);
			else
				free(p[i]);
		}
	}
	return sum;
}

static inline __attribute__((always_inline)) uint64_t run(long iterations)
{
	return mode == 0 ? loop<0>(iterations) : mode == 1 ? loop<1>(iterations) : loop<2>(iterations);
}
extern "C" __attribute__((noinline)) uint64_t warm_up(long iterations) { return run(iterations); }
extern "C" __attribute__((noinline)) uint64_t measure(long iterations) { return run(iterations); }

int main(int argc, char **argv)
{
	mode = argc < 2 ? -1 : !strcmp(argv[1], "plain") ? 0 : !strcmp(argv[1], "sized") ? 1 : !strcmp(argv[1], "malloc") ? 2 : -1;
	long iterations = argc > 2 ? atol(argv[2]) : 20000;
	if (mode < 0 || iterations <= 0) {
		fprintf(stderr, "usage: instr-new plain|sized|malloc [iterations]\n");
		return 2;
	}
	instr_sizes(size_of, BLOCKS);
	uint64_t per_iteration = BLOCKS * (BLOCKS - 1) / 2;
	long warm = iterations / 10 + 1;
	uint64_t sum = warm_up(warm) + measure(iterations);
	if (sum != (uint64_t)(iterations + warm) * per_iteration) {
		fprintf(stderr, "FAIL bad sum %llu\n", (unsigned long long)sum);
		return 1;
	}
	printf("ok %llu\n", (unsigned long long)sum);
	return 0;
}
