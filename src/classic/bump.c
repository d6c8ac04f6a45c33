/* Lab version 2: a bump pointer over large pools; my_free does nothing.
 *
 * Each pool is one mapping that starts with a struct pool; allocations are carved from `next` upwards:
 *
 *   | struct pool | block | block | ... | next -> unused ........................ | limit
 *
 * Invariants:
 *  - next and limit belong to the newest pool (`pools`), pool_start(pools) <= next <= limit;
 *  - next is 16-byte aligned, so every block is (sizes are rounded up to 16);
 *  - older pools are only linked for my_check: their unused tail is abandoned, never reused;
 *  - a request larger than a standard pool gets a pool of its own size.
 * Memory is never reused: the price of an allocation that is a compare and an add. */
#include "my_memory_allocator.h"

#if LAB_VERSION == 2
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "classic/lab_pool.h"
#include "os/os.h"

struct pool {
	struct pool *older;
	size_t size; /* bytes in the mapping, this header included */
	char *end_used; /* where `next` stood when this pool was retired (for my_check) */
	char pad[8];
};

static struct pool *pools;
static char *next, *limit;

/* Maps a pool that can hold at least `need` bytes; the old one is retired. */
static int new_pool(size_t need)
{
	size_t size = LAB_POOL_BYTES;
	if (need > size - sizeof(struct pool))
		size = (sizeof(struct pool) + need + MK_PAGE_SIZE - 1) & ~(size_t)(MK_PAGE_SIZE - 1);
	struct pool *p = mk__os_map(size);
	if (!p)
		return -1;
	if (pools)
		pools->end_used = next;
	p->older = pools;
	p->size = size;
	p->end_used = NULL;
	pools = p;
	next = (char *)(p + 1);
	limit = (char *)p + size;
	return 0;
}

void init_mem_pool(void)
{
	if (!pools)
		new_pool(0);
}

void *my_malloc(int num_bytes)
{
	if (num_bytes < 0) {
		errno = EINVAL;
		return NULL;
	}
	size_t size = num_bytes == 0 ? 16 : ((size_t)num_bytes + 15) & ~(size_t)15;
	if ((size_t)(limit - next) < size && new_pool(size) != 0)
		return NULL; /* errno = ENOMEM from the OS layer */
	void *p = next;
	next += size;
	return p;
}

void my_free(void *ptr) { (void)ptr; }

int my_check(void)
{
	int bad = 0;
	if (!pools)
		return next || limit ? (fprintf(stderr, "bump: cursor set without a pool\n"), 1) : 0;
	if ((uintptr_t)next % 16)
		bad++, fprintf(stderr, "bump: next %p not 16-byte aligned\n", (void *)next);
	if (next < (char *)(pools + 1) || next > limit || limit != (char *)pools + pools->size)
		bad++, fprintf(stderr, "bump: next %p outside the newest pool %p\n", (void *)next, (void *)pools);
	for (struct pool *p = pools->older; p; p = p->older) {
		if (p->size % MK_PAGE_SIZE || p->end_used < (char *)(p + 1) || p->end_used > (char *)p + p->size)
			bad++, fprintf(stderr, "bump: retired pool %p has a bad size or cursor\n", (void *)p);
	}
	return bad;
}

#endif
