/* Checks on what the allocator does with bad input: it must abort with one line on stderr that names
 * memkit, the pointer (as printf's %p writes it) and the error.  test.h's test_expect_abort matches one
 * string; these need the three on one line, and sometimes a pointer only the child knows. */
#ifndef MK_TEST_ABORT_H
#define MK_TEST_ABORT_H

#include "../common/test.h"   /* test_capture */

/* The error words an abort line may use for a pointer the allocator cannot free. */
static inline int test_names_error(const char *line)
{
	return strstr(line, "double free") || strstr(line, "invalid pointer") || strstr(line, "interior pointer");
}

/* Runs fn(arg) in a child: it must die of SIGABRT, and one line of its stderr must contain "memkit", ptr
 * formatted with %p, and the error `word` (NULL: any of the error words, where the allocator cannot be
 * expected to tell which, like a freed huge block that is unmapped by now).  ptr == NULL: the child names
 * the pointer itself by printing "<label> %p" as its first line of stderr (for addresses only it knows,
 * like its own stack). */
static inline int test_expect_bad_free(void (*fn)(void *), void *arg, void *ptr, const char *word)
{
	char out[8192], want[64];
	int status = test_capture(fn, arg, out, sizeof out);
	if (ptr == NULL) {
		char word[32];
		if (sscanf(out, "%31s %p", word, &ptr) != 2)
			ptr = NULL;
	}
	snprintf(want, sizeof want, "%p", ptr);
	char lines[sizeof out];
	memcpy(lines, out, sizeof out);
	int found = 0;
	for (char *line = lines; line && *line && !found;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = 0;
		found = strstr(line, "memkit") && strstr(line, want) && (word ? strstr(line, word) != NULL : test_names_error(line));
		line = end ? end + 1 : NULL;
	}
	int ok = ptr && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && found;
	if (!ok)
		fprintf(stderr, "  expected an abort naming memkit, %s and %s; got status %#x, stderr: %s\n", want,
		        word ? word : "the error", status, out);
	return ok;
}

#endif
