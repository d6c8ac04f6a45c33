/* Times alloc/free pairs in a region heap: one process over a private heap, then P processes sharing one
 * (every operation takes the heap's one lock, so this shows what sharing costs).
 * Usage: region-timing [PAIRS [PROCESSES]]   (defaults 2000000 and 4) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memkit_region.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Keeps 64 blocks of random small sizes live and replaces one per pair. */
static int churn(mkr_heap *h, long pairs, unsigned seed)
{
	void *live[64] = {0};
	for (long i = 0; i < pairs; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned slot = seed >> 26;
		if (mkr_free(h, live[slot]) != 0)
			return 1;
		if (!(live[slot] = mkr_alloc(h, 16 + (seed >> 8) % 240)))
			return 1;
	}
	for (int i = 0; i < 64; i++)
		mkr_free(h, live[i]);
	return 0;
}

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? atol(argv[1]) : 2000000;
	int procs = argc > 2 ? atoi(argv[2]) : 4;
	mkr_heap *h = mkr_create_private(16u << 20);
	if (!h)
		return 1;
	double t = now();
	if (churn(h, pairs, 1))
		return 1;
	t = now() - t;
	printf("1 process, private heap:  %.1f ns per alloc/free pair\n", t * 1e9 / (double)pairs);
	mkr_close(h);

	h = mkr_create_shared(16u << 20);
	if (!h)
		return 1;
	fflush(stdout);
	t = now();
	for (int p = 0; p < procs; p++)
		if (fork() == 0)
			_exit(churn(h, pairs / procs, (unsigned)p + 2));
	int bad = 0, status;
	while (wait(&status) > 0)
		bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	t = now() - t;
	printf("%d processes, shared heap: %.1f ns per pair (all processes together), check %s\n", procs,
	       t * 1e9 / (double)pairs, mkr_check(h) == 0 && !bad ? "passed" : "FAILED");
	mkr_close(h);
	return bad;
}
