/* Heap overflow and underflow: over-K-HOW and under-K-HOW, K = 1, 32 or 1M bytes, HOW = store (a byte loop)
 * or memcpy (one call, through a pointer the compiler cannot see through, so the call is made).
 * over writes the K bytes right after the n asked for, under the K bytes right before the block.
 * Caught only when the program is stopped (before "got away": the block is freed, and the program goes on
 * allocating); there is no harmless outcome of writing over memory that is not the block's. */
#include "tests/misuse/misuse.h"

static void *(*volatile copy)(void *, const void *, size_t) = memcpy;
static char source[(1 << 20) + 64];

int main(int argc, char **argv)
{
	size_t n = misuse_size(argc, argv);
	char dir[8], amount[8], how[8];
	if (!n || sscanf(argv[1], "%7[a-z]-%7[0-9M]-%7[a-z]", dir, amount, how) != 3)
		setup_failed("usage: overflow {over,under}-{1,32,1M}-{store,memcpy} SIZE");
	size_t k = strcmp(amount, "1M") == 0 ? (size_t)1 << 20 : strtoul(amount, NULL, 10);
	memset(source, 'O', sizeof source);
	/* Live neighbours, as in a real heap: the bytes written over belong to someone. */
	char *before = malloc(n), *p = malloc(n), *after = malloc(n);
	if (!before || !p || !after)
		setup_failed("malloc");
	memset(p, 'p', n);
	char *dst = strcmp(dir, "over") == 0 ? p + n : p - k;
	if (strcmp(how, "store") == 0)
		store_bytes(dst, 'O', k);
	else
		copy(dst, source, k);
	free(p);
	free(after);
	free(before);
	keep_going(n);
	got_away();
}
