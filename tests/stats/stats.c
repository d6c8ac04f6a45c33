/* Statistics (src/engine/stats.c) through the mk_ API: mk_stats_get's figures follow what the program does,
 * exactly where docs/stats.md says they are exact; mk_stats_print's text and JSON; the report at exit to
 * MEMKIT_STATS_FILE and to a stderr the program closed; malloc_info's XML; mallopt's mapped parameters
 * having their effect; wholly free segments waiting for the purge delay.  Linked with
 * build/libmemkit-mk.a; each case runs this program again (--child NAME) with its own environment, so that
 * it starts from a fresh heap with its options read at its first call. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "include/memkit.h"
#include "tests/common/test.h"

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)

static uint64_t get(const char *name)
{
	uint64_t v = 0;
	if (mk_stats_get(name, &v) != 0)
		fprintf(stderr, "  mk_stats_get(\"%s\") failed\n", name);
	return v;
}

/* ---- the children: each returns its exit status (0: every check held) ---- */

static int failed;
#define EXPECT(cond)                                                                \
	do {                                                                            \
		if (!(cond)) {                                                              \
			fprintf(stderr, "  child: %s (line %d)\n", #cond, __LINE__);            \
			failed = 1;                                                             \
		}                                                                           \
	} while (0)

/* Small blocks: live counts per class and in all are exact (derived from the spans). */
static int child_small(void)
{
	enum { N = 500 };   /* one span of 64 KiB holds 585 */
	static void *p[N];
	uint64_t refills0 = get("class.112.refills");
	for (int i = 0; i < N; i++)
		p[i] = mk_malloc(100);   /* class 112 */
	EXPECT(get("class.112.live") == N);
	EXPECT(get("class.112.spans") == 1 && get("class.112.spans_made") == 1);
	EXPECT(get("class.112.capacity") == 65536 / 112);
	EXPECT(get("class.112.util_permille") == N * 112 * 1000 / 65536);
	EXPECT(get("class.112.refills") > refills0);
	EXPECT(get("small.blocks") >= N && get("small.bytes") >= N * 112);
	EXPECT(get("blocks.current") >= N && get("bytes.current") >= N * 112);
	for (int i = 0; i < N; i++)
		mk_free(p[i]);
	EXPECT(get("class.112.live") == 0);
	EXPECT(get("small.span_bytes_peak") >= 65536);
	return failed;
}

/* Large and huge blocks: counts, bytes (whole slices, whole pages), totals and peaks, all exact. */
static int child_large_huge(void)
{
	void *l[3];
	uint64_t allocs = get("large.allocs"), total = get("large.bytes_total");
	for (int i = 0; i < 3; i++)
		l[i] = mk_malloc(200 * KiB);   /* 4 slices of 64 KiB each */
	EXPECT(get("large.blocks") == 3 && get("large.bytes") == 3 * 256 * KiB);
	EXPECT(get("large.allocs") == allocs + 3 && get("large.bytes_total") == total + 3 * 256 * KiB);
	for (int i = 0; i < 3; i++)
		mk_free(l[i]);
	EXPECT(get("large.blocks") == 0 && get("large.bytes_peak") >= 3 * 256 * KiB);

	uint64_t mmaps = get("os.mmap"), mremaps = get("os.mremap");
	void *h[2] = { mk_malloc(5 * MiB), mk_malloc(5 * MiB + 1) };
	EXPECT(get("huge.blocks") == 2 && get("huge.bytes") == 10 * MiB + 4096);
	EXPECT(get("huge.allocs") == 2 && get("huge.bytes_total") == 10 * MiB + 4096);
	EXPECT(get("os.mmap") >= mmaps + 2);
	h[0] = mk_realloc(h[0], 20 * MiB);
	EXPECT(get("huge.reallocs") == 1 && get("os.mremap") == mremaps + 1);
	EXPECT(get("huge.bytes") == 25 * MiB + 4096 && get("huge.bytes_peak") == 25 * MiB + 4096);
	EXPECT(get("bytes.held_peak") >= get("bytes.held") && get("bytes.held") >= 25 * MiB);
	mk_free(h[0]);
	mk_free(h[1]);
	EXPECT(get("huge.blocks") == 0 && get("huge.bytes") == 0 && get("huge.bytes_peak") == 25 * MiB + 4096);
	EXPECT(get("huge.cached_bytes") > 0);   /* the default delay keeps them for reuse */
	return failed;
}

/* System calls and purges, as the OS layer counts them. */
static int child_os(void)
{
	uint64_t munmaps = get("os.munmap"), purges = get("purges"), madvises = get("os.madvise");
	void *h = mk_malloc(8 * MiB);
	mk_free(h);   /* MEMKIT_PURGE_DELAY=0: unmapped at once */
	EXPECT(get("os.munmap") > munmaps);
	static void *p[2000];
	for (int i = 0; i < 2000; i++)
		p[i] = mk_malloc(1000);
	for (int i = 0; i < 2000; i++)
		mk_free(p[i]);
	EXPECT(get("purges") > purges && get("os.madvise") >= get("purges") - purges + madvises);
	EXPECT(get("purges.bytes") >= 64 * KiB);
	EXPECT(get("segments.mapped") >= 1 && get("segments.peak") >= 1);
	return failed;
}

static void *alloc_some(void *arg)
{
	void **out = arg;
	for (int i = 0; i < 100; i++)
		out[i] = mk_malloc(48);
	return NULL;
}

/* Heaps made and adopted; remote frees counted by the freeing thread (exact). */
static int child_threads(void)
{
	static void *blocks[100];
	mk_free(mk_malloc(1));   /* this thread's heap */
	uint64_t created = get("heaps.created"), adopted = get("heaps.adopted"), remote = get("remote_frees");
	pthread_t t;
	pthread_create(&t, NULL, alloc_some, blocks);
	pthread_join(t, NULL);
	EXPECT(get("heaps.created") == created + 1);
	EXPECT(get("heaps.parked") == 1 && get("heaps.current") == created + 1);
	for (int i = 0; i < 100; i++)
		mk_free(blocks[i]);   /* into the parked heap's span: remote frees */
	EXPECT(get("remote_frees") == remote + 100);
	pthread_create(&t, NULL, alloc_some, blocks);
	pthread_join(t, NULL);
	EXPECT(get("heaps.adopted") == adopted + 1 && get("heaps.created") == created + 1);
	for (int i = 0; i < 100; i++)
		mk_free(blocks[i]);
	return failed;
}

/* Wholly free segments go back after the purge delay (300 ms here), not at once. */
static int child_segment_delay(void)
{
	enum { N = 3 * 21 };   /* three segments of 21 large blocks of 3 slices */
	static void *l[N];
	for (int i = 0; i < N; i++)
		l[i] = mk_malloc(130 * KiB);
	uint64_t segs = get("segments.current"), unmapped = get("segments.unmapped");
	EXPECT(segs >= 3);
	for (int i = 0; i < N; i++)
		mk_free(l[i]);
	EXPECT(get("segments.current") == segs);   /* all still mapped: none free for 300 ms yet */
	EXPECT(get("segments.unmapped") == unmapped);
	test_sleep_ms(700);
	mk_free(mk_malloc(130 * KiB));   /* an allocator call after the delay: the segments' purge round */
	EXPECT(get("segments.current") <= 2);   /* one kept for reuse, maybe one more for the new block */
	EXPECT(get("segments.unmapped") >= unmapped + segs - 2);
	return failed;
}

/* With MEMKIT_PURGE_DELAY=0 they go at once (but for the one kept for reuse). */
static int child_segment_now(void)
{
	enum { N = 3 * 21 };
	static void *l[N];
	for (int i = 0; i < N; i++)
		l[i] = mk_malloc(130 * KiB);
	uint64_t segs = get("segments.current");
	for (int i = 0; i < N; i++)
		mk_free(l[i]);
	EXPECT(segs >= 3 && get("segments.current") == 0);   /* delay 0 purges "all": none is kept */
	return failed;
}

/* mallopt's mapped parameters, each seen to act on what stays resident (keepcost: unpurged free bytes). */
static size_t resident_after_freeing(int n)
{
	static void *l[64];
	for (int i = 0; i < n; i++)
		l[i] = mk_malloc(200 * KiB);   /* 256 KiB runs */
	for (int i = 0; i < n; i++)
		mk_free(l[i]);
	return mk_mallinfo2().keepcost;
}

static int child_mallopt(void)
{
	/* MEMKIT_PURGE_DELAY=100000 in the environment: nothing ages out during the child */
	EXPECT(resident_after_freeing(8) == 2 * MiB);            /* under the 4 MiB budget: all kept */
	EXPECT(mk_mallopt(M_TRIM_THRESHOLD, 0) == 1);            /* keep nothing unpurged */
	EXPECT(resident_after_freeing(8) == 0);
	EXPECT(mk_mallopt(M_TRIM_THRESHOLD, 1 * MiB) == 1);
	size_t keep = resident_after_freeing(8);
	EXPECT(keep <= 1 * MiB);
	EXPECT(mk_mallopt(M_TRIM_THRESHOLD, -1) == 1);           /* glibc: never trim; memkit: no budget */
	/* over the default 4 MiB, all kept: the 40 runs, and the one run the next large malloc after a free
	 * sets aside when it is the run of the block freed last (src/engine/reuse.c), if it was resident */
	size_t kept = resident_after_freeing(40);
	EXPECT(kept == 10 * MiB || kept == 10 * MiB + 256 * KiB);
	mk_malloc_trim(0);
	EXPECT(mk_mallopt(MEMKIT_M_PURGE_DELAY, 0) == 1);        /* purge at once */
	EXPECT(resident_after_freeing(8) == 0);
	EXPECT(mk_mallopt(MEMKIT_M_PURGE_DELAY, -1) == 0);       /* refused: the delay stays 0 */
	EXPECT(resident_after_freeing(8) == 0);
	EXPECT(mk_mallopt(M_ARENA_MAX, 1) == 1 && mk_mallopt(M_MMAP_THRESHOLD, 4096) == 1);   /* accepted, ignored */
	EXPECT(mk_mallopt(12345, 1) == 0);
	EXPECT(mk_check() == 0);
	return failed;
}

/* The report at exit: MEMKIT_STATS_FILE names the file (with %p), or stderr even after the program
 * closed it (as coreutils do). */
static int child_exit_report(void)
{
	void *p = mk_malloc(100);
	(void)p;
	if (getenv("CLOSE_STDERR"))
		close(2);
	return 0;
}

/* Started with no stderr (fd 2 closed, as under `2>&-` or a daemon's start; memkit starts with it closed:
 * the drop-in at load, the mk_ build at its first call): the program's first open then gets fd 2, and the
 * report at exit must not go into that file. */
static int child_no_stderr(void)
{
	close(2);
	void *p = mk_malloc(100);
	int fd = open(getenv("DATA_FILE"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd != 2)
		return 3;
	if (!p || write(fd, "data\n", 5) != 5)
		return 4;
	mk_free(p);
	return 0;
}

/* ---- the cases ---- */

static char out[1 << 20];

static void exec_child(void *arg)
{
	char **argv = arg;   /* child name, then NAME=VALUE... */
	clearenv();
	for (char **e = argv + 1; *e; e++)
		putenv(*e);
	execl("/proc/self/exe", "stats", "--child", argv[0], (char *)NULL);
	_exit(127);
}

static int run_child(char **argv)
{
	int st = test_capture(exec_child, argv, out, sizeof out);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "  child %s: status %#x, stderr: %.2000s\n", argv[0], st, out);
		return 0;
	}
	return 1;
}
#define CHILD(...) run_child((char *[]){ __VA_ARGS__, NULL })

static void test_small_counts(void) { CHECK(CHILD("small")); }
static void test_large_huge_counts(void) { CHECK(CHILD("large_huge")); }
static void test_os_counts(void) { CHECK(CHILD("os", "MEMKIT_PURGE_DELAY=0")); }
static void test_thread_counts(void) { CHECK(CHILD("threads")); }
static void test_segments_wait_for_delay(void) { CHECK(CHILD("segment_delay", "MEMKIT_PURGE_DELAY=300")); }
static void test_segments_at_once_with_delay_0(void) { CHECK(CHILD("segment_now", "MEMKIT_PURGE_DELAY=0")); }
static void test_mallopt_mapped(void) { CHECK(CHILD("mallopt", "MEMKIT_PURGE_DELAY=100000")); }

static void test_get_errors(void)
{
	uint64_t v = 7;
	errno = 0;
	CHECK(mk_stats_get("no.such.counter", &v) == -1 && errno == ENOENT && v == 7);
	CHECK(mk_stats_get("class.17.live", &v) == -1 && errno == ENOENT);   /* no class of 17 bytes */
	CHECK(mk_stats_get("class.16.nothing", &v) == -1 && errno == ENOENT);
	CHECK(mk_stats_get(NULL, &v) == -1 && errno == EINVAL);
	CHECK(mk_stats_get("os.mmap", NULL) == -1 && errno == EINVAL);
	CHECK(mk_stats_get("class.16.live", &v) == 0);
	CHECK(mk_stats_get("elapsed", &v) == 0);
}

static char text[1 << 20];
static size_t text_len;
static int pieces;
static void collect(void *opaque, const char *s)
{
	(void)opaque;
	size_t n = strlen(s);
	pieces++;
	if (text_len + n < sizeof text) {
		memcpy(text + text_len, s, n + 1);
		text_len += n;
	}
}

/* Every line of s starts with "memkit[PID]: "; how many lines. */
static int lines_with_pid(const char *s, long pid)
{
	char prefix[48];
	snprintf(prefix, sizeof prefix, "memkit[%ld]: ", pid);
	int n = 0;
	for (const char *line = s; *line; n++) {
		if (strncmp(line, prefix, strlen(prefix)) != 0) {
			fprintf(stderr, "  line without \"%s\": %.80s\n", prefix, line);
			return -1;
		}
		const char *end = strchr(line, '\n');
		line = end ? end + 1 : line + strlen(line);
	}
	return n;
}

static void test_print_text_and_json(void)
{
	void *keep = mk_malloc(3 * MiB), *small = mk_malloc(16);
	text_len = 0;
	text[0] = 0;
	mk_stats_print(collect, NULL, NULL);
	CHECK(lines_with_pid(text, (long)getpid()) > 40);
	CHECK(strstr(text, "]: huge.blocks ") != NULL && strstr(text, "]: class.size ") != NULL);
	text_len = 0;
	pieces = 0;
	mk_stats_print(collect, NULL, "json");
	char prefix[64];
	snprintf(prefix, sizeof prefix, "{\"memkit\":{\"pid\":%ld,\"version\":\"", (long)getpid());
	CHECK(strncmp(text, prefix, strlen(prefix)) == 0);
	CHECK(strchr(text, '\n') == text + text_len - 1 && strcmp(text + text_len - 4, "]}}\n") == 0);
	CHECK(strstr(text, "\"huge.blocks\":1,") != NULL);
	CHECK(strstr(text, "\"classes\":[{\"size\":16,\"refills\":") != NULL);
	mk_free(keep);
	mk_free(small);
}

static void test_malloc_info_xml(void)
{
	void *h[2] = { mk_malloc(3 * MiB), mk_malloc(4 * MiB) };
	void *s = mk_malloc(100);
	FILE *f = tmpfile();
	REQUIRE(f != NULL);
	CHECK(mk_malloc_info(0, f) == 0);
	long n = ftell(f);
	rewind(f);
	char *xml = out;
	size_t got = fread(xml, 1, sizeof out - 1, f);
	xml[got] = 0;
	fclose(f);
	CHECK(n > 0 && (long)got == n);
	CHECK(strncmp(xml, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", 43) == 0);
	CHECK(strstr(xml, "<size from=\"97\" to=\"112\" ") != NULL);
	CHECK(strstr(xml, "<total type=\"mmap\" count=\"2\" size=\"7340032\"/>") != NULL);
	CHECK(strstr(xml, "</heap>\n") != NULL && strcmp(xml + got - 10, "</malloc>\n") == 0);
	errno = 0;
	CHECK(mk_malloc_info(1, stdout) == -1 && errno == EINVAL);
	mk_free(h[0]);
	mk_free(h[1]);
	mk_free(s);
}

static void test_exit_report_to_file(void)
{
	char dir[] = "/tmp/memkit-stats-XXXXXX", env[128], path[160];
	REQUIRE(mkdtemp(dir) != NULL);
	snprintf(env, sizeof env, "MEMKIT_STATS_FILE=%s/report.%%p", dir);
	CHECK(CHILD("exit_report", "MEMKIT_STATS=1", env));
	CHECK(out[0] == 0);   /* nothing on stderr */
	/* the one file there is report.PID, every line saying that pid */
	FILE *ls = NULL;
	char cmd[200];
	snprintf(cmd, sizeof cmd, "ls %s", dir);
	ls = popen(cmd, "r");
	REQUIRE(ls != NULL);
	char name[64] = "";
	CHECK(fgets(name, sizeof name, ls) != NULL);
	pclose(ls);
	long pid = 0;
	CHECK(sscanf(name, "report.%ld", &pid) == 1 && pid > 0);
	snprintf(path, sizeof path, "%s/report.%ld", dir, pid);
	FILE *f = fopen(path, "r");
	REQUIRE(f != NULL);
	size_t got = fread(text, 1, sizeof text - 1, f);
	text[got] = 0;
	fclose(f);
	CHECK(lines_with_pid(text, pid) > 40);
	CHECK(strstr(text, "]: small.blocks ") != NULL);
	unlink(path);
	rmdir(dir);
}

static void test_exit_report_after_stderr_closed(void)
{
	CHECK(CHILD("exit_report", "MEMKIT_STATS=1", "CLOSE_STDERR=1"));
	CHECK(strstr(out, "]: statistics") != NULL && strstr(out, "]: faults.minor ") != NULL);
	CHECK(CHILD("exit_report", "MEMKIT_STATS=json", "CLOSE_STDERR=1"));
	CHECK(strncmp(out, "{\"memkit\":{\"pid\":", 17) == 0);
}

static void test_exit_report_not_into_fd2_opened_later(void)
{
	char dir[] = "/tmp/memkit-stats-XXXXXX", env[128], path[100];
	REQUIRE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/data", dir);
	snprintf(env, sizeof env, "DATA_FILE=%s", path);
	CHECK(CHILD("no_stderr", "MEMKIT_STATS=1", env));
	FILE *f = fopen(path, "r");
	REQUIRE(f != NULL);
	size_t got = fread(text, 1, sizeof text - 1, f);
	text[got] = 0;
	fclose(f);
	CHECK(strcmp(text, "data\n") == 0);
	if (strcmp(text, "data\n") != 0)
		fprintf(stderr, "  the program's file holds %zu bytes: %.200s\n", got, text);
	unlink(path);
	rmdir(dir);
}

static void cases(void)
{
	RUN(test_small_counts);
	RUN(test_large_huge_counts);
	RUN(test_os_counts);
	RUN(test_thread_counts);
	RUN(test_segments_wait_for_delay);
	RUN(test_segments_at_once_with_delay_0);
	RUN(test_mallopt_mapped);
	RUN(test_get_errors);
	RUN(test_print_text_and_json);
	RUN(test_malloc_info_xml);
	RUN(test_exit_report_to_file);
	RUN(test_exit_report_after_stderr_closed);
	RUN(test_exit_report_not_into_fd2_opened_later);
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--child") == 0) {
		static const struct { const char *name; int (*fn)(void); } children[] = {
			{ "small", child_small }, { "large_huge", child_large_huge }, { "os", child_os },
			{ "threads", child_threads }, { "segment_delay", child_segment_delay },
			{ "segment_now", child_segment_now }, { "mallopt", child_mallopt },
			{ "exit_report", child_exit_report }, { "no_stderr", child_no_stderr },
		};
		for (size_t i = 0; i < sizeof children / sizeof *children; i++)
			if (strcmp(argv[2], children[i].name) == 0)
				return children[i].fn();
		return 127;
	}
	return test_main(cases);
}
