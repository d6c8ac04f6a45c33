/* Zero-size blocks and impossible requests (no SIZE).
 *   zero-read, zero-write               16 bytes read or stored through the pointer malloc(0) returned
 *   zero-read-freed, zero-write-freed   the same after freeing it
 *     caught only when stopped: malloc(0) owns no byte, so any access is a misuse that got through.
 *   huge-malloc     malloc(-2)                     harmless: NULL with ENOMEM
 *   huge-calloc     calloc(2^62, 16) (overflows)   harmless: NULL with ENOMEM
 *   huge-realloc    realloc(p, -2)                 harmless: NULL with ENOMEM and p intact
 *   huge-memalign   posix_memalign(&q, 64, -2)     harmless: ENOMEM, q untouched */
#include <errno.h>

#include "tests/misuse/misuse.h"

static void __attribute__((noinline)) release(void *p) { free(p); }
static size_t volatile minus_two = (size_t)-2;

int main(int argc, char **argv)
{
	if (argc < 2)
		setup_failed("usage: zero CASE");
	const char *c = argv[1];
	if (strncmp(c, "zero-", 5) == 0) {
		char *p = malloc(0);
		if (!p)
			harmless("malloc(0) returned NULL");
		if (strstr(c, "-freed"))
			release(p);
		if (strncmp(c, "zero-read", 9) == 0) {
			unsigned sum = 0;
			for (int i = 0; i < 16; i++)
				sum += ((volatile unsigned char *)p)[i];
			(void)sum;
		} else {
			store_bytes(p, 'Z', 16);
		}
		if (!strstr(c, "-freed"))
			release(p);
		keep_going(16);
		got_away();
	}
	errno = 0;
	if (strcmp(c, "huge-malloc") == 0) {
		if (malloc(minus_two) == NULL && errno == ENOMEM)
			harmless("NULL, ENOMEM");
	} else if (strcmp(c, "huge-calloc") == 0) {
		if (calloc((size_t)1 << 62, 16 + (minus_two & 0)) == NULL && errno == ENOMEM)
			harmless("NULL, ENOMEM");
	} else if (strcmp(c, "huge-realloc") == 0) {
		char *p = malloc(64);
		if (!p)
			setup_failed("malloc");
		memset(p, 'p', 64);
		if (realloc(p, minus_two) == NULL && errno == ENOMEM && p[63] == 'p')
			harmless("NULL, ENOMEM, the block intact");
	} else if (strcmp(c, "huge-memalign") == 0) {
		void *q = &errno;
		if (posix_memalign(&q, 64, minus_two) == ENOMEM && q == &errno)
			harmless("ENOMEM");
	} else {
		setup_failed("unknown case");
	}
	got_away();
}
