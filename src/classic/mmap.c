/* Lab version 1: every my_malloc is its own mmap, every my_free its munmap.
 *
 * Layout of one allocation (one mapping, a whole number of pages):
 *
 *   page start                      page start + 16
 *   | struct block (size, tag) ...  | user bytes .......... | unused tail of the last page |
 *
 * Invariants:
 *  - the user pointer is always the mapping's start + 16, so ptr % page size == 16;
 *  - block.size is the mapping's length in bytes (what munmap needs);
 *  - block.tag == TAG ^ address of the block, so a pointer that did not come from my_malloc (or whose
 *    header was overwritten) is caught before munmap is given a wrong length.
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
};

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
	b->tag = 0; /* harmless: the page goes away next */
	mk__os_unmap(b, b->size);
}

/* Nothing is kept between calls, so there is nothing to walk. */
int my_check(void) { return 0; }

#endif
