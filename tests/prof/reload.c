/* The stack walker across dlclose and dlopen: two plugins (tests/prof/reload-lib.S) with the same code
 * at the same offsets and different frames, loaded in turn, each unloaded before the other is loaded,
 * so that the second is mapped where the first was and (memkit reusing the freed block) gets the first
 * one's link map.  A rule decoded for the first plugin's return address, used for the second's, put the
 * caller's frame 1 MiB above the main thread's stack top: the sampled malloc faulted there.  Every
 * stack read is now checked against the pages known readable (src/prof/unwind.c).
 *
 * Runs itself again with MEMKIT_PROF=1 at a 64-byte rate (every call of f is sampled). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/common/test.h"
#include "tests/prof/reexec.h"

static const char *plugin[2] = { "prof-reload-a.so", "prof-reload-b.so" };   /* 1 MiB, 24-byte frames */

static void test_reload_same_address(void)
{
	char dir[4096];
	ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 64);
	REQUIRE(n > 0);
	dir[n] = '\0';
	*strrchr(dir, '/') = '\0';
	void *seen[2][32] = { { 0 } };
	void *base[2][32] = { { 0 } };
	int reused = 0;
	for (int c = 0; c < 64; c++) {
		int w = c & 1;
		char path[4200];
		snprintf(path, sizeof path, "%s/%s", dir, plugin[w]);
		void *h = dlopen(path, RTLD_NOW);
		REQUIRE(h != NULL);
		void *(*f)(void) = (void *(*)(void))dlsym(h, "f");
		REQUIRE(f != NULL);
		Dl_info info;
		REQUIRE(dladdr((void *)f, &info) != 0);
		seen[w][c / 2] = h;
		base[w][c / 2] = info.dli_fbase;
		for (int k = 0; k <= c / 2; k++)
			reused += seen[!w][k] == h && base[!w][k] == info.dli_fbase;
		for (int i = 0; i < 100; i++)
			free(f());
		REQUIRE(dlclose(h) == 0);
	}
	/* What the test is about: one plugin at the other's address with the other's link map. */
	CHECK(reused > 0);
}

static void cases(void)
{
	RUN(test_reload_same_address);
}

int main(int argc, char **argv)
{
	(void)argc;
	if (prof_reexec(argv, "64"))
		return 1;
	return test_main(cases);
}
