/* Cross-thread traffic of small and medium blocks (the shape of rpmalloc's own benchmark): each thread
 * keeps a moving window of blocks of 8 B-16 KiB (log-uniform); each step replaces the oldest block of
 * the window, and the block it replaces is not freed by its thread but collected into a batch of 32 that
 * goes to the next thread (in a ring), which frees the batches it receives.  So every free is a remote
 * free, arriving in bursts, and the window's size classes drift as the window moves.
 * Arguments: steps in thousands (default 2000, split between threads), threads (default 2).
 * Self-check: every block is stamped when allocated and verified by the thread that frees it. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include "wl.h"

#define WINDOW 2048
#define BATCH 32
#define MAX_INBOX 64   /* batches waiting for a thread before its senders slow down */

struct item { void *p; uint32_t size, tag; };
struct batch { struct batch *next; int n; struct item item[BATCH]; };

struct peer {
	pthread_mutex_t lock;
	struct batch *inbox;
	_Atomic int depth;
	struct wl_job *job;
	int index;
};

static struct peer *peers;
static int npeers;
static _Atomic int producing;   /* threads still making blocks */

static void drain(struct peer *me, uint64_t *sum)
{
	if (!atomic_load_explicit(&me->depth, memory_order_relaxed))
		return;
	pthread_mutex_lock(&me->lock);
	struct batch *b = me->inbox;
	me->inbox = NULL;
	atomic_store(&me->depth, 0);
	pthread_mutex_unlock(&me->lock);
	while (b) {
		struct batch *next = b->next;
		for (int i = 0; i < b->n; i++) {
			wl_verify(b->item[i].p, b->item[i].size, b->item[i].tag);
			*sum += b->item[i].size;
			free(b->item[i].p);
		}
		free(b);
		b = next;
	}
}

static void send(struct peer *me, struct batch *b, uint64_t *sum)
{
	struct peer *to = &peers[(me->index + 1) % npeers];
	while (atomic_load_explicit(&to->depth, memory_order_relaxed) > MAX_INBOX) {
		drain(me, sum);
		sched_yield();
	}
	pthread_mutex_lock(&to->lock);
	b->next = to->inbox;
	to->inbox = b;
	atomic_fetch_add(&to->depth, 1);
	pthread_mutex_unlock(&to->lock);
}

static uint32_t pick_size(wl_rng *r)
{
	unsigned lo = 8u << wl_below(r, 11);   /* 8 B .. 8 KiB, then up to twice that */
	return lo + (uint32_t)wl_below(r, lo + 1);
}

static void *run(void *arg)
{
	struct peer *me = arg;
	struct wl_job *j = me->job;
	wl_rng r = wl_seed(j->seed);
	static __thread struct item window[WINDOW];
	struct batch *out = wl_malloc(sizeof *out);
	out->n = 0;
	for (long s = 0; s < j->work; s++) {
		struct item *it = &window[s % WINDOW];
		if (it->p) {
			out->item[out->n++] = *it;
			if (out->n == BATCH) {
				send(me, out, &j->sum);
				out = wl_malloc(sizeof *out);
				out->n = 0;
			}
		}
		it->size = pick_size(&r);
		it->tag = (uint32_t)wl_next(&r);
		it->p = wl_malloc(it->size);
		wl_stamp(it->p, it->size, it->tag);
		drain(me, &j->sum);
	}
	for (int i = 0; i < WINDOW; i++)
		if (window[i].p) {
			if (out->n == BATCH) {
				send(me, out, &j->sum);
				out = wl_malloc(sizeof *out);
				out->n = 0;
			}
			out->item[out->n++] = window[i];
		}
	send(me, out, &j->sum);
	atomic_fetch_sub(&producing, 1);
	while (atomic_load(&producing) > 0) {   /* until no one can send here any more */
		drain(me, &j->sum);
		sched_yield();
	}
	drain(me, &j->sum);
	return NULL;
}

int main(int argc, char **argv)
{
	long steps = wl_arg(argc, argv, 1, 2000) * 1000;
	npeers = (int)wl_arg(argc, argv, 2, 2);
	struct peer p[npeers];
	struct wl_job job[npeers];
	pthread_t tid[npeers];
	peers = p;
	atomic_store(&producing, npeers);
	for (int t = 0; t < npeers; t++) {
		job[t] = (struct wl_job){ steps / npeers + (t < steps % npeers), 21 + (uint64_t)t, 0 };
		p[t] = (struct peer){ .inbox = NULL, .job = &job[t], .index = t };
		pthread_mutex_init(&p[t].lock, NULL);
	}
	for (int t = 0; t < npeers; t++)
		if (pthread_create(&tid[t], NULL, run, &p[t]))
			WL_FAIL("pthread_create");
	uint64_t sum = 0;
	for (int t = 0; t < npeers; t++) {
		pthread_join(tid[t], NULL);
		sum += job[t].sum;
	}
	if (sum == 0)
		WL_FAIL("no work done");
	wl_ok(sum);
	return 0;
}
