/* The large-block round trip: malloc of a 256 KiB block, its first byte written, free, in a loop on one
 * thread (or on each of THREADS threads at once).  Measures what an allocator pays per large block when
 * nothing needs the system: a lock, a clock read, purge checks, a page fault of a purged page.
 * Arguments: pairs (default 1000000), threads (default 1), block size in KiB (default 256).
 * Prints "metric ns_per_pair N" (wall time of the loop per pair, per thread), "metric cpu_ns_per_pair N"
 * (the process's CPU time per pair, all threads) and "metric time_s S".
 * Self-check: the byte written is read back before each free. */
#include "wl.h"

static size_t size;

static void *run(void *arg)
{
	struct wl_job *j = arg;
	for (long i = 0; i < j->work; i++) {
		unsigned char *p = wl_malloc(size);
		p[0] = (unsigned char)i;
		if (p[0] != (unsigned char)i)
			WL_FAIL("large block %p lost its first byte", (void *)p);
		j->sum += p[0] + 1u;
		free(p);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long pairs = wl_arg(argc, argv, 1, 1000000);
	int threads = (int)wl_arg(argc, argv, 2, 1);
	size = (size_t)wl_arg(argc, argv, 3, 256) << 10;
	double c0 = wl_cpu(), t0 = wl_now();
	uint64_t sum = wl_parallel(threads, pairs * threads, 3, run);
	double t = wl_now() - t0, c = wl_cpu() - c0;
	printf("metric ns_per_pair %.1f\n", t * 1e9 / (double)pairs);
	printf("metric cpu_ns_per_pair %.1f\n", c * 1e9 / (double)(pairs * threads));
	printf("metric time_s %.6f\n", t);
	wl_ok(sum);
	return 0;
}
