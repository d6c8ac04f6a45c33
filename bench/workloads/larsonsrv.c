/* Larson's server as its paper runs it: each of a few slots holds a worker thread and an array of blocks
 * (16-1000 bytes, as in the sized variant); a worker replaces random blocks of its array for a number of
 * rounds, then starts its successor, hands it the array and exits.  The successor frees what its
 * predecessor allocated (blocks of a heap whose thread has gone) and allocates its own.  Threads are
 * replaced continually, so thread start and exit and frees into abandoned heaps are on the hot path.
 * Arguments: steps in thousands (default 4000, split between slots), slots (default 2).
 * Self-check: every block is stamped and verified before it is freed. */
#include <pthread.h>
#include "wl.h"

#define BLOCKS 1000
#define ROUNDS 10000   /* steps a worker makes before it hands over */

struct block { uint32_t size, tag; };
struct slot {
	struct block *b[BLOCKS];
	long left;          /* steps still to make in this slot */
	wl_rng r;
	uint64_t sum;
};

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int running;   /* slots whose chain of workers has not ended */

static void start(struct slot *s);

static void release(struct block *b, uint64_t *sum)
{
	wl_verify(b + 1, b->size, b->tag);
	*sum += b->size;
	free(b);
}

static void *worker(void *arg)
{
	struct slot *s = arg;
	long n = s->left < ROUNDS ? s->left : ROUNDS;
	for (long k = 0; k < n; k++) {
		unsigned i = (unsigned)wl_below(&s->r, BLOCKS);
		if (s->b[i])
			release(s->b[i], &s->sum);
		uint32_t size = 16 + (uint32_t)wl_below(&s->r, 985);
		struct block *b = wl_malloc(sizeof *b + size);
		b->size = size;
		b->tag = (uint32_t)wl_next(&s->r);
		wl_stamp(b + 1, size, b->tag);
		s->b[i] = b;
	}
	s->left -= n;
	if (s->left > 0) {   /* the successor takes the array; this thread's heap goes with its exit */
		start(s);
		return NULL;
	}
	for (unsigned k = 0; k < BLOCKS; k++)
		if (s->b[k])
			release(s->b[k], &s->sum);
	pthread_mutex_lock(&done_lock);   /* the slot's last worker */
	running--;
	pthread_cond_signal(&done_cond);
	pthread_mutex_unlock(&done_lock);
	return NULL;
}

static void start(struct slot *s)
{
	pthread_t t;
	if (pthread_create(&t, NULL, worker, s))
		WL_FAIL("pthread_create");
	pthread_detach(t);
}

int main(int argc, char **argv)
{
	long steps = wl_arg(argc, argv, 1, 4000) * 1000;
	int slots = (int)wl_arg(argc, argv, 2, 2);
	struct slot *s = calloc((size_t)slots, sizeof *s);
	if (!s)
		WL_FAIL("calloc");
	for (int t = 0; t < slots; t++) {
		s[t].left = steps / slots + (t < steps % slots);
		s[t].r = wl_seed(51 + (uint64_t)t);
	}
	running = slots;
	for (int t = 0; t < slots; t++)
		start(&s[t]);
	pthread_mutex_lock(&done_lock);
	while (running > 0)
		pthread_cond_wait(&done_cond, &done_lock);
	pthread_mutex_unlock(&done_lock);
	uint64_t sum = 0;
	for (int t = 0; t < slots; t++)
		sum += s[t].sum;
	free(s);
	if (sum == 0)
		WL_FAIL("no work done");
	wl_ok(sum);
	return 0;
}
