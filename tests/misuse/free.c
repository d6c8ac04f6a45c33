/* Double and invalid frees.  Caught only when the program is stopped: a free that is wrong and lets the
 * program go on has done its damage (the block may be handed out twice).
 *   df-immediate        free(p); free(p)
 *   df-delayed          free(p); other blocks allocated and freed; free(p)
 *   df-interleaved      free(p); free(q); free(p)
 *   df-after-reuse      free(p); q = malloc(n) (often p again); free(p)
 *   df-reused-between   free(p); q = malloc(n); free(q); free(p)
 *   df-realloc          q = realloc(p, 4n) (moves); free(p)
 *   inv-stack           free of an n-byte array on the stack
 *   inv-alloca          free of alloca(n)
 *   inv-unaligned       free(p + 1)
 *   inv-past            free(p + n): just past what was asked
 *   inv-middle          free(p + n/2)
 *   inv-global          free of a static array (no size)
 *   inv-far             free(p + 1 GiB) (no size)
 *   inv-several         free of a static array, of a stack array and of p + 8 in a row (no size) */
#include <alloca.h>

#include "tests/misuse/misuse.h"

static char global_array[4096] __attribute__((aligned(64)));

/* Out of line, so the compiler knows nothing of what it frees. */
static void __attribute__((noinline)) release(void *p) { free(p); }

static void __attribute__((noinline)) free_stack(size_t n)
{
	char local[n] __attribute__((aligned(16)));
	memset(local, 's', n);
	release(local);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		setup_failed("usage: free CASE [SIZE]");
	const char *c = argv[1];
	size_t n = misuse_size(argc, argv);
	if (!n)
		n = 64;
	char *p = malloc(n);
	if (!p)
		setup_failed("malloc");
	memset(p, 'p', n);
	if (strcmp(c, "df-immediate") == 0) {
		release(p);
		release(p);
	} else if (strcmp(c, "df-delayed") == 0) {
		release(p);
		void *other[32];
		for (int i = 0; i < 32; i++)
			other[i] = malloc((size_t)(i + 1) * 24);
		for (int i = 0; i < 32; i++)
			release(other[i]);
		release(p);
	} else if (strcmp(c, "df-interleaved") == 0) {
		char *q = malloc(n);
		release(p);
		release(q);
		release(p);
	} else if (strcmp(c, "df-after-reuse") == 0) {
		release(p);
		char *q = malloc(n);
		memset(q, 'q', n);
		release(p);
	} else if (strcmp(c, "df-reused-between") == 0) {
		release(p);
		char *q = malloc(n);
		release(q);
		release(p);
	} else if (strcmp(c, "df-realloc") == 0) {
		char *q = realloc(p, 4 * n);
		if (!q)
			setup_failed("realloc");
		if (q == p)
			harmless("realloc did not move, so the old pointer is still the block");
		release(p);
	} else if (strcmp(c, "inv-stack") == 0) {
		free_stack(n);
	} else if (strcmp(c, "inv-alloca") == 0) {
		char *a = alloca(n);
		memset(a, 'a', n);
		release(a);
	} else if (strcmp(c, "inv-unaligned") == 0) {
		release(p + 1);
	} else if (strcmp(c, "inv-past") == 0) {
		release(p + n);
	} else if (strcmp(c, "inv-middle") == 0) {
		release(p + n / 2);
	} else if (strcmp(c, "inv-global") == 0) {
		release(global_array);
	} else if (strcmp(c, "inv-far") == 0) {
		release(p + ((size_t)1 << 30));
	} else if (strcmp(c, "inv-several") == 0) {
		release(global_array + 64);
		free_stack(64);
		release(p + 8);
	} else {
		setup_failed("unknown case");
	}
	keep_going(n);
	got_away();
}
