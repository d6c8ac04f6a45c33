/* Writes the options table, or the statistics table, from the library's own lists (src/engine/options.c,
 * src/engine/stats_list.h), so that the docs and the man page cannot drift from the code:
 *   options-doc man        troff .TP entries for memkit(3)'s ENVIRONMENT section
 *   options-doc markdown   docs/options.md
 *   options-doc text       what MEMKIT_HELP=1 prints
 *   options-doc stats      the counter tables of docs/stats.md (between its "counters" markers)
 * Linked with build/libmemkit-mk.a, whose internal functions a static link can reach. */
#include <stdio.h>
#include <string.h>

#include "engine/options.h"
#include "engine/stats.h"

static void to_stdout(void *opaque, const char *text)
{
	(void)opaque;
	fputs(text, stdout);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	if (strcmp(what, "man") == 0)
		mk__options_write(MK_OPTIONS_MAN, to_stdout, NULL);
	else if (strcmp(what, "markdown") == 0)
		mk__options_write(MK_OPTIONS_MARKDOWN, to_stdout, NULL);
	else if (strcmp(what, "text") == 0)
		mk__options_write(MK_OPTIONS_TEXT, to_stdout, NULL);
	else if (strcmp(what, "stats") == 0)
		mk__stats_write_doc(to_stdout, NULL);
	else {
		fprintf(stderr, "usage: options-doc man|markdown|text|stats\n");
		return 2;
	}
	return ferror(stdout) ? 1 : 0;
}
