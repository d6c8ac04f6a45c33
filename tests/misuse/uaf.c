/* Use after free, reuse, and executable heap memory (each at a SIZE).
 *   uaf-write          free(p), then n bytes stored into p; the program goes on allocating.  Caught only
 *                      when stopped (by a fault, or by a check that the freed block was written).
 *   uaf-write-reused   free(p); q = malloc(n) filled; n bytes stored into p.  Harmless when q still holds
 *                      all it was given (the write did not land in a live block).
 *   uaf-read           p filled with the program's data, freed, then read.  Harmless when the read sees
 *                      none of the old data ("zero after free").
 *   uaf-fresh          p filled, freed; q = malloc(n).  Harmless when q holds none of p's old data
 *                      ("zero on malloc", or not p again).
 *   reuse-same         free(p); q = malloc(n).  Harmless when q != p.
 *   reuse-smaller      free(p); q = malloc(n / 2).  Harmless when q != p.
 *   reuse-realloc      a = malloc(4n); free(p); q = realloc(a, n).  Harmless when q != p.
 *   exec               p = malloc(n).  Harmless when p's page is not executable (/proc/self/maps). */
#include <inttypes.h>

#include "tests/misuse/misuse.h"

static void __attribute__((noinline)) release(void *p) { free(p); }

static int executable(const void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		setup_failed("/proc/self/maps");
	char line[512];
	int x = -1;
	while (fgets(line, sizeof line, f)) {
		uintptr_t lo, hi;
		char perms[8];
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi, perms) == 3 && (uintptr_t)p >= lo &&
		    (uintptr_t)p < hi)
			x = perms[2] == 'x';
	}
	fclose(f);
	if (x < 0)
		setup_failed("the block is in no mapping");
	return x;
}

int main(int argc, char **argv)
{
	size_t n = misuse_size(argc, argv);
	if (!n)
		setup_failed("usage: uaf CASE SIZE");
	const char *c = argv[1];
	char *p = malloc(n);
	if (!p)
		setup_failed("malloc");
	fill_old(p, n);
	if (strcmp(c, "uaf-write") == 0) {
		release(p);
		store_bytes(p, 'W', n);
		keep_going(n);
	} else if (strcmp(c, "uaf-write-reused") == 0) {
		release(p);
		char *q = malloc(n);
		if (!q)
			setup_failed("malloc");
		memset(q, 'q', n);
		store_bytes(p, 'W', n);
		for (size_t i = 0; i < n; i++)
			if (q[i] != 'q')
				got_away();
		harmless("the live block kept its data");
	} else if (strcmp(c, "uaf-read") == 0) {
		release(p);
		if (count_old(p, n) == 0)
			harmless("the freed block holds none of the old data");
	} else if (strcmp(c, "uaf-fresh") == 0) {
		release(p);
		char *q = malloc(n);
		if (!q)
			setup_failed("malloc");
		if (count_old(q, n) == 0)
			harmless("the new block holds none of the old data");
	} else if (strcmp(c, "reuse-same") == 0 || strcmp(c, "reuse-smaller") == 0) {
		release(p);
		char *q = malloc(strcmp(c, "reuse-same") == 0 ? n : n / 2);
		if (q != p)
			harmless("the next malloc did not return the block just freed");
	} else if (strcmp(c, "reuse-realloc") == 0) {
		char *a = malloc(4 * n);
		if (!a)
			setup_failed("malloc");
		release(p);
		char *q = realloc(a, n);
		if (q != p)
			harmless("realloc did not return the block just freed");
	} else if (strcmp(c, "exec") == 0) {
		if (!executable(p))
			harmless("heap memory is not executable");
	} else {
		setup_failed("unknown case");
	}
	got_away();
}
