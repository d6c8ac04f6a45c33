/* The profiler across fork (issue 11: "the child profiles on or off as configured, never deadlocks"):
 * a child answers the dump signal with its own profile and map, so does a child of a child, the
 * child's time view goes on being sampled, and a fork while another thread is between a sample's stack
 * capture and its record (stopped there by the OS layer's named point "prof.sample") gives a child that
 * samples, dumps and passes mk_check.  Before src/prof/control.c restarted the dump thread in the child,
 * the first three failed: the signal reached the handler, but nothing was left to write the profile.
 *
 * Built on the mk_ build (libmemkit-mk.a, for mk__os_set_point_hook) with -rdynamic, so that the
 * profile names this file's functions.  Runs itself again with the options set when started without
 * them (the dump thread is started at load time). */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memkit.h"
#include "os/os.h"
#include "tests/common/test.h"
#include "tests/prof/profile.h"

#define NOINLINE __attribute__((noinline))
static const char *dir;

/* 2 MiB in 4 KiB blocks, kept: at a 4 KiB rate about 500 samples. */
static void *kept[512];
NOINLINE void site_forked(void)
{
	for (int i = 0; i < 512; i++)
		kept[i] = mk_malloc(4096);
}

/* Whether `path` becomes a profile naming site_forked within `ms` (it is written by another thread). */
static int profile_appears(const char *path, long ms)
{
	for (long t = 0; t < ms; t += 20) {
		struct profile p;
		if (prof_read(&p, path) == 0) {
			double e = prof_estimate(&p, "site_forked", 0);
			prof_free(&p);
			if (e > 0)
				return 1;
		}
		test_sleep_ms(20);
	}
	return 0;
}

/* The points of the map's time view (its first polyline), or -1. */
static int time_points(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strstr(buf, "<polyline");
	p = p ? strstr(p, "points=\"") : NULL;
	if (!p)
		return -1;
	int commas = 0;
	for (p += 8; *p && *p != '"'; p++)
		commas += *p == ',';
	return commas;
}

/* Waits for pid for up to `ms`, killing it after: its exit status, or -1. */
static int wait_child(pid_t pid, long ms)
{
	int st = 0;
	for (long t = 0; t < ms; t += 10) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		test_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	fprintf(stderr, "  child %d did not finish in %ld ms (a deadlock?)\n", (int)pid, ms);
	return -1;
}

/* Forks a child that allocates site_forked and waits for the profile and map its dump thread writes on
 * SIGUSR2 (sent by this process); with depth > 1 the child first does the same with a child of its own.
 * Returns the child's exit status (0: both files came, and so for every descendant). */
static int signalled_child(int depth, long sample_ms)
{
	int ready[2];
	if (pipe(ready) != 0)
		return -1;
	/* The points this process has at the fork (its map now), which the child inherits: the child's own
	 * sampler must add to them. */
	char before[256];
	snprintf(before, sizeof before, "%s/before.%d.svg", dir, (int)getpid());
	int inherited = mk_heap_map(before) == 0 ? time_points(before) : -1;
	int want = inherited + (int)(sample_ms / 10 / 4);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		int r = depth > 1 ? signalled_child(depth - 1, sample_ms) : 0;
		site_forked();
		test_sleep_ms(sample_ms);            /* the time view's sampler runs meanwhile */
		char heap[256], map[256];
		snprintf(heap, sizeof heap, "%s/f.%d.heap", dir, (int)getpid());   /* MEMKIT_PROF_FILE */
		snprintf(map, sizeof map, "%s/m.%d.svg", dir, (int)getpid());      /* MEMKIT_MAP */
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		int ok = profile_appears(heap, 10000);
		int points = -1;   /* the map comes after the profile */
		for (long t = 0; ok && t < 10000 && points < want; t += 20) {
			points = time_points(map);
			if (points < want)
				test_sleep_ms(20);
		}
		if (!ok)
			fprintf(stderr, "  pid %d (depth %d): no profile %s after the signal\n", (int)getpid(), depth, heap);
		else if (points < want || inherited < 0)
			fprintf(stderr, "  pid %d: map %s has %d time points (%d at the fork, %ld ms at 10 ms since)\n",
			        (int)getpid(), map, points, inherited, sample_ms);
		_exit(r != 0 ? r : !ok ? 1 : points < want || inherited < 0 ? 2 : mk_check() != 0 ? 4 : 0);
	}
	close(ready[1]);
	char c;
	ssize_t got = read(ready[0], &c, 1);
	close(ready[0]);
	if (got == 1)
		kill(pid, SIGUSR2);
	return wait_child(pid, 30000);
}

static void test_child_dumps_on_signal(void)
{
	CHECK(signalled_child(1, 0) == 0);
}

static void test_grandchild_dumps_on_signal(void)
{
	CHECK(signalled_child(2, 0) == 0);
}

/* 400 ms in the child at MEMKIT_MAP_INTERVAL=10: at least 10 points of its own in the map (40 on an idle
 * machine), more than the parent's map had at the fork. */
static void test_child_samples_time_view(void)
{
	CHECK(signalled_child(1, 400) == 0);
}

/* ---- fork while another thread is between a sample's capture and its record ---- */

static _Atomic int stopped, released;
static pid_t armed_pid;

static void stop_hook(const char *name)
{
	if (getpid() != armed_pid || strcmp(name, "prof.sample") != 0 || atomic_exchange(&stopped, 1))
		return;
	while (!atomic_load(&released))
		test_sleep_ms(1);
}

static _Atomic int churn_stop;
static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&churn_stop)) {   /* samples come every 4 KiB: stops at the first */
		void *p = mk_malloc(256);
		mk_free(p);
	}
	return NULL;
}

static void test_fork_mid_sample(void)
{
	armed_pid = getpid();
	atomic_store(&stopped, 0);
	atomic_store(&released, 0);
	mk__os_set_point_hook(stop_hook);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, churn, NULL) == 0);
	for (int i = 0; i < 5000 && !atomic_load(&stopped); i++)
		test_sleep_ms(1);
	CHECK(atomic_load(&stopped));
	pid_t pid = fork();
	if (pid == 0) {
		site_forked();
		char path[256];
		snprintf(path, sizeof path, "%s/mid.%d.heap", dir, (int)getpid());
		struct profile p;
		int ok = mk_prof_dump(path) == 0 && prof_read(&p, path) == 0;
		ok = ok && prof_estimate(&p, "site_forked", 1) > 0 && mk_check() == 0;
		_exit(ok ? 0 : 1);
	}
	CHECK(wait_child(pid, 20000) == 0);
	atomic_store(&released, 1);
	atomic_store(&churn_stop, 1);
	pthread_join(t, NULL);
	mk__os_set_point_hook(NULL);
	CHECK(mk_check() == 0);
}

/* ---- fork while another thread holds the loader's list lock (dl_iterate_phdr) ---- */

/* glibc (2.36) resets the loader's main lock in a fork's child but not the one dl_iterate_phdr takes: a
 * child forked while another thread was inside dl_iterate_phdr (an exception's unwinder, the parent's
 * own dump naming its addresses) may never take it.  The child's dump must not need it. */
static _Atomic int iterate_stop;
static int slow_callback(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)info, (void)size, (void)arg;
	for (volatile int k = 0; k < 20000; k++)
		;
	return 0;
}

static void *iterate(void *arg)
{
	(void)arg;
	while (!atomic_load(&iterate_stop))
		dl_iterate_phdr(slow_callback, NULL);
	return NULL;
}

static void test_fork_while_iterating_objects(void)
{
	atomic_store(&iterate_stop, 0);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, iterate, NULL) == 0);
	test_sleep_ms(10);
	for (int i = 0; i < 5; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			site_forked();
			char path[256];
			snprintf(path, sizeof path, "%s/iter.%d.heap", dir, (int)getpid());
			struct profile p;
			int ok = mk_prof_dump(path) == 0 && prof_read(&p, path) == 0;
			ok = ok && prof_estimate(&p, "site_forked", 1) > 0;
			_exit(ok ? 0 : 1);
		}
		CHECK(wait_child(pid, 10000) == 0);
	}
	atomic_store(&iterate_stop, 1);
	pthread_join(t, NULL);
}

static void cases(void)
{
	RUN(test_child_dumps_on_signal);
	RUN(test_grandchild_dumps_on_signal);
	RUN(test_child_samples_time_view);
	RUN(test_fork_mid_sample);
	RUN(test_fork_while_iterating_objects);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)prof_bound;   /* profile.h's, for the other tests */
	if (!getenv("MK_PROF_FORK_DIR")) {
		char d[64];
		snprintf(d, sizeof d, "/tmp/memkit-prof-fork.%ld", (long)getpid());
		if (mkdir(d, 0755) != 0 && errno != EEXIST)
			return 1;
		char file[128], map[128];
		snprintf(file, sizeof file, "%s/f.%%p.heap", d);
		snprintf(map, sizeof map, "%s/m.%%p.svg", d);
		setenv("MK_PROF_FORK_DIR", d, 1);
		setenv("MEMKIT_PROF", "1", 1);
		setenv("MEMKIT_PROF_RATE", "4096", 1);
		setenv("MEMKIT_PROF_SIGNAL", "SIGUSR2", 1);
		setenv("MEMKIT_PROF_FILE", file, 1);
		setenv("MEMKIT_PROF_AT_EXIT", "0", 1);
		setenv("MEMKIT_PROF_LEAKS", "0", 1);
		setenv("MEMKIT_MAP", map, 1);
		setenv("MEMKIT_MAP_INTERVAL", "10", 1);
		execv("/proc/self/exe", argv);
		perror("execv");
		return 1;
	}
	dir = getenv("MK_PROF_FORK_DIR");
	int r = test_main(cases);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		r = 1;
	fflush(stdout);
	_exit(r);     /* without the exit-time map, whose directory is gone */
}
