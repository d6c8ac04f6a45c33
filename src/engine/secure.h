/* The secure build's backend (libmemkit-secure.so, docs/hardening.md): the engine's blocks wrapped in a
 * checked header and canary, a quarantine that delays reuse, zero-on-free checked on reuse.
 *
 * api.c is compiled over it with MK_BACKEND=mk__secure (mk/secure.mk), so the C library's rules stay in
 * one place and the engine itself is unchanged: the secure layer sits between the two, and the inlined
 * fast paths of the default build are not used here at all. */
#ifndef MK_SECURE_H
#define MK_SECURE_H

#include <stdbool.h>
#include <stddef.h>
#include <malloc.h>

#include "engine/engine.h"

/* How a block was allocated (kept in its header) must match what frees it: mk_kind and the hooks the C++
 * operators call (src/override/kind.h, with MK_BACKEND_KINDS defined: every new and delete of cxx.c comes
 * here with its kind, the size a sized delete passes, MK_NO_SIZE otherwise, and the alignment). */
#define MK_BACKEND_KINDS 1
#include "override/kind.h"

void  *mk__secure_alloc(size_t n) MK_HIDDEN;
void  *mk__secure_alloc_zero(size_t n) MK_HIDDEN;
void  *mk__secure_alloc_aligned(size_t align, size_t n) MK_HIDDEN;
void   mk__secure_free(void *p) MK_HIDDEN;
void  *mk__secure_realloc(void *p, size_t n) MK_HIDDEN;
size_t mk__secure_usable_size(const void *p) MK_HIDDEN;
/* align 0: the default alignment.  NULL when out of memory (the operators then run the new-handler loop). */
void  *mk__secure_alloc_kind(size_t n, size_t align, mk_kind kind) MK_HIDDEN;
/* n: MK_NO_SIZE, or the size a sized delete passes (must be the block's); align: 0, or what an aligned
 * delete passes (must be the block's). */
void   mk__secure_free_kind(void *p, size_t n, size_t align, mk_kind kind) MK_HIDDEN;

/* checked.c: the bounds check of a write of len bytes at dst by fn, when dst lies in one of our blocks. */
void   mk__secure_check_write(const void *dst, size_t len, const char *fn) MK_HIDDEN;

int    mk__secure_trim(size_t pad) MK_HIDDEN;   /* empties this thread's quarantine, then the engine's trim */
#define mk__secure_stats_print mk__engine_stats_print
/* What engine.h's MK_BACKEND_* macros announce (options, statistics, start at load): the engine's own. */
#include "engine/stats.h"
#define mk__secure_start          mk__engine_start
#define mk__secure_mallopt        mk__engine_mallopt
#define mk__secure_malloc_info    mk__engine_malloc_info
#define mk__secure_stats_print_to mk__engine_stats_print_to
#define mk__secure_stats_get      mk__engine_stats_get
#define mk__secure_info        mk__engine_info
#define mk__secure_check       mk__engine_check

#endif
