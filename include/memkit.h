/* memkit: the production allocator's prefixed API.
 *
 * The same functions as the C library's malloc family, with an mk_ prefix and no interposition:
 * link with -lmemkit (which also exports the unprefixed names) or with build/libmemkit-mk.a (prefix only,
 * the build used under sanitizers).  Semantics follow glibc; see docs/ARCHITECTURE.md for the contract. */
#ifndef MEMKIT_H
#define MEMKIT_H

#include <stddef.h>
#include <malloc.h>   /* struct mallinfo, struct mallinfo2 */

#ifdef __cplusplus
extern "C" {
#endif

/* The one version number of memkit: the Makefile reads it for the soname (libmemkit.so.MAJOR), the .pc
 * files, the CMake package and `memkit --version`. */
#define MEMKIT_VERSION_MAJOR 0
#define MEMKIT_VERSION_MINOR 1
#define MEMKIT_VERSION_PATCH 0

void  *mk_malloc(size_t size);
void   mk_free(void *ptr);
void  *mk_calloc(size_t count, size_t size);
void  *mk_realloc(void *ptr, size_t size);
void  *mk_reallocarray(void *ptr, size_t count, size_t size);
int    mk_posix_memalign(void **memptr, size_t alignment, size_t size);
void  *mk_aligned_alloc(size_t alignment, size_t size);
void  *mk_memalign(size_t alignment, size_t size);
void  *mk_valloc(size_t size);
void  *mk_pvalloc(size_t size);
size_t mk_malloc_usable_size(void *ptr);
void   mk_free_sized(void *ptr, size_t size);
void   mk_free_aligned_sized(void *ptr, size_t alignment, size_t size);
int    mk_malloc_trim(size_t pad);
void   mk_malloc_stats(void);
struct mallinfo  mk_mallinfo(void);
struct mallinfo2 mk_mallinfo2(void);
int    mk_mallopt(int param, int value);

/* Walks the allocator's structures and verifies their invariants.  Returns 0 when all hold; otherwise
 * prints one line per broken invariant to stderr and returns how many it found. */
int    mk_check(void);

#ifdef __cplusplus
}
#endif
#endif
