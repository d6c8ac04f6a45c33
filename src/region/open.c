/* Creating, opening and validating region heaps; offsets, roots and error messages.
 *
 * Named heaps (files, POSIX shared memory) use flock on their descriptor to know who else has them open:
 * every user holds a shared flock while the heap is open.  An opener that can take the flock exclusively
 * is alone, so no live process can hold the heap's lock: it re-creates the mutex (a lock left held by a
 * machine that went down, or by a pid since reused, would otherwise never open) and rebuilds the derived
 * state from the block headers, which also proves every block header sound before anything trusts the file.
 * A creator holds the flock exclusively until the header is complete, so an opener never sees half a heap. */
#include "region/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os/os.h"

static __thread char last_error[256];

void mk__rg_fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
	errno = err;
}

const char *mkr_last_error(void) { return last_error; }

static uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

/* Covers every field that says where things are (the magic number is checked on its own). */
uint64_t mk__rg_geometry_sum(const struct rg_header *hd)
{
	const uint64_t f[] = {hd->version, hd->abi, hd->region_size, hd->bitmap_off, hd->heap_off, hd->heap_end};
	uint64_t x = 0x6d656d6b69742d72ull;
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		x = (x ^ f[i]) * 0x100000001b3ull;
		x ^= x >> 31;
	}
	return x;
}

/* Lays out a region of `size` bytes: header, start bitmap (one bit per 16-byte unit), blocks. */
static int plan(struct rg_header *hd, size_t size)
{
	size = size / RG_UNIT * RG_UNIT;
	if (size < MKR_MIN_REGION || size > MKR_MAX_REGION) {
		mk__rg_fail(EINVAL, "region heap: %zu bytes is outside the sizes a heap takes (%u to %llu)", size,
		            MKR_MIN_REGION, (unsigned long long)MKR_MAX_REGION);
		return -1;
	}
	uint64_t bitmap_off = round_up(sizeof *hd, RG_UNIT), avail = size - bitmap_off;
	uint64_t units = avail * 8 / (8 * RG_UNIT + 1); /* each unit costs 16 bytes and one bit */
	uint64_t bitmap_bytes = round_up((units + 63) / 64 * 8, RG_UNIT);
	units = (avail - bitmap_bytes) / RG_UNIT;
	memset(hd, 0, sizeof *hd);
	hd->version = RG_VERSION;
	hd->abi = RG_ABI;
	hd->region_size = size;
	hd->bitmap_off = bitmap_off;
	hd->heap_off = bitmap_off + bitmap_bytes;
	hd->heap_end = hd->heap_off + units * RG_UNIT;
	return 0;
}

/* The handle keeps the geometry it validated (or planned), from the copy that was checked: the header itself
 * is never read again for it (another process may write it at any time). */
static void adopt_geometry(mkr_heap *h, const struct rg_header *checked)
{
	h->region_size = checked->region_size;
	h->bitmap_off = checked->bitmap_off;
	h->heap_off = checked->heap_off;
	h->heap_end = checked->heap_end;
}

/* Makes an empty heap in the handle's memory.  The magic number goes in last. */
static int format(mkr_heap *h, size_t size)
{
	struct rg_header *hd = h->hdr;
	struct rg_header planned;
	if (plan(&planned, size) != 0)
		return -1;
	memcpy(hd, &planned, sizeof planned);
	if (mk__rg_init_lock(h) != 0)
		return -1;
	adopt_geometry(h, &planned);
	mk__rg_format(h);
	hd->geometry_sum = mk__rg_geometry_sum(hd);
	__atomic_store_n(&hd->magic, RG_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/* Checks that `size` bytes at mem hold a heap this build can use, before anything else is read.  The header
 * is read once, into *copy, and only the copy is checked (and then adopted): a writer changing the header
 * meanwhile cannot make the checked values differ from the used ones. */
static int validate(const void *mem, size_t size, const char *what, struct rg_header *copy)
{
	const struct rg_header *hd = copy;
	if (size < sizeof *hd) {
		mk__rg_fail(EINVAL, "%s: %zu bytes, too short for a region heap header (empty or truncated)", what, size);
		return -1;
	}
	memcpy(copy, mem, sizeof *copy);
	if (hd->magic != RG_MAGIC) {
		mk__rg_fail(EINVAL, "%s is not a memkit region heap (bad magic number)", what);
		return -1;
	}
	if (hd->version != RG_VERSION) {
		mk__rg_fail(ENOTSUP, "%s is a region heap of format version %u; this library reads version %u", what,
		            hd->version, RG_VERSION);
		return -1;
	}
	if (hd->abi != RG_ABI) {
		mk__rg_fail(ENOTSUP, "%s was made by a build with another header or mutex layout", what);
		return -1;
	}
	uint64_t units = (hd->heap_end - hd->heap_off) / RG_UNIT;
	if (hd->geometry_sum != mk__rg_geometry_sum(hd) || hd->bitmap_off != round_up(sizeof *hd, RG_UNIT) ||
	    hd->heap_off <= hd->bitmap_off || hd->heap_end <= hd->heap_off || hd->heap_end > hd->region_size ||
	    hd->heap_off % RG_UNIT || hd->heap_end % RG_UNIT || units < RG_MIN_UNITS || units > UINT32_MAX ||
	    (units + 63) / 64 * 8 > hd->heap_off - hd->bitmap_off || hd->region_size < MKR_MIN_REGION ||
	    hd->region_size > MKR_MAX_REGION) {
		mk__rg_fail(EINVAL, "%s: the region heap header's geometry is damaged", what);
		return -1;
	}
	if (hd->region_size > size) {
		mk__rg_fail(EINVAL, "%s is truncated: %zu bytes where its header says %" PRIu64, what, size,
		            hd->region_size);
		return -1;
	}
	return 0;
}

/* A handle over base; for a region that already holds a heap, `checked` is the header copy that `validate`
 * passed (NULL for a region about to be formatted: format() sets the geometry). */
static mkr_heap *new_handle(void *base, size_t map_size, int fd, enum rg_kind kind, const struct rg_header *checked)
{
	mkr_heap *h = calloc(1, sizeof *h);
	if (!h) {
		mk__rg_fail(ENOMEM, "region heap: no memory for a handle");
		return NULL;
	}
	h->base = base;
	h->hdr = base;
	h->map_size = map_size;
	h->fd = fd;
	h->kind = kind;
	if (checked)
		adopt_geometry(h, checked);
	return h;
}

/* Frees a handle and what it holds, keeping errno for the caller. */
static void drop(mkr_heap *h, void *base, size_t map_size, int fd)
{
	int e = errno;
	if (base)
		mk__os_unmap(base, map_size);
	if (fd >= 0)
		close(fd);
	free(h);
	errno = e;
}

/* Proves a heap sound before it is used: under the lock, re-created first when nobody else uses the heap.
 * Alone, or on a heap flagged damaged, the derived state is rebuilt from the block headers; otherwise (other
 * processes have it, or memory given to mkr_attach) it is checked, and rebuilt only when the check fails.
 * Either way every block header has been validated: -1 with EIO when one is damaged. */
static int repair(mkr_heap *h, int alone)
{
	if (alone && mk__rg_init_lock(h) != 0)
		return -1;
	if (mk__rg_lock(h, 1) != 0)
		return -1;
	int rc = 0;
	if (alone || (h->hdr->flags & RG_FLAG_CORRUPT) || mk__rg_check_locked(h) != 0) {
		rc = mk__rg_rebuild(h);
		h->hdr->flags = rc ? h->hdr->flags | RG_FLAG_CORRUPT : h->hdr->flags & ~RG_FLAG_CORRUPT;
	}
	int e = errno;
	mk__rg_unlock(h);
	errno = e;
	return rc;
}

static mkr_heap *create_anon(size_t size, int shared)
{
	size = round_up(size, MK_PAGE_SIZE);
	void *base = shared ? mk__os_map_fd(size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
	                    : mk__os_map(size);
	if (!base) {
		mk__rg_fail(ENOMEM, "region heap: the system refused %zu bytes", size);
		return NULL;
	}
	mkr_heap *h = new_handle(base, size, -1, shared ? RG_SHARED : RG_PRIVATE, NULL);
	if (!h || format(h, size) != 0) {
		drop(h, base, size, -1);
		return NULL;
	}
	return h;
}

mkr_heap *mkr_create_private(size_t size) { return create_anon(size, 0); }
mkr_heap *mkr_create_shared(size_t size) { return create_anon(size, 1); }

mkr_heap *mkr_create_in(void *mem, size_t size)
{
	if (!mem || (uintptr_t)mem % RG_UNIT) {
		mk__rg_fail(EINVAL, "region heap: the memory must be 16-byte aligned");
		return NULL;
	}
	mkr_heap *h = new_handle(mem, size, -1, RG_CALLER, NULL);
	if (h && format(h, size) != 0) {
		drop(h, NULL, 0, -1);
		return NULL;
	}
	return h;
}

mkr_heap *mkr_attach(void *mem, size_t size)
{
	if (!mem || (uintptr_t)mem % RG_UNIT) {
		mk__rg_fail(EINVAL, "region heap: the memory must be 16-byte aligned");
		return NULL;
	}
	struct rg_header checked;
	if (validate(mem, size, "the memory given", &checked) != 0)
		return NULL;
	mkr_heap *h = new_handle(mem, size, -1, RG_CALLER, &checked);
	if (h && repair(h, 0) != 0) {
		drop(h, NULL, 0, -1);
		return NULL;
	}
	return h;
}

/* A new named heap: the file is ours alone until the header is complete and the flock turns shared. */
static mkr_heap *create_named(int fd, size_t size, const char *what)
{
	size = round_up(size, MK_PAGE_SIZE);
	if (flock(fd, LOCK_EX) != 0 || ftruncate(fd, (off_t)size) != 0) {
		mk__rg_fail(errno, "%s: cannot size the new heap (%s)", what, strerror(errno));
		return NULL;
	}
	void *base = mk__os_map_fd(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!base) {
		mk__rg_fail(errno ? errno : ENOMEM, "%s: cannot map %zu bytes", what, size);
		return NULL;
	}
	mkr_heap *h = new_handle(base, size, fd, RG_FILE, NULL);
	if (!h || format(h, size) != 0 || flock(fd, LOCK_SH) != 0) {
		drop(h, base, size, -1);
		return NULL;
	}
	return h;
}

/* An existing named heap: validated, and repaired when no one else has it open. */
static mkr_heap *open_named(int fd, const char *what)
{
	int alone;
	struct stat st;
	/* An empty file may be one whose creator has not yet taken its flock (a window of a few instructions
	 * after open): give it a moment before calling the file truncated. */
	for (int tries = 0;; tries++) {
		alone = flock(fd, LOCK_EX | LOCK_NB) == 0;
		if ((!alone && flock(fd, LOCK_SH) != 0) || fstat(fd, &st) != 0) {
			mk__rg_fail(errno, "%s: %s", what, strerror(errno));
			return NULL;
		}
		if (st.st_size > 0 || tries == 20)
			break;
		flock(fd, LOCK_UN);
		usleep(1000);
	}
	size_t size = (size_t)st.st_size;
	struct rg_header checked;
	if (size < sizeof(struct rg_header)) {
		validate(NULL, size, what, &checked);
		return NULL;
	}
	void *base = mk__os_map_fd(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!base) {
		mk__rg_fail(errno ? errno : ENOMEM, "%s: cannot map %zu bytes", what, size);
		return NULL;
	}
	mkr_heap *h = NULL;
	if (validate(base, size, what, &checked) != 0 || !(h = new_handle(base, size, fd, RG_FILE, &checked)) ||
	    repair(h, alone) != 0 ||
	    (alone && flock(fd, LOCK_SH) != 0)) {
		if (errno == EIO) {
			char why[sizeof last_error];
			memcpy(why, last_error, sizeof why);
			mk__rg_fail(EIO, "%s: the heap is damaged (%s)", what, why);
		}
		drop(h, base, size, -1);
		return NULL;
	}
	return h;
}

typedef int (*open_fn)(const char *name, int oflags, mode_t mode);
typedef int (*unlink_fn)(const char *name);

static mkr_heap *open_by_name(const char *name, int flags, size_t size, mode_t mode, open_fn op, unlink_fn rm)
{
	if (!name) {
		mk__rg_fail(EINVAL, "region heap: no name given");
		return NULL;
	}
	int fd = -1;
	if (flags & MKR_CREATE) {
		fd = op(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd >= 0) {
			mkr_heap *h = create_named(fd, size, name);
			if (!h) {
				int e = errno;
				rm(name);
				close(fd);
				errno = e;
			}
			return h;
		}
		if (errno != EEXIST || (flags & MKR_EXCL)) {
			mk__rg_fail(errno, "%s: cannot create (%s)", name, strerror(errno));
			return NULL;
		}
	}
	fd = op(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		mk__rg_fail(errno, "%s: cannot open (%s)", name, strerror(errno));
		return NULL;
	}
	mkr_heap *h = open_named(fd, name);
	if (!h) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return h;
}

static int open_file(const char *path, int oflags, mode_t mode) { return open(path, oflags, mode); }

mkr_heap *mkr_open_file(const char *path, int flags, size_t size, mode_t mode)
{
	return open_by_name(path, flags, size, mode, open_file, unlink);
}

mkr_heap *mkr_open_shm(const char *name, int flags, size_t size, mode_t mode)
{
	return open_by_name(name, flags, size, mode, shm_open, shm_unlink);
}

int mkr_unlink_shm(const char *name)
{
	if (shm_unlink(name) != 0) {
		mk__rg_fail(errno, "%s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

void mkr_close(mkr_heap *h)
{
	if (h)
		drop(h, h->kind == RG_CALLER ? NULL : h->base, h->map_size, h->fd);
}

int mkr_sync(mkr_heap *h)
{
	if (!h) {
		mk__rg_fail(EINVAL, "region heap: no heap");
		return -1;
	}
	if (h->kind == RG_FILE && msync(h->base, h->map_size, MS_SYNC) != 0) {
		mk__rg_fail(errno, "region heap: msync failed (%s)", strerror(errno));
		return -1;
	}
	return 0;
}

/* --- offsets and roots ------------------------------------------------------------------------------ */
mkr_off mkr_to_off(const mkr_heap *h, const void *p)
{
	if (!h || (const char *)p <= h->base || (const char *)p >= h->base + h->region_size)
		return 0;
	return (mkr_off)((const char *)p - h->base);
}

void *mkr_to_ptr(const mkr_heap *h, mkr_off off)
{
	if (!h || off == 0 || off >= h->region_size)
		return NULL;
	return h->base + off;
}

mkr_off mkr_root_get(const mkr_heap *h, unsigned slot)
{
	if (!h || slot >= MKR_ROOTS)
		return 0;
	return __atomic_load_n(&h->hdr->roots[slot], __ATOMIC_ACQUIRE);
}

static int root_ok(const mkr_heap *h, unsigned slot, mkr_off off)
{
	if (!h || slot >= MKR_ROOTS || (off && (off < h->heap_off || off >= h->heap_end))) {
		mk__rg_fail(EINVAL, "region heap: root slot %u cannot hold %#" PRIx64, slot, off);
		return 0;
	}
	return 1;
}

int mkr_root_set(mkr_heap *h, unsigned slot, mkr_off off)
{
	if (!root_ok(h, slot, off))
		return -1;
	__atomic_store_n(&h->hdr->roots[slot], off, __ATOMIC_RELEASE);
	return 0;
}

int mkr_root_cas(mkr_heap *h, unsigned slot, mkr_off expected, mkr_off desired)
{
	if (!root_ok(h, slot, desired))
		return -1;
	return __atomic_compare_exchange_n(&h->hdr->roots[slot], &expected, desired, 0, __ATOMIC_ACQ_REL,
	                                   __ATOMIC_ACQUIRE);
}
