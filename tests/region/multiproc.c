/* Four processes allocating, writing, verifying and freeing in one heap at once: children of a fork
 * sharing an anonymous heap, and unrelated processes (fresh exec) opening a named one.  Blocks also pass
 * between processes through a shared mailbox and are freed by a process that did not allocate them. */
#include <pthread.h>
#include <sys/wait.h>

#include "helpers.h"

enum { WORKERS = 4, OPS = 20000, SLOTS = 64, MAILBOX = 32 };

/* A block starts with its key and length, so whoever frees it can verify it. */
struct tag {
	uint32_t key, len;
};

static void *make_block(mkr_heap *h, uint32_t key, uint32_t len)
{
	struct tag *t = mkr_alloc(h, sizeof *t + len);
	if (t) {
		t->key = key;
		t->len = len;
		fill(t + 1, len, key);
	}
	return t;
}

static int block_ok(const struct tag *t) { return intact(t + 1, t->len, t->key); }

/* One worker's share: returns the number of problems seen. */
static int work(mkr_heap *h, uint64_t seed)
{
	uint64_t *mailbox = mkr_to_ptr(h, mkr_root_get(h, 0));
	struct tag *mine[SLOTS] = {0};
	int bad = 0;
	for (int op = 0; op < OPS; op++) {
		int i = (int)(rnd(&seed) % SLOTS);
		if (mine[i]) {
			bad += !block_ok(mine[i]);
			if (rnd(&seed) % 4 == 0) { /* hand it over, free what was there */
				uint64_t got = __atomic_exchange_n(&mailbox[rnd(&seed) % MAILBOX], mkr_to_off(h, mine[i]),
				                                   __ATOMIC_ACQ_REL);
				struct tag *t = mkr_to_ptr(h, got);
				if (t) {
					bad += !block_ok(t);
					bad += mkr_free(h, t) != 0;
				}
			} else {
				bad += mkr_free(h, mine[i]) != 0;
			}
			mine[i] = NULL;
		} else {
			uint32_t len = (uint32_t)(rnd(&seed) % 8 == 0 ? rnd(&seed) % 8000 : rnd(&seed) % 400);
			mine[i] = make_block(h, (uint32_t)(seed >> 40), len);
		}
		if (op % 1500 == 0 && mkr_check(h) != 0) {
			fprintf(stderr, "  worker %d: %s\n", (int)getpid(), mkr_last_error());
			bad++;
		}
	}
	for (int i = 0; i < SLOTS; i++)
		if (mine[i]) {
			bad += !block_ok(mine[i]);
			bad += mkr_free(h, mine[i]) != 0;
		}
	return bad;
}

static mkr_heap *prepare(mkr_heap *h)
{
	uint64_t *mailbox = mkr_alloc(h, MAILBOX * sizeof(uint64_t));
	if (!mailbox)
		return NULL;
	memset(mailbox, 0, MAILBOX * sizeof(uint64_t));
	mkr_root_set(h, 0, mkr_to_off(h, mailbox));
	return h;
}

/* After the workers: empty the mailbox and expect the heap back to one free block. */
static void finish(mkr_heap *h)
{
	CHECK_HEAP(h);
	uint64_t *mailbox = mkr_to_ptr(h, mkr_root_get(h, 0));
	for (int i = 0; i < MAILBOX; i++) {
		struct tag *t = mkr_to_ptr(h, mailbox[i]);
		if (t) {
			CHECK(block_ok(t));
			CHECK(mkr_free(h, t) == 0);
		}
	}
	CHECK(mkr_free(h, mailbox) == 0);
	struct mkr_stats st;
	CHECK(mkr_stats(h, &st) == 0);
	CHECK(st.used_blocks == 0 && st.free_blocks == 1);
	CHECK(st.recoveries == 0);
	CHECK_HEAP(h);
}

static int wait_all(pid_t *pids, int n)
{
	int ok = 1;
	for (int i = 0; i < n; i++) {
		int status = 0;
		if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "  worker %d ended with status %#x\n", (int)pids[i], status);
			ok = 0;
		}
	}
	return ok;
}

static void test_forked_workers_share_anonymous_heap(void)
{
	mkr_heap *h = prepare(mkr_create_shared(8u << 20));
	REQUIRE(h);
	pid_t pids[WORKERS];
	fflush(NULL);
	for (int w = 0; w < WORKERS; w++) {
		pids[w] = fork();
		if (pids[w] == 0)
			_exit(work(h, 0x9e3779b97f4a7c15ull * (uint64_t)(w + 1)) ? 1 : 0);
	}
	CHECK(wait_all(pids, WORKERS));
	finish(h);
	mkr_close(h);
}

static void test_unrelated_processes_share_named_heap(void)
{
	const char *name = scratch_shm("multi");
	mkr_unlink_shm(name);
	mkr_heap *h = prepare(mkr_open_shm(name, MKR_CREATE | MKR_EXCL, 8u << 20, 0600));
	REQUIRE(h);
	pid_t pids[WORKERS];
	fflush(NULL);
	for (int w = 0; w < WORKERS; w++) {
		char seed[32];
		snprintf(seed, sizeof seed, "%d", w + 11);
		pids[w] = fork();
		if (pids[w] == 0) {
			execl("/proc/self/exe", "region-multiproc", "--worker", name, seed, (char *)NULL);
			_exit(127);
		}
	}
	CHECK(wait_all(pids, WORKERS));
	finish(h);
	mkr_close(h);
	mkr_unlink_shm(name);
}

struct thread_arg {
	mkr_heap *h;
	int seed, bad;
};

static void *thread_work(void *p)
{
	struct thread_arg *a = p;
	a->bad = work(a->h, 0xd1b54a32d192ed03ull * (uint64_t)a->seed);
	return NULL;
}

/* Threads of one process share one handle the same way. */
static void test_threads_share_one_handle(void)
{
	mkr_heap *h = prepare(mkr_create_private(8u << 20));
	REQUIRE(h);
	pthread_t t[WORKERS];
	struct thread_arg a[WORKERS];
	for (int w = 0; w < WORKERS; w++) {
		a[w] = (struct thread_arg){h, w + 1, 0};
		REQUIRE(pthread_create(&t[w], NULL, thread_work, &a[w]) == 0);
	}
	for (int w = 0; w < WORKERS; w++) {
		pthread_join(t[w], NULL);
		CHECK(a[w].bad == 0);
	}
	finish(h);
	mkr_close(h);
}

/* A fresh process: opens the heap by name (at an address of its own) and works in it. */
static int worker_main(const char *name, const char *seed)
{
	mkr_heap *h = mkr_open_shm(name, 0, 0, 0);
	if (!h) {
		fprintf(stderr, "  worker cannot open %s: %s\n", name, mkr_last_error());
		return 1;
	}
	int bad = work(h, 0x2545f4914f6cdd1dull * (uint64_t)atoi(seed));
	mkr_close(h);
	return bad ? 1 : 0;
}

static void cases(void)
{
	RUN(test_forked_workers_share_anonymous_heap);
	RUN(test_unrelated_processes_share_named_heap);
	RUN(test_threads_share_one_handle);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--worker") == 0)
		return worker_main(argv[2], argv[3]);
	return test_main(cases);
}
