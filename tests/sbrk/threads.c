/* The sbrk allocator under threads: concurrent alloc/free with every byte verified, blocks freed by a
 * thread other than the one that allocated them, and fork from a process whose threads are allocating.
 * Linked like tests/sbrk/unit.c: the whole process runs on the allocator under test. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "classic/sbrk.h"
#include "../common/test.h"

enum { THREADS = 6, SLOTS = 128, OPS = 20000, SHARED = 64 };

/* Each block starts with its owner's tag and length; the rest is a pattern derived from both. */
struct tagged {
	uint32_t tag, len;
	unsigned char bytes[];
};

static unsigned char pattern(uint32_t tag, size_t i) { return (unsigned char)(tag * 29 + i * 13); }

static struct tagged *make(uint32_t tag, uint32_t len)
{
	struct tagged *t = mymalloc(sizeof *t + len);
	if (!t)
		return NULL;
	t->tag = tag;
	t->len = len;
	for (uint32_t i = 0; i < len; i++)
		t->bytes[i] = pattern(tag, i);
	return t;
}

static int intact(const struct tagged *t)
{
	for (uint32_t i = 0; i < t->len; i++)
		if (t->bytes[i] != pattern(t->tag, i))
			return 0;
	return 1;
}

/* A hand-off table: a thread drops a block into a random cell and frees whatever it found there. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tagged *shared[SHARED];
static atomic_int corrupted;
static atomic_int failed_allocs;
static atomic_int stop;

static void *churn(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (id + 1);
	struct tagged *mine[SLOTS] = { 0 };
	for (int op = 0; op < OPS || (id == 0 && !atomic_load(&stop) && op < 50 * OPS); op++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		int i = (int)(rng % SLOTS);
		uint32_t len = (uint32_t)((rng >> 20) % ((rng >> 61) ? 200 : 3000));
		if ((rng >> 40) % 8 == 0) {
			struct tagged *t = make(id << 24 | (uint32_t)op, len);
			if (!t) {
				atomic_fetch_add(&failed_allocs, 1);
				continue;
			}
			int cell = (int)((rng >> 32) % SHARED);
			pthread_mutex_lock(&shared_lock);
			struct tagged *old = shared[cell];
			shared[cell] = t;
			pthread_mutex_unlock(&shared_lock);
			if (old) {
				if (!intact(old))
					atomic_fetch_add(&corrupted, 1);
				myfree(old);
			}
		} else if (mine[i]) {
			if (!intact(mine[i]))
				atomic_fetch_add(&corrupted, 1);
			if ((rng >> 44) % 4 == 0) {
				struct tagged *t = myrealloc(mine[i], sizeof *t + len);
				if (!t) {
					atomic_fetch_add(&failed_allocs, 1);
					continue;
				}
				uint32_t keep = t->len < len ? t->len : len;
				t->len = keep;   /* the old pattern must survive the move... */
				if (!intact(t))
					atomic_fetch_add(&corrupted, 1);
				t->len = len;    /* ...then the block is refilled to its new length */
				for (uint32_t k = 0; k < len; k++)
					t->bytes[k] = pattern(t->tag, k);
				mine[i] = t;
			} else {
				myfree(mine[i]);
				mine[i] = NULL;
			}
		} else {
			mine[i] = make(id << 24 | (uint32_t)op, len);
			if (!mine[i])
				atomic_fetch_add(&failed_allocs, 1);
		}
	}
	for (int i = 0; i < SLOTS; i++)
		if (mine[i]) {
			if (!intact(mine[i]))
				atomic_fetch_add(&corrupted, 1);
			myfree(mine[i]);
		}
	return NULL;
}

static void run_threads(void (*while_running)(void))
{
	pthread_t th[THREADS];
	atomic_store(&stop, 0);
	for (int i = 0; i < THREADS; i++)
		REQUIRE(pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)i) == 0);
	if (while_running)
		while_running();
	atomic_store(&stop, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int c = 0; c < SHARED; c++) {
		if (shared[c] && !intact(shared[c]))
			atomic_fetch_add(&corrupted, 1);
		myfree(shared[c]);
		shared[c] = NULL;
	}
}

static void test_threads_alloc_free_verify(void)
{
	atomic_store(&corrupted, 0);
	atomic_store(&failed_allocs, 0);
	run_threads(NULL);
	CHECK(atomic_load(&corrupted) == 0);
	CHECK(atomic_load(&failed_allocs) == 0);
	CHECK(mk__sbrk_check() == 0);
}

/* In the child: the heap must be whole and usable (a lock held by a thread that does not exist in the
 * child would hang here; the alarm turns that into a failure). */
static int child_work(void)
{
	alarm(20);
	if (mk__sbrk_check() != 0)
		return 1;
	void *p[200];
	for (int i = 0; i < 200; i++)
		if (!(p[i] = mymalloc((size_t)i * 37)))
			return 2;
	for (int i = 0; i < 200; i++)
		myfree(p[i]);
	return mk__sbrk_check() == 0 ? 0 : 3;
}

static int fork_failures;

static void fork_repeatedly(void)
{
	for (int k = 0; k < 40; k++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_work());
		int status = 0;
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "  fork %d: child status %#x\n", k, status);
			fork_failures++;
			break;   /* one hung child is enough: each costs the alarm's 20 s */
		}
	}
}

static void test_fork_from_threaded_process(void)
{
	atomic_store(&corrupted, 0);
	run_threads(fork_repeatedly);
	CHECK(fork_failures == 0);
	CHECK(atomic_load(&corrupted) == 0);
	CHECK(mk__sbrk_check() == 0);
}

static void cases(void)
{
	RUN(test_threads_alloc_free_verify);
	RUN(test_fork_from_threaded_process);
}

int main(void)
{
	return test_main(cases);
}
