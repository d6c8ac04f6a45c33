/* Producer: sends COUNT messages through the shared heap NAME, each allocated in the heap by this process
 * and freed by the consumer.  Usage: region-producer NAME COUNT  (see examples/run-region-demo.sh) */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "region-queue.h"

int main(int argc, char **argv)
{
	mkr_heap *h;
	uint32_t count, sleeps = 0;
	struct queue *q = queue_open(argc, argv, &h, &count);
	if (!q)
		return argc == 3 ? 1 : 2;
	for (uint32_t seq = 0; seq < count; seq++) {
		uint32_t taken;
		while (seq - (taken = load(&q->taken)) == QUEUE_SLOTS) { /* full: sleep until the consumer takes one */
			if (mkr_wait(h, &q->taken, taken, 10000) != 0) {
				fprintf(stderr, "producer: %s\n", mkr_last_error());
				return 1;
			}
			sleeps++;
		}
		char text[96];
		int len = snprintf(text, sizeof text, "message %u from process %d", seq, (int)getpid()) + 1;
		struct message *m;
		while (!(m = mkr_alloc(h, sizeof *m + (size_t)len))) /* heap full: wait for frees */
			if (mkr_wait(h, &q->taken, load(&q->taken), 10) != 0 && errno != ETIMEDOUT)
				return 1;
		m->seq = seq;
		m->len = (uint32_t)len;
		memcpy(m->text, text, (size_t)len);
		q->slot[seq % QUEUE_SLOTS] = mkr_to_off(h, m);
		store(&q->put, seq + 1);
		mkr_notify(h, &q->put, 1);
	}
	store(&q->put, count | QUEUE_DONE);
	mkr_notify(h, &q->put, 1);
	printf("producer: sent %u messages, slept %u times waiting for room\n", count, sleeps);
	mkr_close(h);
	return 0;
}
