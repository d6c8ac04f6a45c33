/* memkit: the production allocator's prefixed API.
 *
 * The same functions as the C library's malloc family, with an mk_ prefix and no interposition:
 * link with -lmemkit (which also exports the unprefixed names) or with build/libmemkit-mk.a (prefix only,
 * the build used under sanitizers).  Semantics follow glibc; see docs/ARCHITECTURE.md for the contract. */
#ifndef MEMKIT_H
#define MEMKIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* ---- statistics and options (docs/stats.md, docs/options.md) ---- */

/* malloc_info: glibc's XML with memkit's figures (one heap: the size classes' free blocks, the segments'
 * free slices; huge blocks as mmap'ed ones).  options must be 0; -1 with errno = EINVAL otherwise. */
int    mk_malloc_info(int options, FILE *fp);

/* mallopt parameter of memkit's own: the purge delay in ms (as MEMKIT_PURGE_DELAY; negative: refused).
 * mallopt's other parameters: docs/options.md. */
#define MEMKIT_M_PURGE_DELAY (-100)

/* Writes the statistics report through write_cb, a line (or, for JSON, a piece of the one line) at a time,
 * each ending in '\n' or not, with the process id in every line; write_cb NULL writes to stderr (as at start
 * of the process, if it was closed since).  options: NULL or "" or "text" for the text report, "json" for
 * one line of JSON.  The figures are those of mk_stats_get; the report is made without allocating. */
void   mk_stats_print(void (*write_cb)(void *opaque, const char *text), void *opaque, const char *options);

/* One statistic by the name it has in the reports and docs/stats.md ("bytes.current", "os.mmap",
 * "class.48.live", ...): 0 and *value set, or -1 with errno = ENOENT (no such name) or EINVAL (NULL).
 * Each call takes a new snapshot (walks the heaps and segments): not for a hot loop. */
int    mk_stats_get(const char *name, uint64_t *value);

/* Walks the allocator's structures and verifies their invariants.  Returns 0 when all hold; otherwise
 * prints one line per broken invariant to stderr and returns how many it found. */
int    mk_check(void);

#ifdef __cplusplus
}
#endif
#endif
