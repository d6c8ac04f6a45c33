/* A program built against an installed memkit (tests/install/install.sh, tests/package/package.sh): it
 * prints "memkit MAJOR.MINOR.PATCH 0" only when it runs on memkit.  malloc's block must be memkit's
 * (mk_malloc_usable_size stops the program on any other pointer), mk_check() must find nothing, and a
 * region heap must work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <memkit.h>
#include <memkit_region.h>

int main(void)
{
	char *p = malloc(100);
	if (!p || mk_malloc_usable_size(p) < 100)
		return 1;
	strcpy(p, "memkit");
	mkr_heap *h = mkr_create_private(1 << 20);
	void *q = h ? mkr_alloc(h, 64) : NULL;
	if (!q || mkr_free(h, q) != 0 || mkr_check(h) != 0)
		return 2;
	mkr_close(h);
	printf("%s %d.%d.%d %d\n", p, MEMKIT_VERSION_MAJOR, MEMKIT_VERSION_MINOR, MEMKIT_VERSION_PATCH, mk_check());
	free(p);
	return 0;
}
