/* libFuzzer harness for region heaps: the input is a region file, untrusted, followed by a short program of
 * API calls.
 *
 *   input = image | ops | n      n (the last byte) is the length of ops; image is everything before them
 *
 * The first op byte picks how the image is opened (bit 0) and what is fixed up first, so that mutations get
 * past the hashes and reach the code behind them: bit 1 recomputes the header's geometry sum, bit 2 signs
 * every word0 in the block area whose high half is 0 (free) or 1 (used) with the check value of its offset,
 * as a hostile writer who knows the format would.  Open: as a file (a memfd, opened alone by path, so the
 * rebuild on open runs), or copied into memory with PROT_NONE pages on both sides and given to mkr_attach
 * (the lock bytes are replaced by a fresh unlocked mutex first: a live lock is shared with the other users
 * of a heap and trusted, and a lock word held by no one would only make the fuzzer wait).  Then each op
 * byte (and the one after it, as an argument) calls one function.
 *
 * Besides the sanitizers, the harness traps when the library breaks a promise: a block outside the heap,
 * a block whose usable bytes run past the heap's end, the header's geometry written to, or a heap that
 * was accepted (so every block header was proved) failing check() later for anything but its roots. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memkit_region.h"
#include "region/layout.h"

#define MAX_LIVE 16

static void fail(const char *why)
{
	fprintf(stderr, "region_fuzz: %s (%s)\n", why, mkr_last_error());
	__builtin_trap();
}

/* A fresh unlocked lock, as mkr_create_in makes it. */
static char fresh_lock[sizeof(((struct rg_header *)0)->lock)];

static void make_fresh_lock(void)
{
	static _Alignas(16) char mem[MKR_MIN_REGION];
	mkr_heap *h = mkr_create_in(mem, sizeof mem);
	if (!h)
		fail("cannot make a heap");
	memcpy(fresh_lock, &((struct rg_header *)mem)->lock, sizeof fresh_lock);
	mkr_close(h);
}

struct run {
	mkr_heap *h;
	char *base;
	size_t size;
	char geometry[56];
	void *live[MAX_LIVE];
	int sound; /* check() passed once: from then on it must keep passing */
};

static void block_inside(struct run *r, void *p)
{
	struct rg_header *hd = (struct rg_header *)r->base;
	uint64_t off = (uint64_t)((char *)p - r->base);
	if ((char *)p < r->base || off < hd->heap_off + 16 || off >= hd->heap_end || off % 16)
		fail("a block outside the heap");
	size_t n = mkr_usable_size(r->h, p);
	if (n == 0 || off + n > hd->heap_end)
		fail("a block whose usable bytes run past the heap");
	memset(p, 0xa5, n); /* caller data in the payload: the heap must not care */
}

static int count(void *arg, mkr_off off, size_t size, pid_t owner)
{
	(void)off, (void)size, (void)owner;
	return ++*(int *)arg > 1000000;
}

static void checked(struct run *r)
{
	if (memcmp(r->base, r->geometry, sizeof r->geometry) != 0)
		fail("the header's geometry was written to");
	int rc = mkr_check(r->h);
	if (rc == 0)
		r->sound = 1;
	else if (r->sound && !strstr(mkr_last_error(), "root"))
		fail("a heap proved sound became damaged by the API alone");
}

static void step(struct run *r, uint8_t op, uint8_t arg)
{
	mkr_heap *h = r->h;
	void **slot = &r->live[arg % MAX_LIVE];
	struct mkr_stats st;
	int n = 0;
	switch (op % 14) {
	case 0:
	case 1:
		if (!*slot && (*slot = mkr_alloc(h, (size_t)arg * (op & 0x80 ? 64 : 1))))
			block_inside(r, *slot);
		break;
	case 2:
	case 3:
		if (mkr_free(h, *slot) == 0)
			*slot = NULL;
		break;
	case 4: {
		void *q = mkr_realloc(h, *slot, (size_t)arg * 8);
		if (q) {
			*slot = q;
			block_inside(r, q);
		} else if (arg == 0) {
			*slot = NULL;
		}
		break;
	}
	case 5: mkr_foreach(h, count, &n); break;
	case 6: mkr_reclaim_dead(h); break;
	case 7:
		if (mkr_reclaim_owner(h, op & 0x80 ? getpid() : arg + 1) > 0 && (op & 0x80))
			memset(r->live, 0, sizeof r->live);
		break;
	case 8:
		if (mkr_stats(h, &st) == 0 &&
		    (st.used_bytes + st.free_bytes > st.heap_size || st.largest_free > st.heap_size))
			fail("statistics larger than the heap");
		break;
	case 9: checked(r); break;
	case 10: /* a pointer the caller made up: inside the region, anywhere */
		mkr_free(h, r->base + (size_t)arg * 37 % r->size);
		mkr_usable_size(h, r->base + (size_t)arg * 53 % r->size);
		break;
	case 11: {
		mkr_off off = mkr_root_get(h, arg % MKR_ROOTS);
		void *p = mkr_to_ptr(h, off);
		if (p && ((char *)p < r->base || (char *)p >= r->base + r->size))
			fail("mkr_to_ptr outside the region");
		mkr_root_set(h, arg % MKR_ROOTS, *slot ? mkr_to_off(h, *slot) : 0);
		break;
	}
	case 12: mkr_owner(h, *slot); break;
	default: mkr_notify(h, (uint32_t *)(r->base + 16 * (arg % 8) + 136), 1); break;
	}
}

static void run_ops(struct run *r, const uint8_t *ops, size_t n)
{
	memcpy(r->geometry, r->base, sizeof r->geometry);
	checked(r);
	for (size_t i = 0; i + 1 < n; i += 2)
		step(r, ops[i], ops[i + 1]);
	checked(r);
	if (mkr_lock_holder(r->h) != 0)
		fail("the lock is still held after the calls");
}

static void as_file(const uint8_t *image, size_t size, const uint8_t *ops, size_t n)
{
	int fd = memfd_create("region_fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return;
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (write(fd, image, size) == (ssize_t)size) {
		mkr_heap *h = mkr_open_file(path, 0, 0, 0);
		if (h) {
			struct run r = {.h = h, .base = mkr_to_ptr(h, 1) - 1, .size = size};
			run_ops(&r, ops, n);
			mkr_close(h);
		} else if (errno != EINVAL && errno != EIO && errno != ENOTSUP) {
			fail("open failed with an undocumented error");
		}
	}
	close(fd);
}

static void as_memory(const uint8_t *image, size_t size, const uint8_t *ops, size_t n)
{
	size_t page = 4096, span = (size + page - 1) / page * page;
	char *g = mmap(NULL, span + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g == MAP_FAILED)
		return;
	char *mem = g + page;
	mprotect(mem, span, PROT_READ | PROT_WRITE);
	memcpy(mem, image, size);
	if (size >= sizeof(struct rg_header)) {
		struct rg_header *hd = (struct rg_header *)mem;
		memcpy(&hd->lock, fresh_lock, sizeof fresh_lock);
		hd->lock_holder = 0;
	}
	mkr_heap *h = mkr_attach(mem, size);
	if (h) {
		struct run r = {.h = h, .base = mem, .size = size};
		run_ops(&r, ops, n);
		mkr_close(h);
	} else if (errno != EINVAL && errno != EIO && errno != ENOTSUP) {
		fail("attach failed with an undocumented error");
	}
	munmap(g, span + 2 * page);
}

/* The fix-ups of the first op byte, on a copy of the image. */
static void fix_up(uint8_t *image, size_t size, uint8_t how)
{
	if (size < sizeof(struct rg_header))
		return;
	struct rg_header *hd = (struct rg_header *)image;
	if (how & 4) {
		uint64_t end = hd->heap_end < size ? hd->heap_end : size;
		for (uint64_t off = hd->heap_off; off % 16 == 0 && off >= sizeof *hd && off + 8 <= end; off += 16) {
			uint64_t w;
			memcpy(&w, image + off, 8);
			if (w >> 32 <= 1 && (uint32_t)w) {
				w = mk__rg_word0(off, (uint32_t)w, (int)(w >> 32));
				memcpy(image + off, &w, 8);
			}
		}
	}
	if (how & 2)
		hd->geometry_sum = mk__rg_geometry_sum(hd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		make_fresh_lock();
		ready = 1;
	}
	if (size < 2)
		return 0;
	size_t n = data[size - 1];
	if (n > size - 1)
		n = size - 1;
	size_t image_size = size - 1 - n;
	const uint8_t *ops = data + image_size;
	uint8_t how = n ? ops[0] : 0;
	uint8_t *image = malloc(image_size + 1);
	if (!image)
		return 0;
	memcpy(image, data, image_size);
	fix_up(image, image_size, how);
	if (how & 1)
		as_memory(image, image_size, ops + 1, n - 1);
	else
		as_file(image, image_size, n ? ops + 1 : ops, n ? n - 1 : 0);
	free(image);
	return 0;
}
