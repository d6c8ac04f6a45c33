/* The message queue shared by examples/region-producer.c and region-consumer.c: a ring of offsets in a
 * region heap, with one producer and one consumer.  Each side sleeps on the other's counter with mkr_wait
 * (a futex on a word of the region) and wakes it with mkr_notify after moving its own. */
#ifndef REGION_QUEUE_H
#define REGION_QUEUE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "memkit_region.h"

#define QUEUE_SLOTS 64
#define QUEUE_HEAP_SIZE (4u << 20)
#define QUEUE_DONE 0x80000000u

struct queue {
	uint32_t taken;           /* messages the consumer has taken: the producer sleeps on it when full */
	uint32_t put;             /* messages the producer has put, plus QUEUE_DONE after the last one: the
	                             consumer sleeps on it when empty (one word, so no wake-up is lost) */
	uint32_t pad[2];
	mkr_off slot[QUEUE_SLOTS];
};

struct message {
	uint32_t seq;
	uint32_t len;
	char text[];
};

/* Reads NAME COUNT from the command line, opens (or creates) the heap and finds (or makes) the queue in
 * root slot 0; either side may come first. */
static inline struct queue *queue_open(int argc, char **argv, mkr_heap **hp, uint32_t *count)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s NAME COUNT\n", argv[0]);
		return NULL;
	}
	const char *name = argv[1];
	/* A count is digits only, 1 to 2^32 - 1: strtoul alone would read "abc" as 0 and "-1" as a huge one. */
	char *end;
	errno = 0;
	unsigned long n = strtoul(argv[2], &end, 10);
	if (argv[2][0] < '0' || argv[2][0] > '9' || *end || errno || n == 0 || n > UINT32_MAX) {
		fprintf(stderr, "%s: COUNT must be a number from 1 to %u, not '%s'\n", argv[0], UINT32_MAX, argv[2]);
		return NULL;
	}
	*count = (uint32_t)n;
	mkr_heap *h = mkr_open_shm(name, MKR_CREATE, QUEUE_HEAP_SIZE, 0600);
	if (!h) {
		fprintf(stderr, "%s: %s\n", name, mkr_last_error());
		return NULL;
	}
	if (!mkr_root_get(h, 0)) {
		struct queue *q = mkr_alloc(h, sizeof *q);
		if (!q)
			return NULL;
		*q = (struct queue){0};
		if (mkr_root_cas(h, 0, 0, mkr_to_off(h, q)) != 1)
			mkr_free(h, q); /* the other side was first */
	}
	*hp = h;
	return mkr_to_ptr(h, mkr_root_get(h, 0));
}

static inline uint32_t load(const uint32_t *w) { return __atomic_load_n(w, __ATOMIC_ACQUIRE); }
static inline void store(uint32_t *w, uint32_t v) { __atomic_store_n(w, v, __ATOMIC_RELEASE); }

#endif
