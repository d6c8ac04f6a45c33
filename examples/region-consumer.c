/* Consumer: receives the producer's messages from the shared heap NAME in order, verifies and frees each
 * (a block another process allocated), sleeps while the queue is empty, and removes the heap at the end.
 * Usage: region-consumer NAME COUNT  (see examples/run-region-demo.sh) */
#include <stdlib.h>
#include <string.h>

#include "region-queue.h"

int main(int argc, char **argv)
{
	mkr_heap *h;
	uint32_t count, seq = 0, sleeps = 0, bad = 0;
	struct queue *q = queue_open(argc, argv, &h, &count);
	if (!q)
		return argc == 3 ? 1 : 2;
	pid_t producer = 0;
	for (;;) {
		uint32_t put = load(&q->put);
		if ((put & ~QUEUE_DONE) == seq) {
			if (put & QUEUE_DONE)
				break;
			if (mkr_wait(h, &q->put, put, 10000) != 0) { /* empty: sleep until the producer puts one */
				fprintf(stderr, "consumer: %s\n", mkr_last_error());
				return 1;
			}
			sleeps++;
			continue;
		}
		struct message *m = mkr_to_ptr(h, q->slot[seq % QUEUE_SLOTS]);
		char want[32];
		snprintf(want, sizeof want, "message %u ", seq);
		if (!m || m->seq != seq || strncmp(m->text, want, strlen(want)) != 0)
			bad++;
		producer = mkr_owner(h, m);
		if (seq == 0 || seq + 1 == count)
			printf("consumer: got \"%s\"\n", m ? m->text : "(nothing)");
		if (mkr_free(h, m) != 0)
			bad++;
		store(&q->taken, ++seq);
		mkr_notify(h, &q->taken, 1);
	}
	mkr_free(h, q);
	mkr_root_set(h, 0, 0);
	struct mkr_stats st;
	mkr_stats(h, &st);
	int healthy = mkr_check(h) == 0 && st.used_blocks == 0;
	printf("consumer: received %u of %u messages from process %d, %u bad, slept %u times waiting; "
	       "heap %s, %zu blocks left\n", seq, count, (int)producer, bad, sleeps, healthy ? "checked" : "DAMAGED",
	       st.used_blocks);
	mkr_close(h);
	mkr_unlink_shm(argv[1]);
	return seq == count && bad == 0 && healthy ? 0 : 1;
}
