/* Producer/consumer: in each pair, one thread only allocates and the other only frees, through a bounded
 * queue.  An allocator that cannot hand remote frees back to the producer grows without bound here, so the
 * runner reports peak RSS beside the time; the program also prints its own peak as a metric.
 * Arguments: messages in thousands (default 2000, split between pairs), threads (default 2; pairs =
 * threads/2; with 1 thread, one thread produces a queue-full and consumes it in turn: the same work
 * without a second thread, the baseline of the scaling runs).
 * Self-check: the consumer verifies each message's stamp and sequence number. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include "wl.h"

#define QUEUE 1024  /* a power of two */

struct msg { uint64_t seq; uint32_t size, tag; };

struct pair {
	_Alignas(64) _Atomic uint64_t head;   /* next to pop: written by the consumer */
	_Alignas(64) _Atomic uint64_t tail;   /* next to push: written by the producer */
	_Alignas(64) struct msg *ring[QUEUE];
	long messages;
	uint64_t seed, sum;
	size_t peak_rss;
};

/* Allocates message i and queues it, waiting while the queue is full. */
static void produce_one(struct pair *p, wl_rng *r, long i)
{
	uint32_t size = 16 + (uint32_t)wl_below(r, 1009);
	struct msg *m = wl_malloc(sizeof *m + size);
	m->seq = (uint64_t)i;
	m->size = size;
	m->tag = (uint32_t)wl_next(r);
	wl_stamp(m + 1, size, m->tag);
	uint64_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
	while (t - atomic_load_explicit(&p->head, memory_order_acquire) == QUEUE)
		sched_yield();
	p->ring[t % QUEUE] = m;
	atomic_store_explicit(&p->tail, t + 1, memory_order_release);
}

/* Takes message i off the queue (waiting while it is empty), checks it and frees it. */
static void consume_one(struct pair *p, long i)
{
	uint64_t h = atomic_load_explicit(&p->head, memory_order_relaxed);
	while (atomic_load_explicit(&p->tail, memory_order_acquire) == h)
		sched_yield();
	struct msg *m = p->ring[h % QUEUE];
	atomic_store_explicit(&p->head, h + 1, memory_order_release);
	if (m->seq != (uint64_t)i)
		WL_FAIL("message %ld arrived as %llu", i, (unsigned long long)m->seq);
	wl_verify(m + 1, m->size, m->tag);
	p->sum += m->size;
	free(m);
	if ((i & 0xffff) == 0) {
		size_t rss = wl_rss();
		if (rss > p->peak_rss)
			p->peak_rss = rss;
	}
}

static void *produce(void *arg)
{
	struct pair *p = arg;
	wl_rng r = wl_seed(p->seed);
	for (long i = 0; i < p->messages; i++)
		produce_one(p, &r, i);
	return NULL;
}

static void *consume(void *arg)
{
	struct pair *p = arg;
	for (long i = 0; i < p->messages; i++)
		consume_one(p, i);
	return NULL;
}

/* One thread plays both parts, a queue-full at a time. */
static void solo(struct pair *p)
{
	wl_rng r = wl_seed(p->seed);
	for (long i = 0; i < p->messages; i += QUEUE) {
		long n = p->messages - i < QUEUE ? p->messages - i : QUEUE;
		for (long k = 0; k < n; k++)
			produce_one(p, &r, i + k);
		for (long k = 0; k < n; k++)
			consume_one(p, i + k);
	}
}

int main(int argc, char **argv)
{
	long messages = wl_arg(argc, argv, 1, 2000) * 1000;
	int threads = (int)wl_arg(argc, argv, 2, 2);
	int pairs = threads > 1 ? threads / 2 : 1;
	struct pair *p = wl_malloc(sizeof *p * (size_t)pairs);
	pthread_t tid[2 * pairs];
	for (int i = 0; i < pairs; i++) {
		memset(&p[i], 0, sizeof p[i]);
		p[i].messages = messages / pairs;
		p[i].seed = (uint64_t)i + 3;
		if (threads == 1) {
			solo(&p[i]);
			continue;
		}
		if (pthread_create(&tid[2 * i], NULL, produce, &p[i]) ||
		    pthread_create(&tid[2 * i + 1], NULL, consume, &p[i]))
			WL_FAIL("pthread_create");
	}
	uint64_t sum = 0;
	size_t peak = 0;
	for (int i = 0; i < pairs; i++) {
		if (threads > 1) {
			pthread_join(tid[2 * i], NULL);
			pthread_join(tid[2 * i + 1], NULL);
		}
		sum += p[i].sum;
		if (p[i].peak_rss > peak)
			peak = p[i].peak_rss;
	}
	free(p);
	if (sum == 0)
		WL_FAIL("no work done");
	printf("metric sampled_peak_rss_kib %zu\n", peak / 1024);
	wl_ok(sum);
	return 0;
}
