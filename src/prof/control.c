/* When the profiler and the heap maps run: initialisation, fork, exit, the signal, growth dumps, and the
 * public calls mk_prof_dump and mk_heap_map.
 *
 * A signal handler does nothing but sem_post (async-signal-safe): the dump thread, started at load time
 * when MEMKIT_PROF_SIGNAL or MEMKIT_MAP_INTERVAL asks for it, wakes and writes the profile and the map in an
 * ordinary context, where taking memkit's locks cannot deadlock with the interrupted thread (which may
 * hold them).  The same thread samples RSS and the heap's figures every MEMKIT_MAP_INTERVAL ms for the time
 * view.  A fork's child inherits the options, the samples and the signal handler but not the thread:
 * fork_child starts a new one, so that the child's profile and map are written on the signal, and its
 * time view sampled, as its parent's are (and its own profile, leak report and map at exit). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memkit.h"
#include "prof/map.h"
#include "prof/prof.h"

#define EXPORT __attribute__((visibility("default")))

static sem_t wake;
static _Atomic int thread_started;
static _Atomic int atfork_registered;   /* mk__init runs again in a child forked during initialisation */
static _Atomic int dumping;            /* a growth dump is being written */
static double next_growth;

static void start_dump_thread(void);

static void fork_prepare(void) { mk__prof_lock(); }
static void fork_parent(void) { mk__prof_unlock(); }
/* Runs after the engine's child handler (registered first), so memkit works again when the thread is
 * made.  A growth dump the parent was writing is not the child's. */
static void fork_child(void)
{
	mk__prof_reset_lock();
	atomic_store(&dumping, 0);
	mk__prof_names_after_fork();
	if (atomic_exchange(&thread_started, 0))
		start_dump_thread();
}

void mk__prof_init(void)
{
	mk__prof_read_options();
	mk__prof_heap_init();
	if (mk__prof_opt.prof)
		next_growth = (double)mk__prof_opt.growth;
	/* Registered after the engine's handlers, so ours run first at a fork: the profiler's lock is taken
	 * before the engine's, the order in which a sampling malloc takes them. */
	if (!atomic_exchange(&atfork_registered, 1))
		pthread_atfork(fork_prepare, fork_parent, fork_child);
	mk__prof_on = mk__prof_opt.prof != 0;
}

static void dump_default(void)
{
	char path[320];
	mk__prof_next_name(path, sizeof path);
	if (mk__prof_write(path, true) != 0)
		mk__message("memkit: cannot write the heap profile %s: %s\n", path, strerror(errno));
}

void mk__prof_after_sample(void)
{
	if (!mk__prof_opt.growth)
		return;
	mk__prof_lock();
	bool due = mk__prof_live_estimate() >= next_growth;
	if (due)
		next_growth = mk__prof_live_estimate() + (double)mk__prof_opt.growth;
	mk__prof_unlock();
	int expect = 0;
	if (due && atomic_compare_exchange_strong(&dumping, &expect, 1)) {
		dump_default();
		atomic_store(&dumping, 0);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	sem_post(&wake);
	errno = saved;
}

static void *dump_thread(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);   /* the handler runs on the program's threads */
	long interval = mk__prof_opt.map_interval;
	for (;;) {
		int r;
		if (interval > 0) {
			struct timespec t;
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_sec += interval / 1000;
			t.tv_nsec += (interval % 1000) * 1000000L;
			if (t.tv_nsec >= 1000000000L) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000L;
			}
			r = sem_timedwait(&wake, &t);
		} else {
			r = sem_wait(&wake);
		}
		if (r != 0 && errno == ETIMEDOUT) {
			mk__map_sample_time();
			continue;
		}
		if (r != 0)
			continue;
		if (mk__prof_on)
			dump_default();
		if (mk__prof_opt.map[0])
			mk__map_write_default();
	}
	return NULL;
}

/* The semaphore starts at 0: a signal that came before (in the parent, for a fork's child) is the
 * parent's to answer. */
static void start_dump_thread(void)
{
	if (sem_init(&wake, 0, 0) != 0)
		return;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, dump_thread, NULL) == 0)
		atomic_store(&thread_started, 1);
	pthread_attr_destroy(&attr);
}

/* At load time (after libc is initialised): the unwinder's first call, the signal handler and the thread.
 * With none of them asked for, nothing happens here: memkit still initialises inside the first malloc,
 * reading its options then (tests set them in a child before its first allocation). */
__attribute__((constructor)) static void prof_start(void)
{
	if (!mk__prof_wanted_at_load())
		return;
	mk__init();                /* reads the options (src/engine/options.c) */
	if (mk__prof_on)
		mk__prof_stack_warm_up();
	if (!mk__prof_opt.signal && mk__prof_opt.map_interval <= 0)
		return;
	if (mk__prof_opt.map_interval > 0)
		mk__map_sample_time();
	start_dump_thread();
	if (mk__prof_opt.signal && atomic_load(&thread_started)) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction((int)mk__prof_opt.signal, &sa, NULL);
	}
}

__attribute__((destructor)) static void prof_stop(void)
{
	if (mk__prof_on && mk__prof_opt.at_exit)
		dump_default();
	if (mk__prof_on && mk__prof_opt.leaks)
		mk__prof_leak_report(2);
	if (mk__prof_opt.map[0]) {
		if (mk__prof_opt.map_interval > 0)
			mk__map_sample_time();
		mk__map_write_default();
	}
}

EXPORT int mk_prof_dump(const char *path)
{
	mk__init();
	if (!mk__prof_on) {
		errno = ENOTSUP;
		return -1;
	}
	if (path)
		return mk__prof_write(path, true);
	char name[320];
	mk__prof_next_name(name, sizeof name);
	return mk__prof_write(name, true);
}
