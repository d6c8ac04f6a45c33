/* Checks on what the allocator does with bad input: it must abort with one line on stderr that names
 * memkit, the function, the error and the pointer (as printf's %p writes it), exactly:
 *     memkit: free(): double free of 0x7f3a2c001040
 * test.h's test_expect_abort matches one string; this needs the whole line, and sometimes a pointer only
 * the child knows. */
#ifndef MK_TEST_ABORT_H
#define MK_TEST_ABORT_H

#include "../common/test.h"   /* test_capture */

/* Runs fn(arg) in a child: it must die of SIGABRT, and one line of its stderr must be exactly
 * "memkit: <what> <ptr>", `what` being the function and the error ("free(): double free of",
 * "free(): interior pointer", "free(): invalid pointer", ...).  ptr == NULL: the child names the pointer
 * itself by printing "<label> %p" as its first line of stderr (for addresses only it knows, like its own
 * stack). */
static inline int test_expect_bad_free(void (*fn)(void *), void *arg, void *ptr, const char *what)
{
	char out[8192], want[160];
	int status = test_capture(fn, arg, out, sizeof out);
	if (ptr == NULL) {
		char label[32];
		if (sscanf(out, "%31s %p", label, &ptr) != 2)
			ptr = NULL;
	}
	snprintf(want, sizeof want, "memkit: %s %p", what, ptr);
	char lines[sizeof out];
	memcpy(lines, out, sizeof out);
	int found = 0;
	for (char *line = lines; line && *line && !found;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = 0;
		found = strcmp(line, want) == 0;
		line = end ? end + 1 : NULL;
	}
	int ok = ptr && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && found;
	if (!ok)
		fprintf(stderr, "  expected an abort with the line \"%s\"; got status %#x, stderr: %s\n", want, status,
		        out);
	return ok;
}

#endif
