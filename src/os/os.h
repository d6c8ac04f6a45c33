/* The system interface: the only code in memkit that calls mmap, munmap, madvise, mremap, mincore and brk/sbrk.
 *
 * Contract, for every caller:
 *  - sizes are byte counts; mapping calls round them up to whole pages.
 *  - a call that cannot get memory returns NULL (sbrk: (void *)-1) with errno = ENOMEM and changes nothing.
 *  - a call that gives memory back (unmap, purge) returns 0, or -1 with errno set when the system refused
 *    (the memory is then as it was: still mapped, or still holding its data); errno is kept on success.
 *  - mk__os_resident, a query, returns -1 with errno set when the system refused; its caller then assumes
 *    the worst (every page resident).
 *  - none of these functions allocates, takes a lock, or calls back into malloc.
 *  - tests make the memory-granting calls fail on purpose with mk__os_inject_fail(): the next `skip` calls
 *    succeed, the `count` after them fail as if the kernel had refused; mk__os_inject_release_fail() does
 *    the same for unmap and purge.
 *  - the engine's slow paths call mk__os_point("name") at the steps where a race matters; a test's hook
 *    (mk__os_set_point_hook) can block there, so that another thread runs exactly in that window. */
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
int   mk__os_unmap(void *p, size_t size);
/* Gives the pages back to the kernel at once: RSS drops and the range reads as zero afterwards.  -1 when
 * the system refused (madvise fails on locked pages, for one): then the pages still hold their data. */
int   mk__os_purge(void *p, size_t size);
/* How many pages of [p, p + size) (p page-aligned) are resident, by mincore(2); -1 when the system
 * refused (errno set).  Counted with the release calls by mk__os_inject_release_fail. */
long  mk__os_resident(const void *p, size_t size);
/* mincore(2) itself (vec: a byte per page), for the heap map; -1 with errno set when refused. */
int   mk__os_mincore(const void *p, size_t size, unsigned char *vec);
/* Resizes a mapping; with may_move the kernel may move it (pages are moved, not copied).
 * Returns the new start or NULL (the old mapping is then unchanged). */
void *mk__os_remap(void *p, size_t old_size, size_t new_size, int may_move);
/* A mapping of a file or shared memory object (for region heaps); NULL + errno on failure. */
void *mk__os_map_fd(size_t size, int prot, int flags, int fd, off_t offset);
/* sbrk(2); (void *)-1 with errno = ENOMEM on failure. */
void *mk__os_sbrk(intptr_t increment);

/* The system calls made so far (every caller of this layer counts), and the purges that succeeded. */
typedef struct mk_os_counts {
	unsigned long mmap, munmap, madvise, mremap, mprotect, mincore, purges, purged_bytes;
} mk_os_counts;
void  mk__os_counts(mk_os_counts *c);

/* Fault injection for tests: after `skip` more successful calls, the next `count` calls fail. */
void  mk__os_inject_fail(long skip, long count);
void  mk__os_inject_release_fail(long skip, long count);
/* How many calls the injectors have failed so far (tests assert the failure path really ran). */
long  mk__os_injected_failures(void);

/* Named points (see the contract above); NULL removes the hook.  A point costs one load when no hook is set. */
void  mk__os_set_point_hook(void (*hook)(const char *name));
void  mk__os_point(const char *name);

#endif
