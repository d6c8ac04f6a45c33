/* The system interface: the only code in memkit that calls mmap, munmap, madvise, mremap and brk/sbrk.
 *
 * Contract, for every caller:
 *  - sizes are byte counts; mapping calls round them up to whole pages.
 *  - a call that cannot get memory returns NULL (sbrk: (void *)-1) with errno = ENOMEM and changes nothing.
 *  - none of these functions allocates, takes a lock, or calls back into malloc.
 *  - tests make the memory-granting calls fail on purpose with mk__os_inject_fail(): the next `skip` calls
 *    succeed, the `count` after them fail as if the kernel had refused. */
#ifndef MK_OS_H
#define MK_OS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MK_PAGE_SIZE 4096u

/* Anonymous, private, read-write memory, zero-filled. */
void *mk__os_map(size_t size);
/* Same, with the start aligned to `align` (a power of two, at least a page). */
void *mk__os_map_aligned(size_t size, size_t align);
/* Reserves address space only (PROT_NONE, no commit charge); mk__os_commit makes part of it usable. */
void *mk__os_reserve(size_t size, size_t align);
int   mk__os_commit(void *p, size_t size);
void  mk__os_unmap(void *p, size_t size);
/* Gives the pages back to the kernel at once: RSS drops and the range reads as zero afterwards. */
void  mk__os_purge(void *p, size_t size);
/* Resizes a mapping; with may_move the kernel may move it (pages are moved, not copied).
 * Returns the new start or NULL (the old mapping is then unchanged). */
void *mk__os_remap(void *p, size_t old_size, size_t new_size, int may_move);
/* A mapping of a file or shared memory object (for region heaps); NULL + errno on failure. */
void *mk__os_map_fd(size_t size, int prot, int flags, int fd, off_t offset);
/* sbrk(2); (void *)-1 with errno = ENOMEM on failure. */
void *mk__os_sbrk(intptr_t increment);

/* Fault injection for tests: after `skip` more successful calls, the next `count` calls fail. */
void  mk__os_inject_fail(long skip, long count);
/* How many calls the injector has failed so far (tests assert the failure path really ran). */
long  mk__os_injected_failures(void);

#endif
