/* measure: runs one benchmark command and writes its wall time and peak RSS to a file.
 *
 *   measure RESULT_FILE PRELOAD|- PROGRAM [ARGS...]
 *
 * Why a C launcher rather than Python's subprocess: a child's peak RSS (ru_maxrss) includes the resident
 * size of the process it was forked from, up to its exec; forked from the Python runner every workload would
 * "peak" at the runner's 17 MiB.  Forked from this small program, it starts from about 1 MiB, as under a
 * shell.  PRELOAD is set as LD_PRELOAD in the child only, so this launcher never runs on the allocator
 * under test.  RESULT_FILE gets "wall_s maxrss_kib exit_status user_s sys_s" (exit_status is 128+signal
 * after a signal).  The lab table (bench/lab/table.py) uses it too, with PRELOAD "-". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: measure RESULT_FILE PRELOAD|- PROGRAM [ARGS...]\n");
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("measure: fork");
		return 2;
	}
	if (pid == 0) {
		if (strcmp(argv[2], "-") != 0)
			setenv("LD_PRELOAD", argv[2], 1);
		execvp(argv[3], argv + 3);
		fprintf(stderr, "measure: cannot run %s: %s\n", argv[3], strerror(errno));
		_exit(127);
	}
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			perror("measure: wait4");
			return 2;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	FILE *f = fopen(argv[1], "w");
	double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
	double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
	if (!f || fprintf(f, "%.6f %ld %d %.6f %.6f\n", wall, ru.ru_maxrss, code, user, sys) < 0 || fclose(f) != 0) {
		perror("measure: result file");
		return 2;
	}
	return code;
}
