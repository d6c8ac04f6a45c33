/* Bounds-checked memcpy, memmove, memset and the strcpy family, for the secure build only
 * (libmemkit-secure.so, docs/hardening.md).
 *
 * Each interposes the C library's function of the same name: when the destination lies in one of our
 * blocks, the write must stay inside the n bytes the program asked for (mk__secure_check_write: one
 * line and an abort otherwise); then the C library's own implementation does the work, reached through
 * its __*_chk entry (given no bound) so that the call does not come back here.  A destination outside
 * our segments (stack, static data, huge blocks, other mappings) costs one load of the segment map. */
#include <string.h>

#include "engine/secure.h"

#define EXPORT __attribute__((visibility("default")))

extern void *__memcpy_chk(void *, const void *, size_t, size_t);
extern void *__memmove_chk(void *, const void *, size_t, size_t);
extern void *__mempcpy_chk(void *, const void *, size_t, size_t);
extern void *__memset_chk(void *, int, size_t, size_t);
extern char *__strcpy_chk(char *, const char *, size_t);
extern char *__stpcpy_chk(char *, const char *, size_t);
extern char *__strncpy_chk(char *, const char *, size_t, size_t);
extern char *__strcat_chk(char *, const char *, size_t);
extern char *__strncat_chk(char *, const char *, size_t, size_t);
#define NO_BOUND ((size_t)-1)

static inline void check(const void *dst, size_t len, const char *fn)
{
	if (mk_unlikely(mk__is_ours_small(dst)) && len)
		mk__secure_check_write(dst, len, fn);
}

EXPORT void *memcpy(void *restrict d, const void *restrict s, size_t n)
{
	check(d, n, "memcpy():");
	return __memcpy_chk(d, s, n, NO_BOUND);
}

EXPORT void *memmove(void *d, const void *s, size_t n)
{
	check(d, n, "memmove():");
	return __memmove_chk(d, s, n, NO_BOUND);
}

EXPORT void *mempcpy(void *restrict d, const void *restrict s, size_t n)
{
	check(d, n, "mempcpy():");
	return __mempcpy_chk(d, s, n, NO_BOUND);
}

EXPORT void *memset(void *d, int c, size_t n)
{
	check(d, n, "memset():");
	return __memset_chk(d, c, n, NO_BOUND);
}

EXPORT char *strcpy(char *restrict d, const char *restrict s)
{
	if (mk__is_ours_small(d))
		check(d, strlen(s) + 1, "strcpy():");
	return __strcpy_chk(d, s, NO_BOUND);
}

EXPORT char *stpcpy(char *restrict d, const char *restrict s)
{
	if (mk__is_ours_small(d))
		check(d, strlen(s) + 1, "stpcpy():");
	return __stpcpy_chk(d, s, NO_BOUND);
}

EXPORT char *strncpy(char *restrict d, const char *restrict s, size_t n)
{
	check(d, n, "strncpy():");   /* writes n bytes, padding with zeros */
	return __strncpy_chk(d, s, n, NO_BOUND);
}

EXPORT char *strcat(char *restrict d, const char *restrict s)
{
	if (mk__is_ours_small(d)) {
		size_t at = strlen(d);
		check(d + at, strlen(s) + 1, "strcat():");
	}
	return __strcat_chk(d, s, NO_BOUND);
}

EXPORT char *strncat(char *restrict d, const char *restrict s, size_t n)
{
	if (mk__is_ours_small(d)) {
		size_t at = strlen(d);
		check(d + at, strnlen(s, n) + 1, "strncat():");
	}
	return __strncat_chk(d, s, n, NO_BOUND);
}
