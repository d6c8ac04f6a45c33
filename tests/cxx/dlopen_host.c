/* A C program that loads a C++ plugin (plugin.cpp) with dlopen(RTLD_LOCAL) and runs it: prints whether a
 * C++ runtime was mapped before the dlopen (it must not be: the preloaded memkit does not bring one) and
 * the plugin's result.  Usage: cxx-dlopen-host PLUGIN.so
 *
 * cxx-dlopen-host --no-runtime: calls memkit's operator new with an impossible size with no C++ runtime in
 * the process: the nothrow form must return NULL, the throwing one has nothing to throw with and must
 * abort with memkit's line. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int no_runtime(void)
{
	void *(*new_nothrow)(size_t, const void *) = (void *(*)(size_t, const void *))dlsym(RTLD_DEFAULT,
	                                                                                 "_ZnwmRKSt9nothrow_t");
	void *(*new_plain)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "_Znwm");
	if (!new_nothrow || !new_plain)
		return 3;
	char tag;
	size_t impossible = (size_t)PTRDIFF_MAX + 1;
	if (new_nothrow(impossible, &tag) != NULL)
		return 4;
	printf("nothrow NULL\n");
	fflush(stdout);
	new_plain(impossible);
	return 5;   /* not reached: memkit aborts */
}

static int cxx_runtime_mapped(void)
{
	char line[512];
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof line, f))
		found |= strstr(line, "libstdc++") != NULL;
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	if (strcmp(argv[1], "--no-runtime") == 0)
		return no_runtime();
	int before = cxx_runtime_mapped();
	void *plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	int (*run)(void) = plugin ? (int (*)(void))dlsym(plugin, "plugin_run") : NULL;
	if (!run) {
		printf("cannot load %s: %s\n", argv[1], dlerror());
		return 1;
	}
	int result = run();
	printf("runtime before dlopen %d, after %d, plugin result %d\n", before, cxx_runtime_mapped(), result);
	return result == 0 && !before ? 0 : 1;
}
