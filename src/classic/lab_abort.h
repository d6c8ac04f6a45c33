/* One-line fatal error for the lab allocators: an invalid my_free must not corrupt silently. */
#ifndef CLASSIC_LAB_ABORT_H
#define CLASSIC_LAB_ABORT_H

#include <stdio.h>
#include <stdlib.h>

__attribute__((noreturn, cold)) static inline void lab_abort(const char *what, const void *ptr)
{
	fprintf(stderr, "my_free: %s: %p\n", what, ptr);
	abort();
}

#endif
