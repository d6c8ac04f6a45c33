/* The entry points that the C++ operators (cxx.c) allocate and free through, carrying the KIND of the
 * allocation: what made the block (malloc, new or new[]) and, on free, what the caller believes made it,
 * with the size and alignment that sized and aligned delete pass.
 *
 * The hook for a build that checks kinds (the secure build): a backend header that defines
 * MK_BACKEND_KINDS provides
 *   void *BE(alloc_kind)(size_t n, size_t align, mk_kind kind)      align 0: the default (16)
 *   void  BE(free_kind)(void *p, size_t n, size_t align, mk_kind kind)   n MK_NO_SIZE: not given
 * and records the kind at allocation and compares it at free (`delete` of a `new[]` block, `delete[]` of
 * a malloc'ed one, a sized delete whose size is not the block's).  The plain backend functions, called by
 * malloc and free in api.c, are kind MK_KIND_MALLOC.  BE(alloc_kind) must return NULL only when memory
 * cannot be had (the operators then run the new-handler loop); a kind error aborts inside BE(free_kind)
 * with its one line.  Such a build has no separate fast path (mk__kind_alloc_fast is NULL): every new
 * calls BE(alloc_kind).
 *
 * Without MK_BACKEND_KINDS (the default build) these are always-inline functions that drop the kind and the
 * size: every call passes constants, so nothing of them is left in the operators' code. */
#ifndef MK_OVERRIDE_KIND_H_
#define MK_OVERRIDE_KIND_H_

#include <stddef.h>
#include <stdint.h>

#include "override/backend.h"

typedef enum mk_kind {
	MK_KIND_MALLOC = 0,     /* malloc, calloc, realloc, the aligned C functions; and free */
	MK_KIND_NEW = 1,        /* operator new / operator delete */
	MK_KIND_NEW_ARRAY = 2,  /* operator new[] / operator delete[] */
} mk_kind;

#define MK_NO_SIZE SIZE_MAX   /* a delete that was not given the size */

/* The largest alignment honoured (as api.c's aligned functions): larger requests fail. */
#define MK_KIND_ALIGN_MAX ((size_t)1 << 40)

#ifdef MK_BACKEND_KINDS
#define mk__kind_alloc_fast(n, align, kind) ((void)(n), (void)(align), (void)(kind), (void *)NULL)
#define mk__kind_alloc(n, align, kind)      BE(alloc_kind)((n), (align), (kind))
#define mk__kind_free(p, n, align, kind)    BE(free_kind)((p), (n), (align), (kind))
#else
/* The inlined fast path alone (NULL: call mk__kind_alloc), so that the operators' fast path keeps nothing
 * across a call: the size is needed again only if the slow path fails. */
static inline __attribute__((always_inline)) void *mk__kind_alloc_fast(size_t n, size_t align, mk_kind kind)
{
	(void)kind;
	return align <= 16 ? BE(alloc_fast)(n) : NULL;
}

/* align: 0 or a power of two (the operators refuse the others before calling). */
static inline __attribute__((always_inline)) void *mk__kind_alloc(size_t n, size_t align, mk_kind kind)
{
	(void)kind;
	if (align <= 16)
		return BE(alloc)(n);
	if (n > PTRDIFF_MAX || align > MK_KIND_ALIGN_MAX)
		return NULL;
	return BE(alloc_aligned)(align, n);
}

/* The engine finds everything free needs from the address (segment, span, owner, block test), and no
 * step of it is saved by knowing the size or alignment: aligned delete is the plain free.  A sized delete
 * is checked when the backend can (MK_BACKEND_FREE_SIZED: engine/sized.h, a compare of size classes):
 * n and align are constants at every call, so an unsized delete keeps the plain free's code. */
static inline __attribute__((always_inline)) void mk__kind_free(void *p, size_t n, size_t align, mk_kind kind)
{
	(void)kind;
#ifdef MK_BACKEND_FREE_SIZED
	if (n != MK_NO_SIZE && align == 0) {
		BE(free_sized)(p, n);
		return;
	}
#endif
	(void)n;
	(void)align;
	BE(free)(p);
}
#endif

#endif
