/* Locking and waiting between the processes that share a region heap.
 *
 * The lock is a robust, process-shared pthread mutex in the header.  When its holder dies, even by SIGKILL,
 * the kernel marks the mutex and the next pthread_mutex_lock returns EOWNERDEAD: that process rebuilds
 * everything derived from the block headers (mk__rg_rebuild: free lists, start bitmap, counters, merges a
 * dead free left undone), marks the mutex consistent and carries on.  If the rebuild meets a damaged block
 * header the heap is flagged corrupt and later operations fail with EIO instead of walking garbage.
 *
 * Waiting uses a futex on a word of the region (not FUTEX_PRIVATE: the word is shared), so a sleeper costs
 * nothing and any process that maps the region can wake it. */
#include "region/layout.h"

#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* getpid() is a system call; the pid is cached and forgotten in the child of a fork. */
static pid_t cached_pid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void forget_pid(void) { __atomic_store_n(&cached_pid, 0, __ATOMIC_RELAXED); }
static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_pid); }

pid_t mk__rg_self(void)
{
	pid_t p = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);
	if (__builtin_expect(p == 0, 0)) {
		pthread_once(&atfork_once, register_atfork);
		p = getpid();
		__atomic_store_n(&cached_pid, p, __ATOMIC_RELAXED);
	}
	return p;
}

int mk__rg_init_lock(mkr_heap *h)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK); /* a re-entry (from a foreach callback) fails, not hangs */
	int rc = pthread_mutex_init(&h->hdr->lock.m, &a);
	pthread_mutexattr_destroy(&a);
	h->hdr->lock_holder = 0;
	if (rc) {
		mk__rg_fail(rc, "region heap: cannot set up the lock (%s)", strerror(rc));
		return -1;
	}
	return 0;
}

int mk__rg_lock(mkr_heap *h, int even_if_corrupt)
{
	struct rg_header *hd = h->hdr;
	int rc = pthread_mutex_lock(&hd->lock.m);
	if (rc == EOWNERDEAD) {
		hd->last_dead = hd->lock_holder;
		hd->recoveries++;
		if (mk__rg_rebuild(h) == 0)
			hd->flags &= ~RG_FLAG_CORRUPT;
		else
			hd->flags |= RG_FLAG_CORRUPT;
		pthread_mutex_consistent(&hd->lock.m);
	} else if (rc == EDEADLK) {
		mk__rg_fail(EDEADLK, "region heap: called again while this thread holds the heap's lock (from a foreach "
		                     "callback?)");
		return -1;
	} else if (rc) {
		mk__rg_fail(rc == ENOTRECOVERABLE ? EIO : rc, "region heap: the lock cannot be taken (%s)", strerror(rc));
		return -1;
	}
	__atomic_store_n(&hd->lock_holder, (uint32_t)mk__rg_self(), __ATOMIC_RELAXED);
	if (__builtin_expect(mk__region_hook != NULL, 0))
		mk__region_hook(RG_HOOK_LOCKED);
	if ((hd->flags & RG_FLAG_CORRUPT) && !even_if_corrupt) {
		mk__rg_unlock(h);
		mk__rg_fail(EIO, "region heap: damaged (a repair after a crash found a bad block header)");
		return -1;
	}
	return 0;
}

void mk__rg_unlock(mkr_heap *h)
{
	__atomic_store_n(&h->hdr->lock_holder, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&h->hdr->lock.m);
}

pid_t mkr_lock_holder(const mkr_heap *h)
{
	return h ? (pid_t)__atomic_load_n(&h->hdr->lock_holder, __ATOMIC_RELAXED) : 0;
}

static int word_inside(const mkr_heap *h, const uint32_t *word)
{
	if (!h || !word || (uintptr_t)word % 4 ||
	    (const char *)word < h->base || (const char *)word + 4 > h->base + h->region_size) {
		mk__rg_fail(EINVAL, "region heap: a wait word must be 4-byte aligned and inside the region");
		return 0;
	}
	return 1;
}

int mkr_wait(mkr_heap *h, const uint32_t *word, uint32_t expected, long timeout_ms)
{
	if (!word_inside(h, word))
		return -1;
	struct timespec ts, *limit = NULL;
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = timeout_ms % 1000 * 1000000L;
		limit = &ts;
	}
	if (syscall(SYS_futex, word, FUTEX_WAIT, expected, limit, NULL, 0) == 0 || errno == EAGAIN || errno == EINTR)
		return 0;
	if (errno == ETIMEDOUT)
		mk__rg_fail(ETIMEDOUT, "region heap: no wake-up within %ld ms", timeout_ms);
	else
		mk__rg_fail(errno, "region heap: futex wait failed (%s)", strerror(errno));
	return -1;
}

int mkr_notify(mkr_heap *h, const uint32_t *word, int n)
{
	if (!word_inside(h, word))
		return -1;
	long woke = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
	if (woke < 0) {
		mk__rg_fail(errno, "region heap: futex wake failed (%s)", strerror(errno));
		return -1;
	}
	return (int)woke;
}
