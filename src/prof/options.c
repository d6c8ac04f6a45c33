/* The profiler's options are entries of the engine's table (src/engine/options.c), which reads them with
 * secure_getenv inside mk__init; this file holds their values and what the table cannot express: a signal
 * given by name, and the default profile name. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "prof/prof.h"

mk_prof_options mk__prof_opt = {
	.rate = 512 * 1024, .file = "", .at_exit = 1, .leaks = 1, .signal_name = "", .map = "",
};

/* A signal by number or by name (SIGUSR2, USR2); 0 when it names none. */
static long signal_number(const char *s)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "HUP", SIGHUP }, { "PROF", SIGPROF },
		{ "URG", SIGURG }, { "WINCH", SIGWINCH },
	};
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].sig;
	char *end;
	long v = strtol(s, &end, 10);
	return end != s && !*end && v > 0 && v < NSIG ? v : 0;
}

void mk__prof_read_options(void)
{
	if (!mk__prof_opt.file || !*mk__prof_opt.file)
		mk__prof_opt.file = "memkit.%p.heap";
	if (!mk__prof_opt.map)
		mk__prof_opt.map = "";
	mk__prof_opt.signal = mk__prof_opt.signal_name && *mk__prof_opt.signal_name
	                      ? signal_number(mk__prof_opt.signal_name) : 0;
	if (mk__prof_opt.signal_name && *mk__prof_opt.signal_name && !mk__prof_opt.signal)
		mk__message("memkit: MEMKIT_PROF_SIGNAL=%s names no signal; ignored\n", mk__prof_opt.signal_name);
}

/* Before mk__init has run (memkit's constructor; tests start memkit later on purpose): only whether the
 * variables are there. */
bool mk__prof_wanted_at_load(void)
{
	const char *p = secure_getenv("MEMKIT_PROF"), *s = secure_getenv("MEMKIT_PROF_SIGNAL"),
	           *i = secure_getenv("MEMKIT_MAP_INTERVAL");
	return (p && *p && strcmp(p, "0") != 0) || (s && *s) || (i && *i && strcmp(i, "0") != 0);
}
