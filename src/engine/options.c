/* The options table, and everything derived from it: parsing the environment (with one warning line per
 * thing not understood), the listing of MEMKIT_VERBOSE, the text of MEMKIT_HELP, the troff entries of
 * memkit(3) and the Markdown of docs/options.md (tests/options/ checks that the committed one is current).
 * mallopt's parameters are a second, smaller table here, so that they are documented from what they do.
 *
 * Runs inside the first malloc: no allocation (secure_getenv, the environment read in place, messages
 * formatted on the stack). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>

#include "engine/engine.h"
#include "memkit.h"
#include "prof/prof.h"

mk_options mk__opt = { .purge_delay_ms = 10, .purge_limit = 0, .stats_file = "" };

enum type { T_BOOL, T_MS, T_SIZE, T_STATS, T_PATH };
static const char *const type_names[] = { "bool", "ms", "size", "enum", "path" };

typedef struct option {
	const char *name;
	enum type type;
	long def, min, max;        /* numeric types; the default of a path is "" (none) */
	const char *help;
	long *value;               /* numeric types */
	const char **text;         /* T_PATH */
} option;

#define PURGE_DELAY_MAX 3600000L           /* one hour */
#define PURGE_LIMIT_MAX ((long)1 << 40)    /* 1 TiB */

static const option options[] = {
	{ "MEMKIT_PURGE_DELAY", T_MS, 10, 0, PURGE_DELAY_MAX,
	  "how long freed pages, wholly free segments, and the spans an exited thread's heap keeps for the next "
	  "thread stay before they go back (0: at once)",
	  &mk__opt.purge_delay_ms, NULL },
	{ "MEMKIT_PURGE_LIMIT", T_SIZE, 0, 0, PURGE_LIMIT_MAX,
	  "unpurged free memory allowed before the oldest is purged at once, down to half of it (0: adaptive, "
	  "1/8 of the memory in spans, up to 1/2 while purged memory is wanted back at once, at least 4 MiB)",
	  &mk__opt.purge_limit, NULL },
	{ "MEMKIT_STATS", T_STATS, MK_STATS_OFF, MK_STATS_OFF, MK_STATS_JSON,
	  "print statistics at exit: off, text (or 1, yes, on) or json (one line)", &mk__opt.stats, NULL },
	{ "MEMKIT_STATS_FILE", T_PATH, 0, 0, 0,
	  "append the report at exit to this file instead of stderr (%p: the process id)", NULL, &mk__opt.stats_file },
	{ "MEMKIT_VERBOSE", T_BOOL, 0, 0, 1,
	  "print the options in effect at start, and after a bad-free abort where the pointer lies",
	  &mk__opt.verbose, NULL },
	{ "MEMKIT_HELP", T_BOOL, 0, 0, 1, "print this table on stderr at start, then go on", &mk__opt.help, NULL },
	/* The heap profiler and heap maps (src/prof/, docs/profiling.md). */
	{ "MEMKIT_PROF", T_BOOL, 0, 0, 1,
	  "sample allocations for the heap profiler (docs/profiling.md; cheapest under libmemkit-prof.so: memkit --prof)",
	  &mk__prof_opt.prof, NULL },
	{ "MEMKIT_PROF_RATE", T_SIZE, 512 * 1024, 1, (long)1 << 40,
	  "mean bytes allocated between two samples", &mk__prof_opt.rate, NULL },
	{ "MEMKIT_PROF_FILE", T_PATH, 0, 0, 0,
	  "where profiles go (unset: memkit.%p.heap; %p: the process id; a sequence number for every dump after "
	  "the first)", NULL, &mk__prof_opt.file },
	{ "MEMKIT_PROF_AT_EXIT", T_BOOL, 1, 0, 1, "write the profile at exit", &mk__prof_opt.at_exit, NULL },
	{ "MEMKIT_PROF_LEAKS", T_BOOL, 1, 0, 1, "print the leak report (sampled blocks still live, by stack) at exit",
	  &mk__prof_opt.leaks, NULL },
	{ "MEMKIT_PROF_GROWTH", T_SIZE, 0, 0, (long)1 << 40,
	  "write a profile whenever the estimated live bytes grew by this much (0: never)", &mk__prof_opt.growth, NULL },
	{ "MEMKIT_PROF_SIGNAL", T_PATH, 0, 0, 0,
	  "a signal (SIGUSR2, USR2 or a number) on which the profile and the heap map are written",
	  NULL, &mk__prof_opt.signal_name },
	{ "MEMKIT_MAP", T_PATH, 0, 0, 0, "write the heap map (SVG) to this file at exit and on the signal (%p: the "
	  "process id)", NULL, &mk__prof_opt.map },
	{ "MEMKIT_MAP_INTERVAL", T_MS, 0, 0, 3600000L,
	  "sample RSS, live and resident free bytes this often for the heap map's time view (0: no time view)",
	  &mk__prof_opt.map_interval, NULL },
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* MEMKIT_ names in the environment that are not options but belong to the project's tools (the benchmark
 * runner's), so they get no warning. */
static const char *const not_options[] = { "MEMKIT_BASELINE" };

/* ---- values ---- */

static int word_is(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcasecmp(s, *words) == 0)
			return 1;
	return 0;
}
static const char *const yes_words[] = { "1", "yes", "true", "on", NULL };
static const char *const no_words[] = { "0", "no", "false", "off", NULL };

int mk__parse_bool(const char *s, long *out)
{
	if (word_is(s, yes_words))
		*out = 1;
	else if (word_is(s, no_words))
		*out = 0;
	else
		return -1;
	return 0;
}

/* A decimal number and what follows it. */
static int parse_number(const char *s, long *v, const char **rest)
{
	if (*s < '0' || *s > '9')
		return -1;    /* no sign, no space */
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno || n > LONG_MAX)
		return -1;
	*v = (long)n;
	*rest = end;
	return 0;
}

/* Bytes: a number with an optional binary suffix (k, M, G, T; K, KB, KiB, ... all mean powers of 1024). */
int mk__parse_size(const char *s, long *out)
{
	long v;
	const char *u;
	if (parse_number(s, &v, &u) != 0)
		return -1;
	int shift = 0;
	const char *units = "kmgt";
	const char *at = *u ? strchr(units, *u | 0x20) : NULL;
	if (at) {
		shift = 10 * (int)(at - units + 1);
		u++;
		if (*u == 'i' && (u[1] == 'B' || u[1] == 'b'))
			u += 2;
		else if (*u == 'B' || *u == 'b')
			u++;
	} else if (*u == 'B' || *u == 'b') {
		u++;
	}
	if (*u || (shift && v > (LONG_MAX >> shift)))
		return -1;
	*out = v << shift;
	return 0;
}

/* Milliseconds: a number, optionally followed by ms or s. */
static int parse_ms(const char *s, long *out)
{
	long v;
	const char *u;
	if (parse_number(s, &v, &u) != 0)
		return -1;
	if (strcmp(u, "s") == 0) {
		if (v > LONG_MAX / 1000)
			return -1;
		v *= 1000;
	} else if (*u && strcmp(u, "ms") != 0) {
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_stats(const char *s, long *out)
{
	if (strcasecmp(s, "text") == 0)
		*out = MK_STATS_TEXT;
	else if (strcasecmp(s, "json") == 0)
		*out = MK_STATS_JSON;
	else
		return mk__parse_bool(s, out);
	return 0;
}

/* A value as the table shows it: sizes with the largest exact binary suffix. */
static void format_value(const option *o, long v, char *buf, size_t cap)
{
	static const char *const stats_names[] = { "off", "text", "json" };
	if (o->type == T_BOOL) {
		snprintf(buf, cap, "%s", v ? "yes" : "no");
	} else if (o->type == T_STATS) {
		snprintf(buf, cap, "%s", stats_names[v >= 0 && v <= MK_STATS_JSON ? v : 0]);
	} else if (o->type == T_SIZE && v) {
		const char *suffix = "kMGT";
		int k = -1;
		while (k < 3 && (v & 1023) == 0) {
			v >>= 10;
			k++;
		}
		if (k >= 0)
			snprintf(buf, cap, "%ld%c", v, suffix[k]);
		else
			snprintf(buf, cap, "%ld", v);
	} else {
		snprintf(buf, cap, "%ld", v);
	}
}

static const char *what_is_wanted(enum type t)
{
	switch (t) {
	case T_BOOL: return "yes or no (1, true, on / 0, false, off)";
	case T_MS: return "milliseconds (a number, optionally followed by ms or s)";
	case T_SIZE: return "a size (a number with an optional k, M, G or T suffix)";
	case T_STATS: return "off, text or json (or yes/no)";
	default: return "";
	}
}

static void range_text(const option *o, char *buf, size_t cap)
{
	char lo[32], hi[32];
	switch (o->type) {
	case T_BOOL: snprintf(buf, cap, "yes/no"); break;
	case T_STATS: snprintf(buf, cap, "off/text/json"); break;
	case T_PATH: snprintf(buf, cap, "%s", o->text == &mk__prof_opt.signal_name ? "a signal" : "a file name"); break;
	default:
		format_value(o, o->min, lo, sizeof lo);
		format_value(o, o->max, hi, sizeof hi);
		if (snprintf(buf, cap, "%s..%s", lo, hi) >= (int)cap)
			buf[0] = 0;   /* cannot happen with the table's ranges */
	}
}

static void read_one(const option *o, const char *s)
{
	if (o->type == T_PATH) {
		*o->text = s;
		return;
	}
	long v;
	int bad = o->type == T_BOOL ? mk__parse_bool(s, &v)
	        : o->type == T_MS   ? parse_ms(s, &v)
	        : o->type == T_SIZE ? mk__parse_size(s, &v)
	                            : parse_stats(s, &v);
	char used[32];
	if (bad) {
		format_value(o, *o->value, used, sizeof used);
		mk__message("memkit: %s=%s is not %s; using %s\n", o->name, s, what_is_wanted(o->type), used);
		return;
	}
	if (v < o->min || v > o->max) {
		char range[64];
		long clamped = v < o->min ? o->min : o->max;
		range_text(o, range, sizeof range);
		format_value(o, clamped, used, sizeof used);
		mk__message("memkit: %s=%s is out of range (%s); using %s\n", o->name, s, range, used);
		v = clamped;
	}
	*o->value = v;
}

/* ---- names that are not options ---- */

/* Levenshtein distance of two short names (longer ones are cut: a name that long is no option anyway). */
static size_t distance(const char *a, size_t la, const char *b)
{
	enum { MAX = 64 };
	size_t lb = strlen(b), row[MAX + 1];
	la = la > MAX ? MAX : la;
	lb = lb > MAX ? MAX : lb;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static int is_name(const char *entry, size_t len, const char *name)
{
	return strlen(name) == len && strncmp(entry, name, len) == 0;
}

static void warn_unknown_names(void)
{
	extern char **environ;
	if (getauxval(AT_SECURE) || !environ)
		return;   /* secure_getenv ignores the environment there: so do the warnings */
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, "MEMKIT_", 7) != 0)
			continue;
		const char *eq = strchr(*e, '=');
		size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
		int known = 0;
		for (size_t i = 0; i < NOPTIONS && !known; i++)
			known = is_name(*e, len, options[i].name);
		for (size_t i = 0; i < sizeof not_options / sizeof *not_options && !known; i++)
			known = is_name(*e, len, not_options[i]);
		if (known)
			continue;
		size_t best = 0, best_d = SIZE_MAX;
		for (size_t i = 0; i < NOPTIONS; i++) {
			size_t d = distance(*e, len, options[i].name);
			if (d < best_d) {
				best_d = d;
				best = i;
			}
		}
		mk__message("memkit: %.*s is not a memkit option (did you mean %s?); ignored\n", (int)(len > 64 ? 64 : len),
		            *e, options[best].name);
	}
}

void mk__options_read(void)
{
	int saved = errno;
	for (size_t i = 0; i < NOPTIONS; i++) {
		const char *s = secure_getenv(options[i].name);
		if (s && *s)
			read_one(&options[i], s);
	}
	warn_unknown_names();
	errno = saved;
}

/* ---- the table as text, troff and Markdown ---- */

static void out(void (*write_cb)(void *, const char *), void *opaque, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void out(void (*write_cb)(void *, const char *), void *opaque, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	write_cb(opaque, buf);
}

/* mallopt's parameters: which mean something to memkit (the option they set, and how the value maps) and
 * which are accepted and ignored (their glibc meaning has no counterpart here). */
typedef struct mallopt_param {
	const char *name;
	int param;
	long *sets;                /* the option's value; NULL: accepted, ignored */
	const char *doc;
} mallopt_param;

static const mallopt_param mallopt_params[] = {
	{ "M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, &mk__opt.purge_limit,
	  "value > 0: that many bytes; 0: 1 byte (keep no free memory unpurged); < 0 (glibc: never trim): 1T" },
	{ "MEMKIT_M_PURGE_DELAY", MEMKIT_M_PURGE_DELAY, &mk__opt.purge_delay_ms,
	  "memkit's own: value in ms, 0 at once (negative: refused, returns 0)" },
	{ "M_MMAP_THRESHOLD", M_MMAP_THRESHOLD, NULL,
	  "ignored: blocks over 2 MiB always get their own mapping, smaller ones never" },
	{ "M_ARENA_MAX", M_ARENA_MAX, NULL, "ignored: every thread has its own heap, there are no shared arenas" },
	{ "M_ARENA_TEST", M_ARENA_TEST, NULL, "ignored: as M_ARENA_MAX" },
	{ "M_TOP_PAD", M_TOP_PAD, NULL, "ignored: memory is mapped in 4 MiB segments, never grown by sbrk" },
	{ "M_MMAP_MAX", M_MMAP_MAX, NULL, "ignored: memkit's memory is all mapped; it cannot do without mmap" },
	{ "M_MXFAST", M_MXFAST, NULL, "ignored: no fastbins (every small size has its own size class)" },
	{ "M_CHECK_ACTION", M_CHECK_ACTION, NULL, "ignored: a bad free always prints one line and aborts" },
	{ "M_PERTURB", M_PERTURB, NULL, "ignored: blocks are not filled (it would cost on the fast path)" },
	{ "M_NLBLKS", M_NLBLKS, NULL, "ignored (glibc ignores it too)" },
	{ "M_GRAIN", M_GRAIN, NULL, "ignored (glibc ignores it too)" },
	{ "M_KEEP", M_KEEP, NULL, "ignored (glibc ignores it too)" },
};

static const option *option_of(const long *value)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].value == value)
			return &options[i];
	return NULL;
}

int mk__engine_mallopt(int param, int value)
{
	for (size_t i = 0; i < sizeof mallopt_params / sizeof *mallopt_params; i++) {
		const mallopt_param *m = &mallopt_params[i];
		if (m->param != param)
			continue;
		if (!m->sets)
			return 1;
		const option *o = option_of(m->sets);
		long v = value;
		if (o->type == T_SIZE)   /* M_TRIM_THRESHOLD */
			v = value > 0 ? value : value == 0 ? 1 : PURGE_LIMIT_MAX;
		else if (v < 0)
			return 0;
		if (v > o->max)
			v = o->max;
		mk__init();        /* so that the environment, read once, does not overwrite it later */
		mk__lock_all();    /* the purge paths read these under their locks */
		*m->sets = v;
		mk__unlock_all();
		if (m->sets == &mk__opt.purge_delay_ms)
			mk__heaps_sweep_parked();
		return 1;
	}
	return 0;
}

/* The default and range columns of o; a path has no default, which each output says its own way. */
static void columns(const option *o, const char *no_default, char def[32], char range[64])
{
	if (o->type == T_PATH)   /* only the statistics file has a default place (stderr); the others: none */
		snprintf(def, 32, "%s", o->text == &mk__opt.stats_file ? no_default : "(none)");
	else
		format_value(o, o->def, def, 32);
	range_text(o, range, 64);
}

static void write_text(void (*cb)(void *, const char *), void *opaque)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const option *o = &options[i];
		char def[32], range[64];
		columns(o, "(none)", def, range);
		out(cb, opaque, "%-18s %-4s default %-6s range %-16s %s\n", o->name, type_names[o->type], def, range,
		    o->help);
	}
}

/* troff: a backslash is \e; a line may not start with a dot or quote (none of ours do after .TP's name). */
static void man_escaped(void (*cb)(void *, const char *), void *opaque, const char *s)
{
	char buf[1024];
	size_t n = 0;
	for (; *s && n + 3 < sizeof buf; s++) {
		if (*s == '\\') {
			buf[n++] = '\\';
			buf[n++] = 'e';
		} else if (*s == '-') {
			buf[n++] = '\\';
			buf[n++] = '-';
		} else {
			buf[n++] = *s;
		}
	}
	buf[n] = 0;
	cb(opaque, buf);
}

static void write_man(void (*cb)(void *, const char *), void *opaque)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const option *o = &options[i];
		char def[32], range[64], line[512];
		columns(o, "none: stderr", def, range);
		out(cb, opaque, ".TP\n.B %s\n", o->name);
		snprintf(line, sizeof line, "(%s; default %s; %s) %s\n", type_names[o->type], def, range, o->help);
		man_escaped(cb, opaque, line);
	}
}

static void write_markdown(void (*cb)(void *, const char *), void *opaque)
{
	out(cb, opaque,
	    "# memkit's options\n\n"
	    "<!-- Generated from the table in src/engine/options.c by `make docs`; "
	    "tests/options/ fails when this file is not what the table gives. -->\n\n"
	    "Environment variables, read once at start with `secure_getenv` (so ignored in set-user-ID programs).\n"
	    "`MEMKIT_HELP=1` prints this table on stderr; `MEMKIT_VERBOSE=1` prints the values in effect.\n"
	    "A value that is not understood gets one warning line on stderr saying what is used instead (the\n"
	    "default, or the nearest bound when out of range), and a `MEMKIT_*` variable that names no option gets\n"
	    "one with the closest option's name. Sizes take `k`, `M`, `G`, `T` (also `KB`, `KiB`, ...: all powers\n"
	    "of 1024); durations `ms` or `s`; yes/no values `1`, `yes`, `true`, `on` and `0`, `no`, `false`, `off`.\n\n"
	    "| variable | type | default | range | meaning |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < NOPTIONS; i++) {
		const option *o = &options[i];
		char def[32], range[64];
		columns(o, "(stderr)", def, range);
		out(cb, opaque, "| `%s` | %s | %s | %s | %s |\n", o->name, type_names[o->type], def, range, o->help);
	}
	out(cb, opaque,
	    "\n## mallopt\n\n"
	    "`mallopt(param, value)` returns 1 for every parameter below and 0 for any other. Those that set an\n"
	    "option change it for the whole process from then on (as if the variable had been set), overriding\n"
	    "the environment; the others are accepted and do nothing. `MEMKIT_M_PURGE_DELAY` is declared in\n"
	    "`memkit.h`.\n\n"
	    "| parameter | sets | how the value maps |\n|---|---|---|\n");
	for (size_t i = 0; i < sizeof mallopt_params / sizeof *mallopt_params; i++) {
		const mallopt_param *m = &mallopt_params[i];
		const option *o = m->sets ? option_of(m->sets) : NULL;
		out(cb, opaque, "| `%s` (%d) | %s%s%s | %s |\n", m->name, m->param, o ? "`" : "", o ? o->name : "nothing",
		    o ? "`" : "", m->doc);
	}
}

void mk__options_write(enum mk_options_format format, void (*write_cb)(void *opaque, const char *text), void *opaque)
{
	if (format == MK_OPTIONS_MAN)
		write_man(write_cb, opaque);
	else if (format == MK_OPTIONS_MARKDOWN)
		write_markdown(write_cb, opaque);
	else
		write_text(write_cb, opaque);
}

static void to_stderr(void *opaque, const char *text)
{
	(void)opaque;
	mk__message("%s", text);
}

void mk__options_print_help(void) { write_text(to_stderr, NULL); }

void mk__options_print_values(void)
{
	char limit[80];
	if (mk__opt.purge_limit)
		snprintf(limit, sizeof limit, "%ld bytes", mk__opt.purge_limit);
	else
		snprintf(limit, sizeof limit, "adaptive (1/8 to 1/2 of in use, at least %zu bytes)", MK_PURGE_BUDGET_MIN);
	static const char *const stats[] = { "off", "on (text)", "on (json)" };
	mk__message("memkit: purge delay %ld ms, purge limit %s, statistics at exit %s%s%s, verbose %s\n",
	            mk__opt.purge_delay_ms, limit, stats[mk__opt.stats], *mk__opt.stats_file ? " to " : "",
	            mk__opt.stats_file, mk__opt.verbose ? "on" : "off");
}
