/* The test harness shared by every C test: cases, checks, and cases that must abort.
 *
 *   static void test_something(void) { CHECK(1 + 1 == 2); }
 *   static void cases(void) { RUN(test_something); RUN(test_other); }
 *   int main(void) { return test_main(cases); }
 *
 * test_main calls `cases` twice: first only counting its RUNs, to print "PLAN n" (n = the cases it will
 * run, #ifdefs and run-time conditions included), then running them.  Each case prints "PASS name" or
 * "FAIL name"; tests/run-all.sh counts those and fails a program whose count differs from its PLAN (a crash
 * that skips cases) or that prints no PLAN.  A program that cannot use test_main calls test_plan(n) before
 * its first case.  CHECK reports the failing expression with its line and lets the case go on. */
#ifndef MK_TEST_H
#define MK_TEST_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int test_case_failed;
static int test_failures;

#define CHECK(cond)                                                                               \
	do {                                                                                          \
		if (!(cond)) {                                                                            \
			fprintf(stderr, "  check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);           \
			test_case_failed = 1;                                                                 \
		}                                                                                         \
	} while (0)

/* Stops the case at once: for checks whose failure makes the rest meaningless. */
#define REQUIRE(cond)                                                                             \
	do {                                                                                          \
		if (!(cond)) {                                                                            \
			fprintf(stderr, "  requirement failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);     \
			test_case_failed = 1;                                                                 \
			return;                                                                               \
		}                                                                                         \
	} while (0)

static int test_counting; /* test_main's first pass: RUN counts instead of running */
static int test_planned;

/* "PLAN n": how many PASS/FAIL lines this program will print. */
static inline void test_plan(int n)
{
	printf("PLAN %d\n", n);
	fflush(stdout);
}

static inline void test_run(const char *name, void (*fn)(void))
{
	if (test_counting) {
		test_planned++;
		return;
	}
	test_case_failed = 0;
	fn();
	printf("%s %s\n", test_case_failed ? "FAIL" : "PASS", name);
	fflush(stdout);
	fflush(stderr);
	test_failures += test_case_failed;
}
#define RUN(fn) test_run(#fn, fn)

static inline int test_done(void) { return test_failures ? 1 : 0; }

/* Prints the plan (the RUNs in `cases`), runs the cases, returns main's exit status. */
static inline int test_main(void (*cases)(void))
{
	test_counting = 1;
	test_planned = 0;
	cases();
	test_counting = 0;
	test_plan(test_planned);
	cases();
	return test_done();
}

/* Runs fn(arg) in a child with its stderr captured into out (cap bytes); returns the child's wait status,
 * or -1 when no pipe could be made. */
static inline int test_capture(void (*fn)(void *), void *arg, char *out, size_t cap)
{
	int fds[2];
	out[0] = 0;
	if (pipe(fds) != 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		fn(arg);
		_exit(0); /* reaching here means nothing was detected */
	}
	close(fds[1]);
	size_t len = 0;
	ssize_t r;
	while (len < cap - 1 && (r = read(fds[0], out + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = 0;
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	return status;
}

/* Runs fn in a child process and checks that it dies of SIGABRT having written `expect` to stderr.
 * Returns 1 when it did. */
static inline int test_expect_abort(void (*fn)(void *), void *arg, const char *expect)
{
	char buf[4096];
	int status = test_capture(fn, arg, buf, sizeof buf);
	int ok = status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(buf, expect) != NULL;
	if (!ok)
		fprintf(stderr, "  expected abort with \"%s\"; got status %#x, stderr: %s\n", expect, status, buf);
	return ok;
}

/* Sleeps ms milliseconds, signals or not. */
static inline void test_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

#endif
