/* The engine's options: one table (options.c) that drives parsing the environment, MEMKIT_VERBOSE's
 * listing, MEMKIT_HELP's text, the man page's ENVIRONMENT entries and docs/options.md.
 *
 * Everything here runs inside the first malloc (or on behalf of a tool that prints the table), so nothing
 * here allocates: values are read with secure_getenv, messages formatted on the stack. */
#ifndef MK_OPTIONS_H
#define MK_OPTIONS_H

#include <stddef.h>

/* What MEMKIT_STATS asks for at exit. */
enum mk_stats_mode { MK_STATS_OFF = 0, MK_STATS_TEXT = 1, MK_STATS_JSON = 2 };

typedef struct mk_options {
	long purge_delay_ms;    /* MEMKIT_PURGE_DELAY: free pages (and wholly free segments) go back after this */
	long purge_limit;       /* MEMKIT_PURGE_LIMIT (bytes): unpurged free memory allowed; 0: adaptive */
	long verbose;           /* MEMKIT_VERBOSE: explain errors and decisions on stderr */
	long stats;             /* MEMKIT_STATS: an mk_stats_mode, the report printed at exit */
	const char *stats_file; /* MEMKIT_STATS_FILE: where that report goes ("" = stderr), %p = the pid */
	long help;              /* MEMKIT_HELP: print the options table on stderr at start */
} mk_options;

extern mk_options mk__opt __attribute__((visibility("hidden")));

/* Reads every option from the environment; prints one warning line per value not understood (saying what
 * is used instead) and per MEMKIT_* variable that names no option (with the closest name). */
void mk__options_read(void) __attribute__((visibility("hidden")));

/* Writes the table: as plain text (one line per option, MEMKIT_HELP), as troff .TP entries (memkit(3)'s
 * ENVIRONMENT section), or as the Markdown of docs/options.md. */
enum mk_options_format { MK_OPTIONS_TEXT, MK_OPTIONS_MAN, MK_OPTIONS_MARKDOWN };
void mk__options_write(enum mk_options_format format, void (*write_cb)(void *opaque, const char *text),
                       void *opaque) __attribute__((visibility("hidden")));

/* mallopt (mk__engine_mallopt, engine.h) works over the table of parameters in options.c. */
void mk__options_print_help(void) __attribute__((visibility("hidden")));

/* The values in effect, as one line (MEMKIT_VERBOSE at start). */
void mk__options_print_values(void) __attribute__((visibility("hidden")));

/* Parsers shared with mallopt and the tests: 0 and *out set, or -1 when s is not such a value. */
int mk__parse_size(const char *s, long *out) __attribute__((visibility("hidden")));
int mk__parse_bool(const char *s, long *out) __attribute__((visibility("hidden")));

#endif
