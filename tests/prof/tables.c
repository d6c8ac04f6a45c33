/* The stack walker on damaged unwind tables: a copy of a plugin (tests/prof/tables-lib.c) whose
 * .eh_frame_hdr table points every FDE 1 GiB below the header, out of the object, is loaded and its
 * function allocates, sampled.  The walker must end the stack there (the FDE is not the object's), not
 * read the address: it checked only that an FDE lay below the object's end.
 *
 * Runs itself again with MEMKIT_PROF=1 at a 64-byte rate (every call is sampled). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "include/memkit.h"
#include "tests/common/test.h"
#include "tests/prof/reexec.h"

/* Copies src to dst with every FDE offset of .eh_frame_hdr's table set to -1 GiB; the count of entries
 * changed, or -1. */
static int damaged_copy(const char *src, const char *dst)
{
	int fd = open(src, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		return -1;
	unsigned char *m = malloc((size_t)st.st_size);
	if (!m || read(fd, m, (size_t)st.st_size) != st.st_size)
		return -1;
	close(fd);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)m;
	Elf64_Shdr *sh = (Elf64_Shdr *)(m + eh->e_shoff);
	const char *names = (const char *)m + sh[eh->e_shstrndx].sh_offset;
	int changed = -1;
	for (int i = 0; i < eh->e_shnum; i++) {
		if (strcmp(names + sh[i].sh_name, ".eh_frame_hdr") != 0)
			continue;
		unsigned char *hdr = m + sh[i].sh_offset;
		if (hdr[0] != 1 || hdr[1] != 0x1b || hdr[2] != 0x03 || hdr[3] != 0x3b)
			break;   /* not the layout every linker writes */
		uint32_t count;
		memcpy(&count, hdr + 8, 4);
		for (uint32_t k = 0; k < count; k++) {
			int32_t far = -(1 << 30);
			memcpy(hdr + 12 + 8 * k + 4, &far, 4);
		}
		changed = (int)count;
	}
	fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (fd < 0 || write(fd, m, (size_t)st.st_size) != st.st_size || close(fd) != 0)
		return -1;
	free(m);
	return changed;
}

static void test_fde_out_of_the_object(void)
{
	char lib[4096], copy[128];
	ssize_t n = readlink("/proc/self/exe", lib, sizeof lib - 64);
	REQUIRE(n > 0);
	lib[n] = '\0';
	strcpy(strrchr(lib, '/'), "/prof-tables-lib.so");
	snprintf(copy, sizeof copy, "/tmp/memkit-prof-tables.%d.so", (int)getpid());
	int count = damaged_copy(lib, copy);
	CHECK(count > 0);
	void *h = dlopen(copy, RTLD_NOW);
	unlink(copy);
	REQUIRE(h != NULL);
	void *(*f)(void) = (void *(*)(void))dlsym(h, "tables_alloc");
	REQUIRE(f != NULL);
	for (int i = 0; i < 1000; i++)
		free(f());
	CHECK(mk_check() == 0);
	dlclose(h);
}

static void cases(void)
{
	RUN(test_fde_out_of_the_object);
}

int main(int argc, char **argv)
{
	(void)argc;
	if (prof_reexec(argv, "64"))
		return 1;
	return test_main(cases);
}
