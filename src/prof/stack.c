/* Stack capture for samples, without calling malloc.
 *
 * On x86-64 with glibc 2.35 or later, unwind.c walks the stack with the objects' own unwind tables and a
 * table of rules decoded once per return address: it follows frames built without frame pointers, as
 * most of a Debian system is, for about a hash probe per frame.  Elsewhere (or if that walker cannot step
 * out of this very file, as in a program whose tables it cannot find), glibc's backtrace() does the work:
 * it unwinds with libgcc_s's unwinder, which glibc loads with dlopen on the first call, the only call
 * that allocates.  mk__prof_stack_warm_up, from memkit's constructor, chooses between them and makes that
 * first call if backtrace() is the one, with mk__prof_busy set so that its allocations are not sampled;
 * the test tests/prof/capture.c counts the mallocs made during captures to hold this to account.  Until
 * the warm-up has run (allocations during the dynamic loader's start and libc's), samples get no stack.
 *
 * memkit's own frames (malloc, the slow path, this file) are left out when memkit is a shared object: they
 * are the frames inside its text.  In a static link memkit's text is the program's, and they stay. */
#define _GNU_SOURCE
#include <elf.h>
#include <execinfo.h>
#include <link.h>
#include <stdatomic.h>

#include "prof/prof.h"

static _Atomic int warm;          /* 1: own walker (unwind.c), 2: backtrace() */
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

/* Whether the own walker steps out of this function into its caller (frames[0] is the return address
 * into the caller of mk__prof_unwind, i.e. here; frames[1] the caller of this function). */
static __attribute__((noinline)) bool own_walker_works(void)
{
	uintptr_t f[4];
	return mk__prof_unwind(f, 4) >= 2;
}

void mk__prof_stack_warm_up(void)
{
	if (atomic_load(&warm))
		return;
	mk__prof_busy = 1;
	dl_iterate_phdr(find_self, (void *)(uintptr_t)mk__prof_stack_warm_up);
	mk__prof_unwind_own_text(own_lo, own_hi);
	int how = own_walker_works() ? 1 : 2;
	if (how == 2) {
		void *one[2];
		backtrace(one, 2);
	}
	mk__prof_busy = 0;
	atomic_store(&warm, how);
}

int mk__prof_backtrace(uintptr_t *frames, int max)
{
	int how = atomic_load_explicit(&warm, memory_order_relaxed);
	if (!how || mk__prof_busy)
		return 0;
	uintptr_t raw[PROF_MAX_FRAMES + 16];
	mk__prof_busy = 2;   /* 2: after the warm-up, where an allocation would break the promise (counted) */
	int n = how == 1 ? mk__prof_unwind(raw, PROF_MAX_FRAMES + 16)
	                 : backtrace((void **)raw, PROF_MAX_FRAMES + 16);
	mk__prof_busy = 0;
	int i = 0, k = 0;
	while (i < n && raw[i] >= own_lo && raw[i] < own_hi)
		i++;
	for (; i < n && k < max; i++)
		frames[k++] = raw[i];
	return k;
}
