/* The malloc family over one backend (see backend.h): the single place that owns the C library's rules.
 * Compiled with MK_API_PREFIX empty it defines malloc, free, ... and the __libc_ aliases, which is what
 * makes the library a drop-in replacement: a program whose allocations went partly elsewhere would hand one
 * allocator's blocks to the other. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include "override/backend.h"
#include MK_BACKEND_H

#define EXPORT __attribute__((visibility("default")))
#define unlikely(x) __builtin_expect(!!(x), 0)

static __attribute__((noinline, cold)) void *fail_nomem(void)
{
	errno = ENOMEM;
	return NULL;
}

static int is_pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

EXPORT void *API(malloc)(size_t n)
{
	void *p = BE(alloc)(n);
	if (unlikely(p == NULL))
		return fail_nomem();
	return p;
}

EXPORT void API(free)(void *p) { BE(free)(p); }

EXPORT void *API(calloc)(size_t count, size_t size)
{
	size_t n;
	if (unlikely(__builtin_mul_overflow(count, size, &n) || n > PTRDIFF_MAX))
		return fail_nomem();
	void *p = BE(alloc_zero)(n);
	if (unlikely(p == NULL))
		return fail_nomem();
	return p;
}

EXPORT void *API(realloc)(void *p, size_t n)
{
	if (p == NULL)
		return API(malloc)(n);
	if (n == 0) {             /* glibc: frees and returns NULL */
		BE(free)(p);
		return NULL;
	}
	if (unlikely(n > PTRDIFF_MAX))
		return fail_nomem();
	void *q = BE(realloc)(p, n);
	if (unlikely(q == NULL))
		return fail_nomem();
	return q;
}

EXPORT void *API(reallocarray)(void *p, size_t count, size_t size)
{
	size_t n;
	if (unlikely(__builtin_mul_overflow(count, size, &n)))
		return fail_nomem();
	return API(realloc)(p, n);
}

/* Alignment below 16 is met by every block, so it costs nothing to ask for. */
static void *aligned(size_t align, size_t n)
{
	if (align <= 16)
		return API(malloc)(n);
	if (unlikely(n > PTRDIFF_MAX || align > ((size_t)1 << 40)))
		return fail_nomem();
	void *p = BE(alloc_aligned)(align, n);
	if (unlikely(p == NULL))
		return fail_nomem();
	return p;
}

EXPORT int API(posix_memalign)(void **memptr, size_t align, size_t n)
{
	if (!is_pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	int saved = errno;
	void *p = aligned(align, n);
	errno = saved;
	if (p == NULL)
		return ENOMEM;
	*memptr = p;
	return 0;
}

EXPORT void *API(aligned_alloc)(size_t align, size_t n)
{
	if (!is_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(align, n);
}

EXPORT void *API(memalign)(size_t align, size_t n)
{
	if (unlikely(align > SIZE_MAX / 2 + 1)) {
		errno = EINVAL;
		return NULL;
	}
	if (!is_pow2(align)) {    /* glibc rounds a bad alignment up to the next power of two */
		size_t a = 1;
		while (a < align)
			a <<= 1;
		align = a;
	}
	return aligned(align, n);
}

EXPORT void *API(valloc)(size_t n) { return aligned((size_t)getpagesize(), n); }

EXPORT void *API(pvalloc)(size_t n)
{
	size_t page = (size_t)getpagesize();
	if (unlikely(n > PTRDIFF_MAX))
		return fail_nomem();
	n = n == 0 ? page : (n + page - 1) & ~(page - 1);
	return aligned(page, n);
}

EXPORT size_t API(malloc_usable_size)(void *p) { return p ? BE(usable_size)(p) : 0; }

/* A backend that checks kinds (the secure build, override/kind.h) checks the size and alignment too; the
 * engine checks free_sized's size class (engine/sized.h). */
EXPORT void API(free_sized)(void *p, size_t n)
{
#ifdef MK_BACKEND_KINDS
	BE(free_kind)(p, n, 0, MK_KIND_MALLOC);
#elif defined(MK_BACKEND_FREE_SIZED)   /* the engine: n must fit the block as realloc leaves it */
	BE(free_sized_c)(p, n);
#else
	(void)n;
	BE(free)(p);
#endif
}

EXPORT void API(free_aligned_sized)(void *p, size_t align, size_t n)
{
#ifdef MK_BACKEND_KINDS
	BE(free_kind)(p, n, align, MK_KIND_MALLOC);
#else
	(void)align;
	(void)n;
	BE(free)(p);
#endif
}

EXPORT int API(malloc_trim)(size_t pad) { return BE(trim)(pad); }

EXPORT void API(malloc_stats)(void) { BE(stats_print)(); }

EXPORT struct mallinfo2 API(mallinfo2)(void)
{
	struct mallinfo2 mi;
	memset(&mi, 0, sizeof mi);
	BE(info)(&mi);
	return mi;
}

static int clamp_int(size_t v) { return v > INT32_MAX ? INT32_MAX : (int)v; }

EXPORT struct mallinfo API(mallinfo)(void)
{
	struct mallinfo2 m = API(mallinfo2)();
	struct mallinfo mi = {
		.arena = clamp_int(m.arena), .ordblks = clamp_int(m.ordblks), .smblks = clamp_int(m.smblks),
		.hblks = clamp_int(m.hblks), .hblkhd = clamp_int(m.hblkhd), .usmblks = clamp_int(m.usmblks),
		.fsmblks = clamp_int(m.fsmblks), .uordblks = clamp_int(m.uordblks),
		.fordblks = clamp_int(m.fordblks), .keepcost = clamp_int(m.keepcost),
	};
	return mi;
}

/* mallopt: the engine maps the parameters that mean something to it onto its options and accepts the rest
 * (docs/options.md has the table).  Another backend accepts and ignores glibc's parameters (success = 1), so
 * that programs that set them keep working, and refuses parameters glibc does not know. */
EXPORT int API(mallopt)(int param, int value)
{
#ifdef MK_BACKEND_MALLOPT
	return BE(mallopt)(param, value);
#else
	(void)value;
	switch (param) {
	case M_MXFAST: case M_NLBLKS: case M_GRAIN: case M_KEEP:
	case M_TRIM_THRESHOLD: case M_TOP_PAD: case M_MMAP_THRESHOLD: case M_MMAP_MAX:
	case M_CHECK_ACTION: case M_PERTURB: case M_ARENA_TEST: case M_ARENA_MAX:
		return 1;
	default:
		return 0;
	}
#endif
}

#ifdef MK_BACKEND_MALLOC_INFO
/* Exported by the static library too: a program that calls it must not pull in libc.a's malloc.o. */
EXPORT int API(malloc_info)(int options, FILE *fp) { return BE(malloc_info)(options, fp); }
#endif

#ifdef MK_API_PREFIXED
EXPORT int API(check)(void) { return BE(check)(); }
#ifdef MK_BACKEND_MALLOC_INFO
EXPORT void API(stats_print)(void (*write_cb)(void *, const char *), void *opaque, const char *options)
{
	BE(stats_print_to)(write_cb, opaque, options);
}
EXPORT int API(stats_get)(const char *name, uint64_t *value) { return BE(stats_get)(name, value); }
#endif
#endif

#if defined(MK_API_OVERRIDE) && defined(MK_BACKEND_START)
/* The drop-in starts with the process, not at its first malloc: a program that never allocates (true(1))
 * still gets MEMKIT_HELP's table, MEMKIT_VERBOSE's line and the warnings about its MEMKIT_ variables.  (The
 * mk_ build, linked beside another malloc, starts at its first call, so a program may setenv before it.) */
__attribute__((constructor)) static void start_at_load(void) { BE(start)(); }
#endif

#ifdef MK_API_OVERRIDE
/* glibc-internal names that some programs and libraries (and libc itself) call directly. */
#if defined(__clang__)
#define ALIAS(name, target) EXPORT __typeof__(target) name __attribute__((alias(#target)))
#else /* copy() gives the alias the target's attributes (malloc, nothrow, ...), as GCC asks */
#define ALIAS(name, target) EXPORT __typeof__(target) name __attribute__((alias(#target), copy(target)))
#endif
ALIAS(__libc_malloc, malloc);
ALIAS(__libc_free, free);
ALIAS(__libc_calloc, calloc);
ALIAS(__libc_realloc, realloc);
ALIAS(__libc_memalign, memalign);
ALIAS(__libc_valloc, valloc);
ALIAS(__libc_pvalloc, pvalloc);
ALIAS(__posix_memalign, posix_memalign);
ALIAS(cfree, free);
#endif
