/* A process killed (SIGKILL) while it holds a heap's lock, in the middle of an operation: the next process
 * to take the lock repairs the heap, check() passes, the others go on, and the dead process's blocks are
 * found and reclaimed.  Deterministic: the victim stops itself inside the operation (test hook), tells the
 * parent through a pipe, and the parent verifies that the victim holds the lock before killing it. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "helpers.h"
#include "region/layout.h"

static int stop_point, stop_fd = -1, stop_countdown = -1;
static void victim(mkr_heap *h, int point) __attribute__((noreturn));

static void stop_here(int point)
{
	if (stop_countdown >= 0 ? stop_countdown-- != 0 : point != stop_point)
		return;
	char c = 'x';
	if (write(stop_fd, &c, 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

/* Forks a victim that stops, holding the lock, at `point`; *fd reads its signal that it got there. */
static pid_t start_victim(mkr_heap *h, int point, int *fd)
{
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		stop_fd = fds[1];
		victim(h, point);
	}
	close(fds[1]);
	*fd = fds[0];
	return pid;
}

/* Waits for the victim to reach its stop, proves it holds the lock, and kills it. */
static void kill_when_stopped(mkr_heap *h, pid_t victim, int fd)
{
	char c;
	CHECK(read(fd, &c, 1) == 1);
	CHECK(mkr_lock_holder(h) == victim);
	CHECK(kill(victim, SIGKILL) == 0);
	int status = 0;
	CHECK(waitpid(victim, &status, 0) == victim);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static int count_owner(void *arg, mkr_off off, size_t size, pid_t owner)
{
	(void)off, (void)size;
	long *want = arg;
	if (owner == (pid_t)want[0])
		want[1]++;
	return 0;
}

static long blocks_of(mkr_heap *h, pid_t pid)
{
	long acc[2] = {pid, 0};
	mkr_foreach(h, count_owner, acc);
	return acc[1];
}

/* The victim: four 200-byte blocks, the second freed, then the operation that reaches `point`. */
static void victim(mkr_heap *h, int point)
{
	char *c[4];
	for (int i = 0; i < 4; i++)
		c[i] = mkr_alloc(h, 200);
	mkr_free(h, c[1]);
	stop_point = point;
	mk__region_hook = stop_here;
	switch (point) {
	case RG_HOOK_LOCKED:
	case RG_HOOK_ALLOC_SPLIT:
		mkr_alloc(h, 50);
		break;
	case RG_HOOK_FREE_MERGE:
		mkr_free(h, c[2]);
		break;
	case RG_HOOK_REALLOC_GROW:
		mkr_realloc(h, c[0], 300);
		break;
	}
	_exit(4); /* the hook never returns */
}

static void kill_at(int point, long expect_left, int by_dead_scan)
{
	mkr_heap *h = mkr_create_shared(1u << 20);
	REQUIRE(h);
	char *mine[3];
	for (int i = 0; i < 3; i++) {
		mine[i] = mkr_alloc(h, 1000);
		fill(mine[i], 1000, (uint32_t)i);
	}
	int fd;
	pid_t pid = start_victim(h, point, &fd);
	REQUIRE(pid > 0);
	kill_when_stopped(h, pid, fd);
	close(fd);

	CHECK(mkr_lock_holder(h) == pid); /* the dead process still owns the lock word */
	CHECK_HEAP(h);                    /* takes the lock: EOWNERDEAD, repair */
	CHECK(mkr_lock_holder(h) == 0);
	struct mkr_stats st;
	CHECK(mkr_stats(h, &st) == 0);
	CHECK(st.recoveries == 1 && st.last_dead == pid);
	for (int i = 0; i < 3; i++)
		CHECK(intact(mine[i], 1000, (uint32_t)i));
	CHECK(blocks_of(h, pid) == expect_left);
	long freed = by_dead_scan ? mkr_reclaim_dead(h) : mkr_reclaim_owner(h, pid);
	CHECK(freed == expect_left);
	CHECK(blocks_of(h, pid) == 0);
	CHECK_HEAP(h);
	void *more = mkr_alloc(h, 5000); /* and the heap goes on */
	CHECK(more != NULL);
	CHECK(mkr_free(h, more) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(mkr_free(h, mine[i]) == 0);
	CHECK(mkr_stats(h, &st) == 0 && st.used_blocks == 0 && st.free_blocks == 1);
	CHECK_HEAP(h);
	mkr_close(h);
}

static void test_kill_holding_lock_before_any_change(void) { kill_at(RG_HOOK_LOCKED, 3, 0); }
static void test_kill_between_split_and_commit(void) { kill_at(RG_HOOK_ALLOC_SPLIT, 3, 0); }
static void test_kill_between_free_and_merge(void) { kill_at(RG_HOOK_FREE_MERGE, 2, 1); }
static void test_kill_during_realloc_grow(void) { kill_at(RG_HOOK_REALLOC_GROW, 3, 0); }

/* Three workers keep allocating, verifying and freeing while a fourth dies holding the lock. */
static void test_others_go_on_after_kill(void)
{
	enum { WORKERS = 3, OPS = 4000 };
	mkr_heap *h = mkr_create_shared(4u << 20);
	REQUIRE(h);
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	fflush(NULL);
	pid_t pids[WORKERS], v;
	for (int w = 0; w < WORKERS; w++) {
		pids[w] = fork();
		if (pids[w] == 0) {
			uint64_t seed = 0x123456789ull * (uint64_t)(w + 3);
			void *p[32] = {0};
			int bad = 0;
			for (int op = 0; op < OPS; op++) {
				int i = (int)(rnd(&seed) % 32);
				if (p[i]) {
					bad += !intact(p[i], 300, (uint32_t)(w * 32 + i));
					bad += mkr_free(h, p[i]) != 0;
					p[i] = NULL;
				} else if ((p[i] = mkr_alloc(h, 300))) {
					fill(p[i], 300, (uint32_t)(w * 32 + i));
				}
			}
			for (int i = 0; i < 32; i++)
				bad += mkr_free(h, p[i]) != 0;
			_exit(bad ? 1 : 0);
		}
	}
	v = fork();
	if (v == 0) {
		uint64_t seed = 77;
		void *p[16] = {0};
		for (int op = 0; op < 300; op++) {
			int i = (int)(rnd(&seed) % 16);
			if (p[i]) {
				mkr_free(h, p[i]);
				p[i] = NULL;
			} else {
				p[i] = mkr_alloc(h, 100 + rnd(&seed) % 500);
			}
		}
		for (int i = 0; i < 16; i++) /* make sure it owns something when it dies */
			if (!p[i])
				p[i] = mkr_alloc(h, 64);
		stop_fd = fds[1];
		stop_point = RG_HOOK_FREE_MERGE;
		mk__region_hook = stop_here;
		mkr_free(h, p[0]);
		_exit(4);
	}
	kill_when_stopped(h, v, fds[0]);
	close(fds[0]);
	close(fds[1]);
	for (int w = 0; w < WORKERS; w++) {
		int status = 0;
		CHECK(waitpid(pids[w], &status, 0) == pids[w] && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK_HEAP(h);
	struct mkr_stats st;
	CHECK(mkr_stats(h, &st) == 0 && st.recoveries == 1 && st.last_dead == v);
	CHECK(blocks_of(h, v) == 15);
	CHECK(mkr_reclaim_owner(h, v) == 15);
	CHECK(mkr_stats(h, &st) == 0 && st.used_blocks == 0 && st.free_blocks == 1);
	CHECK_HEAP(h);
	mkr_close(h);
}

/* Kills at the k-th hook of a random workload, for many k: every kind of operation, at every point. */
static void test_kill_at_many_points(void)
{
	mkr_heap *h = mkr_create_shared(2u << 20);
	REQUIRE(h);
	char *mine = mkr_alloc(h, 4000);
	REQUIRE(mine);
	fill(mine, 4000, 99);
	for (int k = 1; k <= 60; k += 3) {
		int fds[2];
		REQUIRE(pipe(fds) == 0);
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			uint64_t seed = 1000u + (uint64_t)k;
			void *p[24] = {0};
			stop_fd = fds[1];
			stop_countdown = 20 + k; /* the LOCKED hook of every call counts too */
			mk__region_hook = stop_here;
			for (;;) {
				int i = (int)(rnd(&seed) % 24);
				if (!p[i])
					p[i] = mkr_alloc(h, rnd(&seed) % 3000);
				else if (rnd(&seed) % 3 == 0)
					p[i] = mkr_realloc(h, p[i], rnd(&seed) % 6000);
				else {
					mkr_free(h, p[i]);
					p[i] = NULL;
				}
			}
		}
		close(fds[1]);
		kill_when_stopped(h, pid, fds[0]);
		close(fds[0]);
		CHECK_HEAP(h);
		long left = blocks_of(h, pid);
		CHECK(mkr_reclaim_owner(h, pid) == left);
		CHECK(blocks_of(h, pid) == 0);
		CHECK(intact(mine, 4000, 99));
		CHECK_HEAP(h);
	}
	struct mkr_stats st;
	CHECK(mkr_stats(h, &st) == 0 && st.recoveries == 20 && st.used_blocks == 1);
	mkr_close(h);
}

static void exit_thread(int point)
{
	if (point == RG_HOOK_FREE_MERGE)
		pthread_exit(NULL);
}

static void *free_and_exit(void *p)
{
	void **arg = p;
	mk__region_hook = exit_thread;
	mkr_free(arg[0], arg[1]);
	return p; /* not reached: the hook ends the thread */
}

/* A thread that ends while it holds the lock (the process lives on): the next locker repairs. */
static void test_thread_exit_holding_lock(void)
{
	mkr_heap *h = mkr_create_private(1u << 20);
	REQUIRE(h);
	void *a = mkr_alloc(h, 100), *b = mkr_alloc(h, 100), *c = mkr_alloc(h, 100);
	REQUIRE(a && b && c);
	mkr_free(h, a);
	void *arg[2] = {h, b}, *ret = arg;
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, free_and_exit, arg) == 0);
	pthread_join(t, &ret);
	mk__region_hook = NULL;
	CHECK(ret == NULL);
	CHECK(mkr_lock_holder(h) == getpid());
	CHECK_HEAP(h);
	struct mkr_stats st;
	CHECK(mkr_stats(h, &st) == 0 && st.recoveries == 1 && st.used_blocks == 1 && st.free_blocks == 2);
	CHECK(mkr_free(h, c) == 0);
	CHECK(mkr_stats(h, &st) == 0 && st.used_blocks == 0 && st.free_blocks == 1);
	CHECK_HEAP(h);
	mkr_close(h);
}

/* A file copied while a process held its lock (as after a machine crash) still opens: the first opener,
 * alone with the file, makes a new lock and rebuilds the heap.  Without that the lock, held in the copy by
 * a live thread id, would block forever (alarm() turns that into a failure). */
static void test_file_left_locked_opens(void)
{
	const char *path = scratch_path("crash"), *copy = scratch_path("copy");
	unlink(path);
	unlink(copy);
	mkr_heap *h = mkr_open_file(path, MKR_CREATE, 256 * 1024, 0600);
	REQUIRE(h);
	char *keep = mkr_alloc(h, 64);
	strcpy(keep, "survives");
	mkr_root_set(h, 0, mkr_to_off(h, keep));
	int fd;
	pid_t pid = start_victim(h, RG_HOOK_FREE_MERGE, &fd);
	REQUIRE(pid > 0);
	char c;
	CHECK(read(fd, &c, 1) == 1);
	CHECK(mkr_lock_holder(h) == pid);
	int in = open(path, O_RDONLY), out = open(copy, O_WRONLY | O_CREAT | O_EXCL, 0600);
	REQUIRE(in >= 0 && out >= 0);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		CHECK(write(out, buf, (size_t)n) == n);
	close(in);
	close(out);
	alarm(30);
	mkr_heap *k = mkr_open_file(copy, 0, 0, 0);
	REQUIRE(k);
	CHECK_HEAP(k);
	CHECK(strcmp(mkr_to_ptr(k, mkr_root_get(k, 0)), "survives") == 0);
	CHECK(blocks_of(k, pid) == 2);
	CHECK(mkr_reclaim_owner(k, pid) == 2);
	CHECK_HEAP(k);
	alarm(0);
	mkr_close(k);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fd);
	CHECK_HEAP(h);
	mkr_close(h);
	unlink(path);
	unlink(copy);
}

static void cases(void)
{
	RUN(test_kill_holding_lock_before_any_change);
	RUN(test_kill_between_split_and_commit);
	RUN(test_kill_between_free_and_merge);
	RUN(test_kill_during_realloc_grow);
	RUN(test_others_go_on_after_kill);
	RUN(test_kill_at_many_points);
	RUN(test_thread_exit_holding_lock);
	RUN(test_file_left_locked_opens);
}

int main(void)
{
	return test_main(cases);
}
