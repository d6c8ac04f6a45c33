/* Process-wide state: one-time initialisation, options, error reports, fork.
 *
 * Initialisation runs inside the first malloc, possibly before libc's constructors and from inside the
 * dynamic loader's own calls, so it may use nothing that allocates: options are read with secure_getenv
 * (which does not; options.c), messages are formatted into a stack buffer and written with write(2). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "os/os.h"
#include "prof/prof.h"

#if MK_PROF_COUNT
__thread mk_tls mk__tls __attribute__((tls_model("initial-exec"))) = { (mk_heap *)&mk__empty_heap, 0 };
#else
__thread mk_heap *mk__tls_heap __attribute__((tls_model("initial-exec"))) = (mk_heap *)&mk__empty_heap;
#endif
uint8_t mk__segmap[(size_t)1 << MK_SEGMAP_BITS];
uintptr_t mk__secret;
/* Set once our handlers are known to be registered: by the thread that registered them, or by the child
 * handler itself (a fork right after the registration, before the flag was set, still runs it). */
static _Atomic int atfork_registered;

static void atfork_prepare(void) { mk__lock_all(); }
static void atfork_parent(void) { mk__unlock_all(); }
static void atfork_child(void)
{
	atomic_store(&atfork_registered, 1);
	mk__segments_reset_lock();
	mk__huge_reset_lock();
	mk__heaps_after_fork_child();
}

/* INIT_NONE, INIT_DONE, or the pid of the process whose thread is running it.  The first thread in runs it;
 * others wait.  A fork while it runs gives a child in which that thread does not exist: the child, seeing
 * a pid not its own, runs it again (nothing had been allocated yet, and no lock of ours was held). */
#define INIT_NONE 0L
#define INIT_DONE (-1L)
static _Atomic long init_state;
static __thread int init_running;   /* this thread is inside mk__init (pthread_atfork may call malloc) */

void mk__init(void)
{
	if (mk_likely(atomic_load_explicit(&init_state, memory_order_acquire) == INIT_DONE) || init_running)
		return;
	long me = (long)getpid();
	long state = INIT_NONE;
	while (!atomic_compare_exchange_strong(&init_state, &state, me)) {
		if (state == INIT_DONE)
			return;
		if (state != INIT_NONE && state != me)
			continue;           /* a fork's child: take it over (state now holds the stale pid) */
		sched_yield();
		state = INIT_NONE;
		me = (long)getpid();
	}
	init_running = 1;
	mk__os_point("init.start");
	uintptr_t secret = 0;
	const void *random = (const void *)getauxval(AT_RANDOM);
	if (random)
		memcpy(&secret, random, sizeof secret);
	secret ^= (uintptr_t)&secret ^ ((uintptr_t)mk__now_ms() << 32);
	mk__secret = secret | 1; /* never 0, so a zeroed cookie never matches */
#if MK_SECURE
	/* The seal's top byte (p[-1]) is then 0x80 or above in every live header: a one-byte underflow with
	 * a smaller value always breaks it (docs/hardening.md). */
	mk__secret |= (uintptr_t)1 << 63;
#endif
	mk__classes_init();
	mk__options_read();
	mk__stats_init();
	/* The handlers go in before any other thread may allocate (and take our locks); pthread_atfork may
	 * call malloc, which this thread may do already (init_running): classes and options are ready. */
	mk__os_point("init.before_atfork");
	if (!atomic_load(&atfork_registered) && pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0)
		atomic_store(&atfork_registered, 1);
	mk__prof_init();   /* after the fork handlers: see src/prof/control.c */
	init_running = 0;
	atomic_store_explicit(&init_state, INIT_DONE, memory_order_release);
	if (mk__opt.help)
		mk__options_print_help();
	if (mk__opt.verbose)
		mk__options_print_values();
}

void mk__engine_start(void) { mk__init(); }

uint64_t mk__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void mk__lock_all(void)
{
	mk__heaps_lock();
	mk__segments_lock();
	mk__huge_lock();
}

void mk__unlock_all(void)
{
	mk__huge_unlock();
	mk__segments_unlock();
	mk__heaps_unlock();
}

void mk__message(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	ssize_t w = write(2, buf, (size_t)n);
	(void)w;
}

/* MEMKIT_VERBOSE: where a pointer that could not be freed lies, on a line after the error. */
static void explain(const void *p)
{
	if (!mk__is_ours(p)) {
		size_t huge = mk__huge_usable(p);
		if (huge)
			mk__message("memkit:   %p is a huge block of %zu bytes\n", p, huge);
		else
			mk__message("memkit:   %p is in no memkit segment and is no live huge block%s\n", p,
			            mk__huge_was_freed(p) ? " (a freed one, still cached)" : "");
		return;
	}
	mk_span *s = mk__span_of(mk__segment_of(p), p);
	uint8_t state = MK_LOAD(s->state);
	if (state != MK_SPAN_ACTIVE && state != MK_SPAN_FULL) {
		mk__message("memkit:   %p is in a memkit segment, in %s\n", p,
		            state == MK_SPAN_FREE ? "free memory" : "the segment's header");
		return;
	}
	uintptr_t off = (uintptr_t)p - s->start;
	mk__message("memkit:   %p is in a span of %u-byte blocks at %p, %zu bytes into the block at %p\n", p,
	            s->block_size, (void *)s->start, (size_t)(off % s->block_size),
	            (void *)(s->start + off - off % s->block_size));
}

void mk__fatal(const char *what, const void *p)
{
	mk__message("memkit: %s %p\n", what, p);
	if (mk__opt.verbose)
		explain(p);
	abort();
}

