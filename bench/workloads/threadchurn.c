/* Thread churn: short-lived threads, a few at a time, each allocating a burst of small and medium blocks,
 * freeing most of them and handing the rest to whoever joins it, who frees them (a thread pool that
 * keeps spawning workers, or a program that starts a thread per task).  Measures thread start-up and
 * tear-down of the allocator's per-thread state, and frees of blocks whose thread has exited.
 * Arguments: threads to start in total, in hundreds (default 20), threads alive at once (default 2).
 * Self-check: every block is stamped and verified before it is freed. */
#include <pthread.h>
#include "wl.h"

#define BURST 2000
#define HANDED 200

struct task { uint64_t seed; void *handed[HANDED]; uint32_t size[HANDED]; };

static void *work(void *arg)
{
	struct task *t = arg;
	wl_rng r = wl_seed(t->seed);
	void *p[BURST];
	uint32_t size[BURST];
	for (int i = 0; i < BURST; i++) {
		size[i] = wl_below(&r, 8) ? 16 + (uint32_t)wl_below(&r, 240) : 256 + (uint32_t)wl_below(&r, 3840);
		p[i] = wl_malloc(size[i]);
		wl_stamp(p[i], size[i], (uint32_t)i);
	}
	for (int i = 0; i < BURST; i++) {
		if (i % (BURST / HANDED) == 0) {   /* every tenth block outlives the thread */
			t->handed[i / (BURST / HANDED)] = p[i];
			t->size[i / (BURST / HANDED)] = size[i];
			continue;
		}
		wl_verify(p[i], size[i], (uint32_t)i);
		free(p[i]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long total = wl_arg(argc, argv, 1, 20) * 100;
	int alive = (int)wl_arg(argc, argv, 2, 2);
	pthread_t tid[alive];
	struct task *task = wl_malloc(sizeof *task * (size_t)alive);
	uint64_t sum = 0;
	for (long started = 0; started < total; started += alive) {
		for (int k = 0; k < alive; k++) {
			task[k].seed = (uint64_t)(started + k) + 1;
			if (pthread_create(&tid[k], NULL, work, &task[k]))
				WL_FAIL("pthread_create");
		}
		for (int k = 0; k < alive; k++) {
			pthread_join(tid[k], NULL);
			for (int i = 0; i < HANDED; i++) {
				wl_verify(task[k].handed[i], task[k].size[i], (uint32_t)(i * (BURST / HANDED)));
				sum += task[k].size[i];
				free(task[k].handed[i]);
			}
		}
	}
	free(task);
	if (sum == 0)
		WL_FAIL("no work done");
	wl_ok(sum);
	return 0;
}
