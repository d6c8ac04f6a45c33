/* The options table (src/engine/options.c): the forms of values people write, one warning line for each
 * thing not understood, MEMKIT_HELP, MEMKIT_VERBOSE's listing, and the committed docs/options.md being what
 * the table gives.  Linked with build/libmemkit-mk.a; every case runs this program again with its own
 * environment (the mk_ build reads the options at its first call) and reads its stderr. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>

#include "include/memkit.h"
#include "engine/options.h"
#include "engine/stats.h"
#include "tests/common/test.h"

static void exec_self(void *env)
{
	clearenv();
	for (char **e = env; *e; e++)
		putenv(*e);
	execl("/proc/self/exe", "options", "--child", (char *)NULL);
	_exit(127);
}

static char out[65536];

/* Runs the child with env (NULL-terminated NAME=VALUE list); its stderr in `out`; 1 when it exited 0. */
static int run(char **env)
{
	int st = test_capture(exec_self, env, out, sizeof out);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "  child status %#x, stderr: %s\n", st, out);
		return 0;
	}
	return 1;
}

/* How many lines of out contain `s`. */
static int lines_with(const char *s)
{
	int n = 0;
	for (const char *line = out; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
		if (memmem(line, len, s, strlen(s)))
			n++;
		line += len;
	}
	return n;
}

static int lines(void) { return lines_with("\n") + (out[0] && out[strlen(out) - 1] != '\n'); }

#define ENV(...) ((char *[]){ __VA_ARGS__, NULL })

/* MEMKIT_VERBOSE's line says the value used. */
static int verbose_says(char *var, const char *expect)
{
	if (!run(ENV("MEMKIT_VERBOSE=1", var)))
		return 0;
	int ok = lines_with(expect) == 1 && lines() == 1;   /* and no warning */
	if (!ok)
		fprintf(stderr, "  %s: want only \"%s\" in: %s\n", var, expect, out);
	return ok;
}

static void test_sizes_with_suffixes(void)
{
	CHECK(verbose_says("MEMKIT_PURGE_LIMIT=1G", "purge limit 1073741824 bytes"));
	CHECK(verbose_says("MEMKIT_PURGE_LIMIT=64MiB", "purge limit 67108864 bytes"));
	CHECK(verbose_says("MEMKIT_PURGE_LIMIT=4k", "purge limit 4096 bytes"));
	CHECK(verbose_says("MEMKIT_PURGE_LIMIT=4KB", "purge limit 4096 bytes"));
	CHECK(verbose_says("MEMKIT_PURGE_LIMIT=2M", "purge limit 2097152 bytes"));
	CHECK(verbose_says("MEMKIT_PURGE_LIMIT=123", "purge limit 123 bytes"));
	CHECK(verbose_says("MEMKIT_PURGE_LIMIT=1T", "purge limit 1099511627776 bytes"));
}

static void test_durations(void)
{
	CHECK(verbose_says("MEMKIT_PURGE_DELAY=25", "purge delay 25 ms"));
	CHECK(verbose_says("MEMKIT_PURGE_DELAY=25ms", "purge delay 25 ms"));
	CHECK(verbose_says("MEMKIT_PURGE_DELAY=2s", "purge delay 2000 ms"));
	CHECK(verbose_says("MEMKIT_PURGE_DELAY=0", "purge delay 0 ms"));
}

/* The report at exit for each way of saying yes (and none for each no). */
static void test_stats_words(void)
{
	static char *yes[] = { "MEMKIT_STATS=yes", "MEMKIT_STATS=1", "MEMKIT_STATS=on", "MEMKIT_STATS=true",
	                       "MEMKIT_STATS=TRUE", "MEMKIT_STATS=text" };
	static char *no[] = { "MEMKIT_STATS=no", "MEMKIT_STATS=0", "MEMKIT_STATS=off", "MEMKIT_STATS=false" };
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
		CHECK(run(ENV(yes[i])));
		CHECK(lines_with("]: statistics") == 1 && lines_with("]: segments.current") == 1);
		if (lines_with("]: statistics") != 1)
			fprintf(stderr, "  %s gave no report: %s\n", yes[i], out);
	}
	for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
		CHECK(run(ENV(no[i])));
		CHECK(out[0] == 0);
	}
	CHECK(run(ENV("MEMKIT_STATS=json")));
	CHECK(lines() == 1 && strncmp(out, "{\"memkit\":{\"pid\":", 17) == 0 && strstr(out, "}}\n") != NULL);
}

/* One warning line naming the variable, its value and what is used instead. */
static int warns(char *var, const char *expect)
{
	if (!run(ENV(var)))
		return 0;
	int ok = lines() == 1 && lines_with(expect) == 1 && strncmp(out, "memkit: ", 8) == 0;
	if (!ok)
		fprintf(stderr, "  %s: want one line with \"%s\", got: %s\n", var, expect, out);
	return ok;
}

static void test_bad_values_warn_once(void)
{
	CHECK(warns("MEMKIT_PURGE_LIMIT=abc", "MEMKIT_PURGE_LIMIT=abc is not a size"));
	CHECK(warns("MEMKIT_PURGE_LIMIT=abc", "; using 0"));
	CHECK(warns("MEMKIT_PURGE_LIMIT=-5", "MEMKIT_PURGE_LIMIT=-5 is not a size"));
	CHECK(warns("MEMKIT_PURGE_LIMIT=1X", "using 0"));
	CHECK(warns("MEMKIT_PURGE_LIMIT=2T", "out of range (0..1T); using 1T"));
	CHECK(warns("MEMKIT_PURGE_DELAY=soon", "MEMKIT_PURGE_DELAY=soon is not milliseconds"));
	CHECK(warns("MEMKIT_PURGE_DELAY=soon", "using 10"));
	CHECK(warns("MEMKIT_PURGE_DELAY=99999999", "out of range (0..3600000); using 3600000"));
	CHECK(warns("MEMKIT_PURGE_DELAY=-1", "using 10"));
	CHECK(warns("MEMKIT_STATS=maybe", "MEMKIT_STATS=maybe is not off, text or json"));
	CHECK(warns("MEMKIT_STATS=maybe", "using off"));
	CHECK(warns("MEMKIT_VERBOSE=2", "MEMKIT_VERBOSE=2 is not yes or no"));
	CHECK(warns("MEMKIT_HELP=please", "using no"));
	/* and the bad value changed nothing: the default is in effect */
	CHECK(run(ENV("MEMKIT_VERBOSE=1", "MEMKIT_PURGE_LIMIT=abc")));
	CHECK(lines() == 2 && lines_with("purge limit adaptive") == 1 && lines_with("MEMKIT_PURGE_LIMIT=abc") == 1);
}

static void test_unknown_names_get_closest(void)
{
	CHECK(warns("MEMKIT_PURGE_DELY=3", "MEMKIT_PURGE_DELY is not a memkit option (did you mean MEMKIT_PURGE_DELAY?)"));
	CHECK(warns("MEMKIT_STAT=1", "did you mean MEMKIT_STATS?"));
	CHECK(warns("MEMKIT_VERBSE=1", "did you mean MEMKIT_VERBOSE?"));
	CHECK(warns("MEMKIT_STATSFILE=/tmp/x", "did you mean MEMKIT_STATS_FILE?"));
	CHECK(warns("MEMKIT_PURGELIMIT=1", "did you mean MEMKIT_PURGE_LIMIT?"));
	CHECK(warns("MEMKIT_=1", "MEMKIT_ is not a memkit option"));
	/* the benchmark runner's variable is not an option, and no mistake */
	CHECK(run(ENV("MEMKIT_BASELINE=/x/libmemkit.so")));
	CHECK(out[0] == 0);
	/* other names are none of memkit's business */
	CHECK(run(ENV("MEMKITX=1", "MY_MEMKIT_STATS=1")));
	CHECK(out[0] == 0);
}

/* The defaults, and every option set, in the one line of MEMKIT_VERBOSE. */
static void test_verbose_lists_values(void)
{
	CHECK(run(ENV("MEMKIT_VERBOSE=yes")));
	CHECK(lines() == 1);
	CHECK(lines_with("purge delay 10 ms, purge limit adaptive") == 1);
	CHECK(lines_with("statistics at exit off, verbose on") == 1);
	CHECK(run(ENV("MEMKIT_VERBOSE=on", "MEMKIT_STATS=json", "MEMKIT_STATS_FILE=/dev/null", "MEMKIT_PURGE_DELAY=7")));
	CHECK(lines_with("purge delay 7 ms") == 1 && lines_with("statistics at exit on (json) to /dev/null") == 1);
}

/* MEMKIT_HELP: one line per option, each with its type, default and range, and the program goes on. */
static void test_help_lists_table(void)
{
	CHECK(run(ENV("MEMKIT_HELP=1")));
	static const char *const names[] = { "MEMKIT_PURGE_DELAY ", "MEMKIT_PURGE_LIMIT ", "MEMKIT_STATS ",
	                                     "MEMKIT_STATS_FILE ", "MEMKIT_VERBOSE ", "MEMKIT_HELP " };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		CHECK(lines_with(names[i]) == 1);
	CHECK(lines() == (int)(sizeof names / sizeof *names));
	CHECK(lines_with(" default ") == lines() && lines_with(" range ") == lines());
	CHECK(lines_with("MEMKIT_PURGE_DELAY ms   default 10 ") == 1);
	CHECK(lines_with("MEMKIT_PURGE_LIMIT size default 0 ") == 1);
}

/* A file's contents (NUL-terminated, in a static buffer); NULL when unreadable. */
static char file_buf[65536];
static const char *read_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, file_buf, sizeof file_buf - 1);
	close(fd);
	if (n < 0)
		return NULL;
	file_buf[n] = 0;
	return file_buf;
}

static char gen[65536];
static size_t gen_len;
static void collect(void *opaque, const char *text)
{
	(void)opaque;
	size_t n = strlen(text);
	if (gen_len + n < sizeof gen) {
		memcpy(gen + gen_len, text, n + 1);
		gen_len += n;
	}
}

/* docs/options.md is what the table gives, and docs/stats.md's counter tables what the lists give (`make
 * docs` rewrites both). */
static void test_docs_current(void)
{
	gen_len = 0;
	gen[0] = 0;
	mk__options_write(MK_OPTIONS_MARKDOWN, collect, NULL);
	const char *doc = read_file("docs/options.md");
	REQUIRE(doc != NULL);
	CHECK(strcmp(doc, gen) == 0);
	if (strcmp(doc, gen) != 0)
		fprintf(stderr, "  docs/options.md differs from the table: run `make docs`\n");
	/* the man page's entries: one .TP per option */
	gen_len = 0;
	mk__options_write(MK_OPTIONS_MAN, collect, NULL);
	int tp = 0;
	for (const char *p = gen; (p = strstr(p, ".TP\n.B MEMKIT_")); p++)
		tp++;
	CHECK(tp == 6);
	gen_len = 0;
	gen[0] = 0;
	mk__stats_write_doc(collect, NULL);
	doc = read_file("docs/stats.md");
	REQUIRE(doc != NULL);
	const char *begin = strstr(doc, "<!-- counters -->\n"), *end = strstr(doc, "<!-- /counters -->");
	REQUIRE(begin && end);
	begin += strlen("<!-- counters -->\n");
	CHECK((size_t)(end - begin) == gen_len && strncmp(begin, gen, gen_len) == 0);
	if ((size_t)(end - begin) != gen_len || strncmp(begin, gen, gen_len) != 0)
		fprintf(stderr, "  docs/stats.md's tables differ from the lists: run `make docs`\n");
}

static void cases(void)
{
	RUN(test_sizes_with_suffixes);
	RUN(test_durations);
	RUN(test_stats_words);
	RUN(test_bad_values_warn_once);
	RUN(test_unknown_names_get_closest);
	RUN(test_verbose_lists_values);
	RUN(test_help_lists_table);
	RUN(test_docs_current);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--child") == 0) {
		void *p = mk_malloc(100);   /* the first call: options are read here */
		mk_free(p);
		return p ? 0 : 1;
	}
	return test_main(cases);
}
