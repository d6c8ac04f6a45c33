/* What an allocator must provide to be exported through api.c (the malloc family and its rules).
 *
 * api.c is compiled once per (names, backend) pair:
 *   MK_API_PREFIX  the prefix of the exported names: mk_ for the prefixed API, empty for the C library's names
 *   MK_BACKEND     the backend's function prefix: mk__engine (the production allocator) or mk__sbrk
 *   MK_BACKEND_H   the header that declares (or defines inline, for the fast path) the functions below
 *
 * A backend provides, with its prefix (BE(x) below):
 *   void  *BE(alloc)(size_t n)             any n; NULL when it cannot (n > PTRDIFF_MAX included)
 *   void  *BE(alloc_zero)(size_t n)        same, zero-filled
 *   void  *BE(alloc_aligned)(size_t a, size_t n)   a a power of two >= 16
 *   void   BE(free)(void *p)               p may be NULL; must leave errno as it found it
 *   void  *BE(realloc)(void *p, size_t n)  p != NULL, 0 < n <= PTRDIFF_MAX; NULL leaves p intact
 *   size_t BE(usable_size)(const void *p)  p != NULL
 *   int    BE(trim)(size_t pad)            1 when memory went back to the system
 *   void   BE(stats_print)(void)           a report on stderr
 *   void   BE(info)(struct mallinfo2 *mi)
 *   int    BE(check)(void)                 number of broken invariants (0 = healthy)
 * and, for the C++ operators (cxx.c) only:
 *   void  *BE(alloc_fast)(size_t n)        BE(alloc)'s inlined fast path alone: NULL means "call BE(alloc)"
 * api.c owns everything else: errno, overflow of count * size, alignment validation, realloc's special
 * cases, and the aliases. */
#ifndef MK_BACKEND_H_
#define MK_BACKEND_H_

#define MK_CAT2(a, b) a##b
#define MK_CAT(a, b) MK_CAT2(a, b)
#define BE(name) MK_CAT(MK_BACKEND, MK_CAT(_, name))
#define API(name) MK_CAT(MK_API_PREFIX, name)

#endif
