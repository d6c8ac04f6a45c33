/* Stack capture for samples, without calling malloc.
 *
 * glibc's backtrace() unwinds with the DWARF call-frame information of every object (libgcc_s's unwinder,
 * which glibc loads with dlopen on the first call), so it follows frames built without frame pointers,
 * as most of a Debian system is.  Only that first call allocates (the dlopen): mk__prof_stack_warm_up makes
 * it from memkit's constructor, with mk__prof_busy set so that the allocations it makes are not sampled.
 * After it, unwinding walks the loaded objects' tables (dl_iterate_phdr) and allocates nothing; the test
 * tests/prof/capture.c counts the mallocs made during captures to hold this to account.  Until the warm-up
 * has run (allocations during the dynamic loader's start and libc's), samples get no stack.
 *
 * memkit's own frames (malloc, the slow path, this file) are left out when memkit is a shared object: they
 * are the frames inside its text.  In a static link memkit's text is the program's, and they stay. */
#define _GNU_SOURCE
#include <elf.h>
#include <execinfo.h>
#include <link.h>
#include <stdatomic.h>

#include "prof/prof.h"

static _Atomic int warm;
static uintptr_t own_lo, own_hi;   /* memkit's text when it is a shared object; 0, 0 otherwise */

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	uintptr_t me = (uintptr_t)arg;
	bool main_program = info->dlpi_name == NULL || info->dlpi_name[0] == '\0';
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (me >= lo && me < hi) {
			if (!main_program) {
				own_lo = lo;
				own_hi = hi;
			}
			return 1;
		}
	}
	return 0;
}

void mk__prof_stack_warm_up(void)
{
	if (atomic_load(&warm))
		return;
	void *one[2];
	mk__prof_busy = 1;
	backtrace(one, 2);
	dl_iterate_phdr(find_self, (void *)(uintptr_t)mk__prof_stack_warm_up);
	mk__prof_busy = 0;
	atomic_store(&warm, 1);
}

int mk__prof_backtrace(uintptr_t *frames, int max)
{
	if (!atomic_load_explicit(&warm, memory_order_relaxed) || mk__prof_busy)
		return 0;
	void *raw[PROF_MAX_FRAMES + 16];
	mk__prof_busy = 2;   /* 2: after the warm-up, where an allocation would break the promise (counted) */
	int n = backtrace(raw, PROF_MAX_FRAMES + 16);
	mk__prof_busy = 0;
	int i = 0, k = 0;
	while (i < n && (uintptr_t)raw[i] >= own_lo && (uintptr_t)raw[i] < own_hi)
		i++;
	for (; i < n && k < max; i++)
		frames[k++] = (uintptr_t)raw[i];
	return k;
}
