/* Multi-threaded stress: blocks that cross threads, threads that come and go, a producer and a consumer,
 * and fork while other threads allocate.  Every block carries a pattern derived from its address and size
 * and is verified before it is freed, so a block handed out twice or overwritten shows.
 *
 * Built like the contract tests: -DMK_TEST_PREFIXED against build/libmemkit-mk.a, and plain for
 * LD_PRELOAD=build/libmemkit.so (stress-preload.sh).  Sizes are counts, not durations: the work is the same on a
 * slow machine, only slower.  -DMK_TEST_SANITIZE (the sanitizer builds) scales the counts down and drops the
 * RSS bounds, which a sanitizer runtime's shadow memory would distort; -DMK_TEST_NO_FORK drops the fork case
 * (ThreadSanitizer does not support fork from a multi-threaded process). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "tests/common/test.h"
#include "tests/contract/api.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#ifdef MK_TEST_SANITIZE
enum { SCALE = 10, CHECK_RSS = 0 };
#else
enum { SCALE = 1, CHECK_RSS = 1 };
#endif

/* Every byte of every block is patterned and verified before it is freed (api.h fills and compares 4 KiB
 * at a time, so this costs little next to the allocator's work). */
static uintptr_t block_seed(const void *p, size_t n) { return (uintptr_t)p ^ (n * 0x9E3779B97F4A7C15ULL); }

static void mark(void *p, size_t n) { test_fill_seed(p, n, block_seed(p, n)); }

static int intact(const void *p, size_t n) { return test_verify_seed(p, n, block_seed(p, n)); }

/* Huge blocks (over 2 MiB: their own mapping) that were freed or realloc'ed by a thread other than the one
 * that allocated them. */
static _Atomic long huge_crossed;
#define HUGE_MIN (2 * MiB + 1)

static _Atomic int corrupted;

static void release(void *p, size_t n)
{
	if (!intact(p, n)) {
		if (atomic_fetch_add(&corrupted, 1) < 5)
			fprintf(stderr, "  block %p of %zu bytes corrupted\n", p, n);
	}
	M(free)(p);
}

/* Mostly small, some medium, a few up to 1 MiB, and rarely (1 in 5000) a huge one of 2-40 MiB: the mix of
 * a real program. */
static size_t stress_size(uint64_t *rng)
{
	uint64_t r = test_rand(rng) % 5000;
	if (r == 0)
		return HUGE_MIN + test_rand(rng) % (38 * MiB);
	if (r < 4000)
		return 1 + test_rand(rng) % 256;
	if (r < 4850)
		return 257 + test_rand(rng) % (32 * KiB);
	return 1 + test_rand(rng) % MiB;
}

/* --- blocks freed by another thread ------------------------------------------------------------------ */

enum { XT_THREADS = 8, XT_OPS = 60000 / SCALE, XT_QCAP = 512 };

struct item {
	void *p;
	size_t n;
};

struct queue {
	pthread_mutex_t lock;
	struct item items[XT_QCAP];
	int head, count;
};

static struct queue queues[XT_THREADS];

static int queue_push(struct queue *q, struct item it)
{
	pthread_mutex_lock(&q->lock);
	int ok = q->count < XT_QCAP;
	if (ok)
		q->items[(q->head + q->count++) % XT_QCAP] = it;
	pthread_mutex_unlock(&q->lock);
	return ok;
}

static int queue_pop(struct queue *q, struct item *it)
{
	pthread_mutex_lock(&q->lock);
	int ok = q->count > 0;
	if (ok) {
		*it = q->items[q->head];
		q->head = (q->head + 1) % XT_QCAP;
		q->count--;
	}
	pthread_mutex_unlock(&q->lock);
	return ok;
}

/* realloc of a block another thread allocated: the head must survive the move. */
static struct item realloc_foreign(struct item it, size_t m)
{
	uintptr_t seed = block_seed(it.p, it.n);
	size_t keep = it.n < m ? it.n : m;
	if (it.n >= HUGE_MIN)
		atomic_fetch_add(&huge_crossed, 1);
	if (!intact(it.p, it.n))
		atomic_fetch_add(&corrupted, 1);
	void *q = M(realloc)(it.p, m);
	if (!q) {
		atomic_fetch_add(&corrupted, 1);
		M(free)(it.p);
		return (struct item){NULL, 0};
	}
	if (!test_verify_seed(q, keep, seed))
		atomic_fetch_add(&corrupted, 1);
	mark(q, m);
	return (struct item){q, m};
}

static void *cross_thread_worker(void *arg)
{
	int self = (int)(intptr_t)arg;
	uint64_t rng = 0xC0FFEE + (uint64_t)self * 7919;
	struct item local[64];
	int nlocal = 0;
	/* One huge block for certain (the random mix gives a few at this scale, and under a sanitizer's
	 * scale sometimes none that crosses): handed to the next thread, which frees or reallocs it, or
	 * left queued for the main thread to free after the join; another thread either way. */
	size_t hn = HUGE_MIN + (size_t)self * MiB;
	void *hp = M(malloc)(hn);
	if (!hp) {
		atomic_fetch_add(&corrupted, 1);
		return NULL;
	}
	mark(hp, hn);
	if (!queue_push(&queues[(self + 1) % XT_THREADS], (struct item){hp, hn}))
		release(hp, hn);
	for (int op = 0; op < XT_OPS; op++) {
		struct item it;
		if (queue_pop(&queues[self], &it)) {
			if (test_rand(&rng) % 4 == 0)
				it = realloc_foreign(it, stress_size(&rng));
			else if (it.n >= HUGE_MIN)
				atomic_fetch_add(&huge_crossed, 1);
			if (it.p)
				release(it.p, it.n);
		}
		size_t n = stress_size(&rng);
		void *p = M(malloc)(n);
		if (!p) {
			atomic_fetch_add(&corrupted, 1);
			fprintf(stderr, "  malloc(%zu) failed\n", n);
			break;
		}
		mark(p, n);
		uint64_t r = test_rand(&rng) % 4;
		if (r < 2) { /* half the blocks go to another thread */
			int to = (self + 1 + (int)(test_rand(&rng) % (XT_THREADS - 1))) % XT_THREADS;
			if (queue_push(&queues[to], (struct item){p, n}))
				continue;
		}
		if (nlocal == 64) { /* a few live at once, freed out of order */
			int k = (int)(test_rand(&rng) % 64);
			release(local[k].p, local[k].n);
			local[k] = local[--nlocal];
		}
		local[nlocal++] = (struct item){p, n};
	}
	while (nlocal > 0) {
		nlocal--;
		release(local[nlocal].p, local[nlocal].n);
	}
	return NULL;
}

static void test_cross_thread_free(void)
{
	pthread_t t[XT_THREADS];
	atomic_store(&corrupted, 0);
	atomic_store(&huge_crossed, 0);
	for (int i = 0; i < XT_THREADS; i++)
		pthread_mutex_init(&queues[i].lock, NULL);
	for (int i = 0; i < XT_THREADS; i++)
		REQUIRE(pthread_create(&t[i], NULL, cross_thread_worker, (void *)(intptr_t)i) == 0);
	for (int i = 0; i < XT_THREADS; i++)
		pthread_join(t[i], NULL);
	/* what is still queued was allocated by threads that are gone now: freed by this one, another */
	for (int i = 0; i < XT_THREADS; i++) {
		struct item it;
		while (queue_pop(&queues[i], &it)) {
			if (it.n >= HUGE_MIN)
				atomic_fetch_add(&huge_crossed, 1);
			release(it.p, it.n);
		}
	}
	fprintf(stderr, "  %ld huge blocks freed or realloc'ed by another thread\n", atomic_load(&huge_crossed));
	CHECK(atomic_load(&huge_crossed) > 0);   /* the first push of all is into an empty queue */
	CHECK(atomic_load(&corrupted) == 0);
	CHECK(test_heap_check() == 0);
}

/* --- short-lived producers, long-lived consumers ----------------------------------------------------- */

/* Blocks outlive the threads that allocated them while other threads are freeing them: the heap of an
 * exiting thread is given up with remote frees still arriving. */
enum { ORPHAN_ROUNDS = 100 / SCALE, ORPHAN_PRODUCERS = 4, ORPHAN_BLOCKS = 1500, ORPHAN_CONSUMERS = 2 };

static _Atomic int orphan_done;

static void *orphan_producer(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;
	for (int i = 0; i < ORPHAN_BLOCKS; i++) {
		size_t n = stress_size(&rng) % (200 * KiB) + 1;
		void *p = M(malloc)(n);
		if (!p) {
			atomic_fetch_add(&corrupted, 1);
			return NULL;
		}
		mark(p, n);
		while (!queue_push(&queues[0], (struct item){p, n}))
			sched_yield();
	}
	return NULL;
}

static void *orphan_consumer(void *arg)
{
	(void)arg;
	for (;;) {
		struct item it;
		if (queue_pop(&queues[0], &it))
			release(it.p, it.n);
		else if (atomic_load(&orphan_done))
			return NULL;
		else
			sched_yield();
	}
}

static void test_blocks_outlive_their_threads(void)
{
	pthread_t c[ORPHAN_CONSUMERS];
	atomic_store(&corrupted, 0);
	atomic_store(&orphan_done, 0);
	pthread_mutex_init(&queues[0].lock, NULL);
	for (int i = 0; i < ORPHAN_CONSUMERS; i++)
		REQUIRE(pthread_create(&c[i], NULL, orphan_consumer, NULL) == 0);
	for (int r = 0; r < ORPHAN_ROUNDS; r++) {
		pthread_t p[ORPHAN_PRODUCERS];
		int started = 0;
		for (int k = 0; k < ORPHAN_PRODUCERS; k++)
			started += pthread_create(&p[started], NULL, orphan_producer,
			                          (void *)(uintptr_t)(r * ORPHAN_PRODUCERS + k + 1)) == 0;
		for (int k = 0; k < started; k++)
			pthread_join(p[k], NULL);
		CHECK(started == ORPHAN_PRODUCERS);
	}
	atomic_store(&orphan_done, 1);
	for (int i = 0; i < ORPHAN_CONSUMERS; i++)
		pthread_join(c[i], NULL);
	CHECK(atomic_load(&corrupted) == 0);
	CHECK(test_heap_check() == 0);
}

/* --- many short-lived threads ------------------------------------------------------------------------ */

enum { CHURN_THREADS = 10000 / SCALE, CHURN_BATCH = 8 };

static void *churn_worker(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 2654435761u + 1;
	void *held[100];
	size_t sizes[100];
	for (int i = 0; i < 100; i++) {
		sizes[i] = i % 10 == 9 ? 1000 + test_rand(&rng) % 60000 : 1 + test_rand(&rng) % 400;
		held[i] = M(malloc)(sizes[i]);
		if (!held[i])
			return NULL;
		mark(held[i], sizes[i]);
	}
	for (int i = 0; i < 99; i++)
		release(held[i], sizes[i]);
	/* the last block outlives its thread: the main thread frees it */
	struct item *out = M(malloc)(sizeof *out);
	if (out)
		*out = (struct item){held[99], sizes[99]};
	else
		release(held[99], sizes[99]);
	return out;
}

static void run_churn_batches(int from, int to)
{
	for (int i = from; i < to; i += CHURN_BATCH) {
		pthread_t t[CHURN_BATCH];
		int started = 0;
		for (int k = 0; k < CHURN_BATCH; k++)
			if (pthread_create(&t[k], NULL, churn_worker, (void *)(uintptr_t)(i + k + 1)) == 0)
				started++;
			else
				atomic_fetch_add(&corrupted, 1);
		for (int k = 0; k < started; k++) {
			struct item *out = NULL;
			pthread_join(t[k], (void **)&out);
			if (!out) {
				atomic_fetch_add(&corrupted, 1);
				continue;
			}
			release(out->p, out->n);
			M(free)(out);
		}
	}
}

static void test_thread_churn_rss_flat(void)
{
	atomic_store(&corrupted, 0);
	/* trimmed before each reading, so that the figures show what is kept, not how far the delayed purge
	 * happens to have got */
	run_churn_batches(0, CHURN_THREADS / 10);
	M(malloc_trim)(0);
	size_t rss_tenth = test_rss();
	run_churn_batches(CHURN_THREADS / 10, CHURN_THREADS);
	M(malloc_trim)(0);
	size_t rss_all = test_rss();
	fprintf(stderr, "  rss after %d threads %zu KiB, after %d threads %zu KiB\n", CHURN_THREADS / 10,
	        rss_tenth / KiB, CHURN_THREADS, rss_all / KiB);
	CHECK(atomic_load(&corrupted) == 0);
	CHECK(!CHECK_RSS || rss_all < rss_tenth + 8 * MiB);
	CHECK(test_heap_check() == 0);
}

/* --- one thread allocates, another frees ------------------------------------------------------------- */

enum { PC_BATCH = 256, PC_SLOTS = 16, PC_BATCHES = 8000 / SCALE };

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct item batch[PC_SLOTS][PC_BATCH];
	int head, count;
} pc = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static size_t pc_rss_early, pc_rss_peak;

static void *producer(void *arg)
{
	(void)arg;
	uint64_t rng = 99;
	for (int b = 0; b < PC_BATCHES; b++) {
		struct item local[PC_BATCH];
		for (int i = 0; i < PC_BATCH; i++) {
			size_t n = test_rand(&rng) % 64 == 0 ? 4 * KiB + test_rand(&rng) % (60 * KiB)
			                                     : 16 + test_rand(&rng) % 2000;
			local[i].p = M(malloc)(n);
			local[i].n = n;
			if (!local[i].p)
				abort();
			mark(local[i].p, n);
		}
		pthread_mutex_lock(&pc.lock);
		while (pc.count == PC_SLOTS)
			pthread_cond_wait(&pc.changed, &pc.lock);
		memcpy(pc.batch[(pc.head + pc.count) % PC_SLOTS], local, sizeof local);
		pc.count++;
		pthread_cond_broadcast(&pc.changed);
		pthread_mutex_unlock(&pc.lock);
		if (b == PC_BATCHES / 10)
			pc_rss_early = test_rss();
		if (b > PC_BATCHES / 10) {
			size_t r = test_rss();
			if (r > pc_rss_peak)
				pc_rss_peak = r;
		}
	}
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	for (int b = 0; b < PC_BATCHES; b++) {
		struct item local[PC_BATCH];
		pthread_mutex_lock(&pc.lock);
		while (pc.count == 0)
			pthread_cond_wait(&pc.changed, &pc.lock);
		memcpy(local, pc.batch[pc.head], sizeof local);
		pc.head = (pc.head + 1) % PC_SLOTS;
		pc.count--;
		pthread_cond_broadcast(&pc.changed);
		pthread_mutex_unlock(&pc.lock);
		for (int i = 0; i < PC_BATCH; i++)
			release(local[i].p, local[i].n);
	}
	return NULL;
}

/* At most PC_SLOTS + 2 batches are live at once (about 5 MiB); over 2 million blocks pass through.  An
 * allocator that never reuses what the other thread frees grows by gigabytes. */
static void test_producer_consumer_bounded(void)
{
	atomic_store(&corrupted, 0);
	pthread_t p, c;
	REQUIRE(pthread_create(&p, NULL, producer, NULL) == 0);
	REQUIRE(pthread_create(&c, NULL, consumer, NULL) == 0);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	fprintf(stderr, "  rss after 10%% of the batches %zu KiB, peak after %zu KiB\n", pc_rss_early / KiB,
	        pc_rss_peak / KiB);
	CHECK(atomic_load(&corrupted) == 0);
	CHECK(!CHECK_RSS || pc_rss_peak < pc_rss_early + 32 * MiB);
	CHECK(test_heap_check() == 0);
}

#ifndef MK_TEST_NO_FORK
/* --- fork while other threads allocate --------------------------------------------------------------- */

static _Atomic int fork_stop;

static void *background_allocator(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;
	struct item ring[32] = {{0}};
	unsigned k = 0;
	while (!atomic_load(&fork_stop)) {
		struct item *it = &ring[k++ % 32];
		if (it->p)
			release(it->p, it->n);
		it->n = stress_size(&rng); /* huge ones too: fork may come while any lock is held */
		it->p = M(malloc)(it->n);
		if (it->p)
			mark(it->p, it->n);
	}
	for (int i = 0; i < 32; i++)
		if (ring[i].p)
			release(ring[i].p, ring[i].n);
	return NULL;
}

static void *child_thread(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;
	for (int i = 0; i < 2000; i++) {
		size_t n = stress_size(&rng) % (128 * KiB) + 1;
		void *p = M(malloc)(n);
		if (!p)
			return (void *)1;
		mark(p, n);
		release(p, n);
	}
	return NULL;
}

/* The child: malloc and free (and threads, if asked); exit status 0 only when all went right. */
static int child_work(int with_threads)
{
	uint64_t rng = 5;
	struct item v[500];
	for (int i = 0; i < 500; i++) {
		v[i].n = stress_size(&rng);
		v[i].p = M(malloc)(v[i].n);
		if (!v[i].p)
			return 2;
		mark(v[i].p, v[i].n);
	}
	for (int i = 0; i < 500; i++)
		release(v[i].p, v[i].n);
	if (with_threads) {
		pthread_t t[4];
		for (int i = 0; i < 4; i++)
			if (pthread_create(&t[i], NULL, child_thread, (void *)(uintptr_t)(i + 1)) != 0)
				return 3;
		for (int i = 0; i < 4; i++) {
			void *r;
			pthread_join(t[i], &r);
			if (r)
				return 4;
		}
	}
	if (atomic_load(&corrupted))
		return 5;
	return test_heap_check() == 0 ? 0 : 6;
}

/* Waits for pid at most `seconds`: a child stuck on a lock another thread held at fork never exits. */
static int wait_bounded(pid_t pid, int seconds)
{
	int status;
	for (int i = 0; i < seconds * 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static void test_fork_while_allocating(void)
{
	enum { BG = 3, FORKS = 50 };
	pthread_t bg[BG];
	atomic_store(&fork_stop, 0);
	atomic_store(&corrupted, 0);
	for (int i = 0; i < BG; i++)
		REQUIRE(pthread_create(&bg[i], NULL, background_allocator, (void *)(uintptr_t)(i + 11)) == 0);
	int bad = 0;
	for (int i = 0; i < FORKS; i++) {
		fflush(stdout);
		fflush(stderr);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_work(i % 2));
		REQUIRE(pid > 0);
		int status = wait_bounded(pid, 20);
		if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			if (bad++ < 5)
				fprintf(stderr, "  fork %d: child %s (status %#x)\n", i, status == -1 ? "hung" : "failed",
				        status);
		}
	}
	atomic_store(&fork_stop, 1);
	for (int i = 0; i < BG; i++)
		pthread_join(bg[i], NULL);
	CHECK(bad == 0);
	CHECK(atomic_load(&corrupted) == 0);
	CHECK(test_heap_check() == 0);
}
#endif

#ifndef MK_TEST_PREFIXED
static void test_memkit_loaded(void) { CHECK(test_under_memkit()); }
#endif

static void cases(void)
{
#ifndef MK_TEST_PREFIXED
	const char *expect = getenv("MK_EXPECT_MEMKIT");
	if (expect && strcmp(expect, "1") == 0)
		RUN(test_memkit_loaded);
#endif
	RUN(test_cross_thread_free);
	RUN(test_blocks_outlive_their_threads);
	RUN(test_thread_churn_rss_flat);
	RUN(test_producer_consumer_bounded);
#ifndef MK_TEST_NO_FORK
	RUN(test_fork_while_allocating);
#endif
}

int main(void)
{
	return test_main(cases);
}
