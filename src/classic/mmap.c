/* Lab version 1: every my_malloc is its own mmap, every my_free its munmap.
 *
 * Layout of one allocation (one mapping, a whole number of pages):
 *
 *   page start                                  page start + 32
 *   | struct block (size, tag, prev, next) ...  | user bytes .......... | unused tail of the last page |
 *
 * Invariants:
 *  - the user pointer is always the mapping's start + 32, so ptr % page size == 32;
 *  - block.size is the mapping's length in bytes (what munmap needs);
 *  - block.tag == TAG ^ address of the block, so a pointer that did not come from my_malloc (or whose
 *    header was overwritten) is caught before munmap is given a wrong length;
 *  - the live blocks form a doubly linked list from `live` (only so that my_check can walk them).
 * A freed block's pages are gone: a second my_free of it faults or, if the kernel reused the address for a
 * new block, frees that block.  This version cannot detect that without a system call per free. */
#include "my_memory_allocator.h"

#if LAB_VERSION == 1
#include <errno.h>
#include <stdint.h>

#include "classic/lab_abort.h"
#include "os/os.h"

#define TAG 0x6d6d61702d6c6162ull /* "mmap-lab" */

struct block {
	uint64_t size;
	uint64_t tag;
	struct block *prev, *next;
};

static struct block *live;
static size_t live_count;

void init_mem_pool(void) {}

void *my_malloc(int num_bytes)
{
	if (num_bytes < 0) {
		errno = EINVAL;
		return NULL;
	}
	size_t size = sizeof(struct block) + (size_t)num_bytes;
	size = (size + MK_PAGE_SIZE - 1) & ~(size_t)(MK_PAGE_SIZE - 1);
	struct block *b = mk__os_map(size);
	if (!b)
		return NULL; /* errno = ENOMEM from the OS layer */
	b->size = size;
	b->tag = TAG ^ (uintptr_t)b;
	b->prev = NULL;
	b->next = live;
	if (live)
		live->prev = b;
	live = b;
	live_count++;
	return b + 1;
}

void my_free(void *ptr)
{
	if (!ptr)
		return;
	if ((uintptr_t)ptr % MK_PAGE_SIZE != sizeof(struct block))
		lab_abort("not a block start", ptr);
	struct block *b = (struct block *)ptr - 1;
	if (b->tag != (TAG ^ (uintptr_t)b) || b->size % MK_PAGE_SIZE != 0 || b->size == 0)
		lab_abort("bad header (invalid or overwritten)", ptr);
	if (b->prev)
		b->prev->next = b->next;
	else
		live = b->next;
	if (b->next)
		b->next->prev = b->prev;
	live_count--;
	mk__os_unmap(b, b->size);
}

int my_check(void)
{
	int bad = 0;
	size_t n = 0;
	for (struct block *b = live, *prev = NULL; b; prev = b, b = b->next) {
		if (++n > live_count) {
			fprintf(stderr, "mmap: more blocks on the list than the %zu live ones (cycle?)\n", live_count);
			return bad + 1;
		}
		if ((uintptr_t)b % MK_PAGE_SIZE || b->tag != (TAG ^ (uintptr_t)b) || b->size % MK_PAGE_SIZE || !b->size)
			bad++, fprintf(stderr, "mmap: block %p has a bad header\n", (void *)b);
		if (b->prev != prev)
			bad++, fprintf(stderr, "mmap: block %p has a bad back link\n", (void *)b);
	}
	if (n != live_count)
		bad++, fprintf(stderr, "mmap: %zu blocks on the list, %zu live\n", n, live_count);
	return bad;
}

#endif
