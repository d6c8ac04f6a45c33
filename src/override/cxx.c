/* The C++ operator new / operator delete family (C++17: plain, array, nothrow, sized, std::align_val_t
 * aligned, and their combinations), written in C under their Itanium-ABI mangled names so that a C++
 * program calls memkit directly instead of libstdc++'s wrappers around malloc, and so that the library
 * still depends on libc alone (the C++ runtime is reached through cxx_runtime.c).
 *
 * Semantics (the standard's, as libstdc++ implements them):
 *  - new(0) returns a unique pointer; the result is 16-byte aligned, or aligned to the align_val_t given
 *    (64, 4096, ... up to 2^40; an alignment that is not a power of two fails, as in libstdc++).
 *  - When memory cannot be had, the throwing operators call std::get_new_handler()'s handler and retry,
 *    as long as there is one; with none they throw std::bad_alloc.  The nothrow operators run the same
 *    loop but return NULL where those throw, and when the handler throws (anything of C++).
 *  - Every delete frees through the backend's free: a bad pointer gets its one-line report, such as
 *    "memkit: free(): double free of 0x...".  Sized and aligned deletes cost what delete(p) does: the
 *    engine needs neither the size nor the alignment to free (kind.h).
 *
 * Every operator goes through mk__kind_alloc / mk__kind_free with its kind (new or new[]): the hook for a
 * build that records and checks kinds (kind.h); in the default build the kind compiles away, and the fast
 * path of new and delete is the inlined malloc and free.
 *
 * x86-64 names: size_t is `m`, std::align_val_t `St11align_val_t`, const std::nothrow_t& `RKSt9nothrow_t`. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "override/backend.h"
#include MK_BACKEND_H
#include "override/cxx_runtime.h"
#include "override/kind.h"

#define EXPORT __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)

/* Everything but the inlined fast path: the backend's slow path, then the new-handler loop.  align is 0
 * or a power of two. */
static __attribute__((noinline)) void *new_slow(size_t n, size_t align, mk_kind kind, bool nothrow)
{
	for (;;) {
		void *p = mk__kind_alloc(n, align, kind);
		if (likely(p != NULL))
			return p;
		mk_new_handler handler = mk__cxx_get_new_handler();
		if (handler == NULL) {
			if (nothrow)
				return NULL;
			mk__cxx_throw_bad_alloc(kind == MK_KIND_NEW_ARRAY ? "operator new[]" : "operator new", n);
		}
		if (nothrow) {
			if (mk__cxx_call_catching(handler))
				return NULL;
		} else {
			handler();
		}
	}
}

static inline __attribute__((always_inline)) void *new_any(size_t n, size_t align, mk_kind kind, bool nothrow)
{
	void *p = mk__kind_alloc_fast(n, align, kind);
	if (likely(p != NULL))
		return p;
	return new_slow(n, align, kind, nothrow);
}

/* A std::align_val_t that is not a power of two is a precondition broken: libstdc++ throws (or returns
 * NULL), memkit the same, without consulting the new-handler, which could not help. */
static inline __attribute__((always_inline)) void *new_aligned(size_t n, size_t align, mk_kind kind, bool nothrow)
{
	if (likely(align != 0 && (align & (align - 1)) == 0))
		return new_any(n, align, kind, nothrow);
	if (nothrow)
		return NULL;
	mk__cxx_throw_bad_alloc(kind == MK_KIND_NEW_ARRAY ? "operator new[]" : "operator new", n);
}

#define NEW   MK_KIND_NEW
#define ARRAY MK_KIND_NEW_ARRAY
typedef struct { char unused; } nothrow_t;     /* std::nothrow_t, only ever passed by reference */

/* operator new(size_t), new[](size_t), and their nothrow forms */
EXPORT void *_Znwm(size_t n) { return new_any(n, 0, NEW, false); }
EXPORT void *_Znam(size_t n) { return new_any(n, 0, ARRAY, false); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const nothrow_t *t) { (void)t; return new_any(n, 0, NEW, true); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const nothrow_t *t) { (void)t; return new_any(n, 0, ARRAY, true); }

/* operator new(size_t, align_val_t), new[](size_t, align_val_t), and their nothrow forms */
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al) { return new_aligned(n, al, NEW, false); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t al) { return new_aligned(n, al, ARRAY, false); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const nothrow_t *t)
{
	(void)t;
	return new_aligned(n, al, NEW, true);
}
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const nothrow_t *t)
{
	(void)t;
	return new_aligned(n, al, ARRAY, true);
}

/* operator delete(void *), delete[](void *), and their nothrow forms */
EXPORT void _ZdlPv(void *p) { mk__kind_free(p, MK_NO_SIZE, 0, NEW); }
EXPORT void _ZdaPv(void *p) { mk__kind_free(p, MK_NO_SIZE, 0, ARRAY); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const nothrow_t *t) { (void)t; mk__kind_free(p, MK_NO_SIZE, 0, NEW); }
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const nothrow_t *t) { (void)t; mk__kind_free(p, MK_NO_SIZE, 0, ARRAY); }

/* sized: operator delete(void *, size_t), delete[](void *, size_t) */
EXPORT void _ZdlPvm(void *p, size_t n) { mk__kind_free(p, n, 0, NEW); }
EXPORT void _ZdaPvm(void *p, size_t n) { mk__kind_free(p, n, 0, ARRAY); }

/* aligned: operator delete(void *, align_val_t), delete[](void *, align_val_t), their nothrow forms */
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t al) { mk__kind_free(p, MK_NO_SIZE, al, NEW); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t al) { mk__kind_free(p, MK_NO_SIZE, al, ARRAY); }
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const nothrow_t *t)
{
	(void)t;
	mk__kind_free(p, MK_NO_SIZE, al, NEW);
}
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const nothrow_t *t)
{
	(void)t;
	mk__kind_free(p, MK_NO_SIZE, al, ARRAY);
}

/* sized and aligned: operator delete(void *, size_t, align_val_t), delete[](void *, size_t, align_val_t) */
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al) { mk__kind_free(p, n, al, NEW); }
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al) { mk__kind_free(p, n, al, ARRAY); }
