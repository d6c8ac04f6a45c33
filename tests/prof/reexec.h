/* The profiler's tests run themselves again with profiling on (at the given rate, no dump or leak report
 * at exit) unless MEMKIT_PROF is already set, so that run-all.sh can start them plainly. */
#ifndef TESTS_PROF_REEXEC_H
#define TESTS_PROF_REEXEC_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Returns only when profiling is already on (0) or the exec failed (1, the exit status to give). */
static inline int prof_reexec(char **argv, const char *rate)
{
	if (getenv("MEMKIT_PROF"))
		return 0;
	setenv("MEMKIT_PROF", "1", 1);
	setenv("MEMKIT_PROF_RATE", rate, 1);
	setenv("MEMKIT_PROF_AT_EXIT", "0", 1);
	setenv("MEMKIT_PROF_LEAKS", "0", 1);
	execv("/proc/self/exe", argv);
	perror("execv");
	return 1;
}

#endif
