/* A plugin for tests/prof/tables.c, which damages its .eh_frame_hdr before loading it. */
#include <stdlib.h>

void *tables_alloc(void);
__attribute__((noinline)) void *tables_alloc(void)
{
	void *volatile p = malloc(4000);
	return p;
}
