/* A program for tests/prof/prof.sh: it leaks known blocks at known functions, and optionally dumps on a
 * signal, grows (for MEMKIT_PROF_GROWTH), or forks.
 *
 *   prof-leak leak      leak_huge leaks one 8 MiB block, leak_pages 2000 blocks of 4096 bytes; exit 0
 *   prof-leak signal    raises SIGUSR2 (MEMKIT_PROF_SIGNAL), waits until FILE (argv[2]) appears (5 s)
 *   prof-leak grow      allocates 64 MiB in 1 MiB steps, keeping it (for MEMKIT_PROF_GROWTH)
 *   prof-leak churn     allocates and frees for MS (argv[2]) milliseconds, for the time view */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
void *volatile sink;

NOINLINE void leak_huge(void) { sink = malloc(8 << 20); memset(sink, 1, 8 << 20); }
NOINLINE void leak_pages(void)
{
	for (int i = 0; i < 2000; i++)
		sink = malloc(4096);
}
NOINLINE void grow_step(void) { sink = malloc(1 << 20); }

static int wait_for(const char *path, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (access(path, R_OK) == 0)
			return 0;
		usleep(10000);
	}
	return 1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "leak";
	if (strcmp(mode, "leak") == 0) {
		leak_huge();
		leak_pages();
		return 0;
	}
	if (strcmp(mode, "signal") == 0 && argc > 2) {
		leak_huge();
		raise(SIGUSR2);
		return wait_for(argv[2], 5000);
	}
	if (strcmp(mode, "grow") == 0) {
		for (int i = 0; i < 64; i++)
			grow_step();
		return 0;
	}
	if (strcmp(mode, "churn") == 0 && argc > 2) {
		long ms = atol(argv[2]);
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		static void *slots[4096];
		for (unsigned i = 0;; i++) {
			unsigned k = (i * 2654435761u) >> 20;
			free(slots[k]);
			slots[k] = malloc(64 + (i % 4000));
			if ((i & 1023) == 0) {
				clock_gettime(CLOCK_MONOTONIC, &t);
				if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
					break;
			}
		}
		return 0;
	}
	fprintf(stderr, "usage: prof-leak leak | signal FILE | grow | churn MS\n");
	return 2;
}
