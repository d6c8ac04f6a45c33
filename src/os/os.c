/* The system interface; see os.h for the contract every function keeps. */
#define _GNU_SOURCE
#include "os/os.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

/* Fault injection: one injector for the calls that grant memory, one for those that give it back.
 * skip < 0 means off, so the normal path costs one relaxed load. */
typedef struct {
	_Atomic long skip, count;
} injector;
static injector grant = { -1, 0 }, give_back = { -1, 0 };
static _Atomic long injected;

static void inject(injector *in, long skip, long count)
{
	atomic_store(&in->count, count);
	atomic_store(&in->skip, count > 0 ? skip : -1);
}
void mk__os_inject_fail(long skip, long count) { inject(&grant, skip, count); }
void mk__os_inject_release_fail(long skip, long count) { inject(&give_back, skip, count); }

long mk__os_injected_failures(void) { return atomic_load(&injected); }

/* True when this call must fail: consumes one unit of the injector's budget, and sets errno. */
static int should_fail(injector *in, int err)
{
	if (__builtin_expect(atomic_load_explicit(&in->skip, memory_order_relaxed) < 0, 1))
		return 0;
	long s = atomic_load(&in->skip);
	while (s > 0) {
		if (atomic_compare_exchange_weak(&in->skip, &s, s - 1))
			return 0;
	}
	if (s < 0)
		return 0;
	long c = atomic_fetch_sub(&in->count, 1);
	if (c <= 1)
		atomic_store(&in->skip, -1);
	if (c <= 0)
		return 0;
	atomic_fetch_add(&injected, 1);
	errno = err;
	return 1;
}

/* System calls made, for the engine's statistics: relaxed counts, next to a system call they cost nothing. */
static struct {
	_Atomic unsigned long mmap, munmap, madvise, mremap, mprotect, mincore, purges, purged_bytes;
} counts;
#define COUNT(name, n) atomic_fetch_add_explicit(&counts.name, (n), memory_order_relaxed)

void mk__os_counts(mk_os_counts *c)
{
	c->mmap = atomic_load(&counts.mmap);
	c->munmap = atomic_load(&counts.munmap);
	c->madvise = atomic_load(&counts.madvise);
	c->mremap = atomic_load(&counts.mremap);
	c->mprotect = atomic_load(&counts.mprotect);
	c->mincore = atomic_load(&counts.mincore);
	c->purges = atomic_load(&counts.purges);
	c->purged_bytes = atomic_load(&counts.purged_bytes);
}

/* Named points: tests install a hook that pauses, fails or reorders there (os.h). */
static void (*_Atomic point_hook)(const char *);

void mk__os_set_point_hook(void (*hook)(const char *)) { atomic_store(&point_hook, hook); }

void mk__os_point(const char *name)
{
	void (*hook)(const char *) = atomic_load_explicit(&point_hook, memory_order_acquire);
	if (__builtin_expect(hook != NULL, 0))
		hook(name);
}

static size_t page_round(size_t n) { return (n + MK_PAGE_SIZE - 1) & ~(size_t)(MK_PAGE_SIZE - 1); }

void *mk__os_map(size_t size)
{
	if (should_fail(&grant, ENOMEM))
		return NULL;
	COUNT(mmap, 1);
	void *p = mmap(NULL, page_round(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

/* Over-maps by `align` and trims both ends, so the kernel never has to know about alignment. */
static void *map_aligned(size_t size, size_t align, int prot)
{
	size = page_round(size);
	size_t span = size + align;
	if (span < size) {
		errno = ENOMEM;
		return NULL;
	}
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | (prot == PROT_NONE ? MAP_NORESERVE : 0);
	COUNT(mmap, 1);
	char *raw = mmap(NULL, span, prot, flags, -1, 0);
	if (raw == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	char *start = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	if (start > raw) {
		COUNT(munmap, 1);
		munmap(raw, (size_t)(start - raw));
	}
	char *end = start + size;
	if (raw + span > end) {
		COUNT(munmap, 1);
		munmap(end, (size_t)(raw + span - end));
	}
	return start;
}

void *mk__os_map_aligned(size_t size, size_t align)
{
	if (should_fail(&grant, ENOMEM))
		return NULL;
	if (align <= MK_PAGE_SIZE)
		return mk__os_map(size);
	return map_aligned(size, align, PROT_READ | PROT_WRITE);
}

void *mk__os_reserve(size_t size, size_t align)
{
	if (should_fail(&grant, ENOMEM))
		return NULL;
	return map_aligned(size, align < MK_PAGE_SIZE ? MK_PAGE_SIZE : align, PROT_NONE);
}

int mk__os_commit(void *p, size_t size)
{
	if (should_fail(&grant, ENOMEM))
		return -1;
	COUNT(mprotect, 1);
	if (mprotect(p, page_round(size), PROT_READ | PROT_WRITE) != 0) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int mk__os_unmap(void *p, size_t size)
{
	if (!p || !size)
		return 0;
	int saved = errno;
	if (should_fail(&give_back, ENOMEM) || (COUNT(munmap, 1), munmap(p, page_round(size))) != 0)
		return -1;
	errno = saved;
	return 0;
}

int mk__os_purge(void *p, size_t size)
{
	if (!size)
		return 0;
	int saved = errno;
	if (should_fail(&give_back, EINVAL) || (COUNT(madvise, 1), madvise(p, size, MADV_DONTNEED)) != 0)
		return -1;
	COUNT(purges, 1);
	COUNT(purged_bytes, size);
	errno = saved;
	return 0;
}

int mk__os_mincore(const void *p, size_t size, unsigned char *vec)
{
	COUNT(mincore, 1);
	return mincore((void *)p, page_round(size), vec);
}

long mk__os_resident(const void *p, size_t size)
{
	unsigned char vec[1024];   /* a page each: 4 MiB per call */
	size_t pages = page_round(size) / MK_PAGE_SIZE;
	long resident = 0;
	int saved = errno;
	if (should_fail(&give_back, ENOMEM))
		return -1;
	for (size_t off = 0; off < pages; off += sizeof vec) {
		size_t k = pages - off < sizeof vec ? pages - off : sizeof vec;
		if (mk__os_mincore((char *)p + off * MK_PAGE_SIZE, k * MK_PAGE_SIZE, vec) != 0)
			return -1;
		for (size_t i = 0; i < k; i++)
			resident += vec[i] & 1;
	}
	errno = saved;
	return resident;
}

void *mk__os_remap(void *p, size_t old_size, size_t new_size, int may_move)
{
	if (should_fail(&grant, ENOMEM))
		return NULL;
	old_size = page_round(old_size);
	new_size = page_round(new_size);
	COUNT(mremap, 1);
	void *q = mremap(p, old_size, new_size, may_move ? MREMAP_MAYMOVE : 0);
	if (q == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	return q;
}

void *mk__os_map_fd(size_t size, int prot, int flags, int fd, off_t offset)
{
	if (should_fail(&grant, ENOMEM))
		return NULL;
	COUNT(mmap, 1);
	void *p = mmap(NULL, page_round(size), prot, flags, fd, offset);
	return p == MAP_FAILED ? NULL : p;
}

void *mk__os_sbrk(intptr_t increment)
{
	if (increment > 0 && should_fail(&grant, ENOMEM))
		return (void *)-1;
	void *p = sbrk(increment);
	if (p == (void *)-1)
		errno = ENOMEM;
	return p;
}
