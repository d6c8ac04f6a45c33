/* The lab allocator interface (seed 001): one header, several implementations chosen by LAB_VERSION.
 *
 *   0  the C library's malloc/free                      (src/classic/lab_ref.c)
 *   1  one mmap per my_malloc, munmap per my_free       (src/classic/mmap.c)
 *   2  bump pointer over large pools, free does nothing (src/classic/bump.c)
 *   3  32-byte cells on a free list                     (src/classic/cells.c)
 *   4  the memkit engine, mk_malloc/mk_free             (src/classic/lab_ref.c)
 *
 * Compile every file of a program, allocator files included, with the same -DLAB_VERSION=N: each
 * allocator file compiles to nothing unless it is the selected version, so exactly one my_malloc exists.
 *
 * Common rules for every version:
 *  - my_malloc(n < 0) returns NULL with errno = EINVAL.
 *  - my_malloc(0) returns a unique pointer (a minimum-size block) that must be passed to my_free.
 *  - Every returned address is 16-byte aligned.
 *  - my_free(NULL) does nothing.
 *  - init_mem_pool() is optional and idempotent: my_malloc sets the pool up on first use.
 *  - Not thread-safe (the lab is single-threaded); versions 0 and 4 are, because their backends are. */
#ifndef MY_MEMORY_ALLOCATOR_H
#define MY_MEMORY_ALLOCATOR_H

#ifndef LAB_VERSION
#define LAB_VERSION 3
#endif

#if LAB_VERSION < 0 || LAB_VERSION > 4
#error "LAB_VERSION must be 0 (libc), 1 (mmap), 2 (bump), 3 (cells) or 4 (engine)"
#endif

/* The largest request version 3 serves; larger ones fail with ENOMEM. */
#define LAB_CELL_SIZE 32

void  init_mem_pool(void);
void *my_malloc(int num_bytes);
void  my_free(void *ptr);

/* Extra (not in the seed): walks the version's structures and verifies its invariants.  Returns 0 when
 * they hold, otherwise prints one line per broken invariant to stderr and returns how many it found. */
int   my_check(void);

#endif
