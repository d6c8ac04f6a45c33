/* The profiler's and heap map's options, read once at initialisation with secure_getenv (which does not
 * allocate).  Kept apart from the engine's table (src/engine/init.c) until the options table is shared:
 * this file is then a list of entries in it. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "prof/prof.h"

mk_prof_options mk__prof_opt = {
	.rate = 512 * 1024, .file = "memkit.%p.heap", .at_exit = 1, .leaks = 1,
};

static long number(const char *s, long fallback)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || end == s || v < 0)
		return fallback;
	if (*end == 'k' || *end == 'K')
		v <<= 10;
	else if (*end == 'm' || *end == 'M')
		v <<= 20;
	else if (*end == 'g' || *end == 'G')
		v <<= 30;
	return v;
}

/* A signal by number or by name (SIGUSR2, USR2). */
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
	long v = number(s, 0);
	return v > 0 && v < NSIG ? v : 0;
}

static void text(const char *name, char *dst, size_t size)
{
	const char *s = secure_getenv(name);
	if (s && *s && strlen(s) < size)
		strcpy(dst, s);
}

void mk__prof_read_options(void)
{
	int saved = errno;
	static const struct { const char *name; long *value; } longs[] = {
		{ "MEMKIT_PROF", &mk__prof_opt.prof },
		{ "MEMKIT_PROF_RATE", &mk__prof_opt.rate },
		{ "MEMKIT_PROF_AT_EXIT", &mk__prof_opt.at_exit },
		{ "MEMKIT_PROF_LEAKS", &mk__prof_opt.leaks },
		{ "MEMKIT_PROF_GROWTH", &mk__prof_opt.growth },
		{ "MEMKIT_MAP_INTERVAL", &mk__prof_opt.map_interval },
	};
	for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
		const char *s = secure_getenv(longs[i].name);
		if (s && *s)
			*longs[i].value = number(s, *longs[i].value);
	}
	if (mk__prof_opt.rate < 1)
		mk__prof_opt.rate = 1;
	const char *sig = secure_getenv("MEMKIT_PROF_SIGNAL");
	if (sig && *sig)
		mk__prof_opt.signal = signal_number(sig);
	text("MEMKIT_PROF_FILE", mk__prof_opt.file, sizeof mk__prof_opt.file);
	text("MEMKIT_MAP", mk__prof_opt.map, sizeof mk__prof_opt.map);
	errno = saved;
}
