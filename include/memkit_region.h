/* memkit region heaps: a heap laid over one region of memory that the caller chooses: private, shared
 * between processes (inherited across fork, or opened by name), or kept in a file that outlives the process.
 *
 * Everything inside the region is addressed by offsets from its start, never by pointers, because each
 * process may map the region at a different address.  mkr_to_ptr/mkr_to_off convert; the root slots in the
 * header hold offsets so that a reopened heap finds its data.
 *
 * One robust, process-shared lock guards each heap.  A process that dies holding it (even by SIGKILL) leaves
 * a state the next locker repairs before it goes on; what the dead process had allocated stays allocated
 * under its pid until mkr_reclaim_owner() (or mkr_reclaim_dead()) frees it.
 *
 * Errors: functions that return a pointer return NULL, those that return int return -1; errno says why and
 * mkr_last_error() gives a sentence for this thread's last failure.  errno values:
 *   ENOMEM  no block fits (the heap is left exactly as it was), or the system refused memory
 *   EINVAL  bad argument; a pointer that is not the start of a live block of this heap (outside it, interior,
 *           already freed); a region that is not a heap (bad magic), truncated, or with a damaged header
 *   ENOTSUP a heap of another format version or built for another ABI
 *   EIO     the heap's blocks are damaged (check() failed, a write past a block's end was found, or an open,
 *           attach, repair or walk met a bad block header); the heap is then flagged and later calls say EIO
 * A region is untrusted input: every offset and size read from it is validated before use, so damage gives
 * an error (or a rebuild of the derived state), never an access outside the region or a hang.
 *   EDEADLK called from a mkr_foreach callback on the same heap
 *   others  from open/shm_open/ftruncate/flock (ENOENT, EEXIST, EACCES, ...)
 * See docs/region.md for the layout, the locking and recovery design, and an example. */
#ifndef MEMKIT_REGION_H
#define MEMKIT_REGION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mkr_heap mkr_heap;
/* A position inside a region, counted in bytes from its start; 0 means "none" (it is inside the header). */
typedef uint64_t mkr_off;

#define MKR_ROOTS 8             /* root slots in the header */
#define MKR_MIN_REGION 8192     /* the smallest region a heap fits in */
#define MKR_MAX_REGION (1ull << 36) /* block sizes are stored in 32 bits of 16-byte units */

/* Flags for mkr_open_file / mkr_open_shm. */
#define MKR_CREATE 1            /* create the heap when the name does not exist (size and mode apply) */
#define MKR_EXCL   2            /* with MKR_CREATE: fail with EEXIST when it does */

/* --- creating and opening ------------------------------------------------------------------------ */
/* Anonymous private memory: this process only (a fork gets a copy). */
mkr_heap *mkr_create_private(size_t size);
/* Anonymous shared memory: children created by fork after this call share the same heap. */
mkr_heap *mkr_create_shared(size_t size);
/* A heap over memory the caller owns (any mapping, static array...): size bytes from mem, 16-byte aligned.
 * mkr_close never unmaps it. */
mkr_heap *mkr_create_in(void *mem, size_t size);
/* A heap that already lives in memory the caller mapped (for instance a file mapped by hand): the header is
 * validated (EINVAL, ENOTSUP), then check() runs and a failure rebuilds the derived state (EIO when a block
 * header is damaged).  The lock in the memory is taken as it is: it may be shared with live users. */
mkr_heap *mkr_attach(void *mem, size_t size);
/* A heap in a file, shared by every process that opens the same path; its contents persist. */
mkr_heap *mkr_open_file(const char *path, int flags, size_t size, mode_t mode);
/* A heap in a POSIX shared-memory object (name like "/demo"); it lasts until mkr_unlink_shm or reboot. */
mkr_heap *mkr_open_shm(const char *name, int flags, size_t size, mode_t mode);
int mkr_unlink_shm(const char *name);
/* Unmaps what mkr_* mapped and releases the handle; the heap itself stays for the other processes. */
void mkr_close(mkr_heap *h);
/* Writes a file-backed heap back to its file now (it is written anyway, by the kernel, in time). */
int mkr_sync(mkr_heap *h);

/* --- allocation ----------------------------------------------------------------------------------- */
/* A block of at least n bytes, 16-byte aligned, owned by the calling process; n == 0 gives a unique block. */
void *mkr_alloc(mkr_heap *h, size_t n);
/* 0, or -1 with EINVAL (and nothing changed) when p is not a live block of h.  NULL is accepted (0). */
int mkr_free(mkr_heap *h, void *p);
/* As realloc(3): NULL p allocates, n == 0 frees and returns NULL; on failure p is untouched. */
void *mkr_realloc(mkr_heap *h, void *p, size_t n);
/* The bytes usable at p, or 0 (EINVAL) when p is not a live block. */
size_t mkr_usable_size(mkr_heap *h, const void *p);

/* --- offsets and roots ---------------------------------------------------------------------------- */
/* 0 when p is NULL or not inside the region. */
mkr_off mkr_to_off(const mkr_heap *h, const void *p);
/* NULL when off is 0 or not inside the region. */
void *mkr_to_ptr(const mkr_heap *h, mkr_off off);
mkr_off mkr_root_get(const mkr_heap *h, unsigned slot);
/* -1 with EINVAL when slot >= MKR_ROOTS or off is neither 0 nor inside the heap's blocks. */
int mkr_root_set(mkr_heap *h, unsigned slot, mkr_off off);
/* Sets the slot to desired only if it holds expected: 1 when it did, 0 when not, -1 on bad arguments. */
int mkr_root_cas(mkr_heap *h, unsigned slot, mkr_off expected, mkr_off desired);

/* --- ownership -------------------------------------------------------------------------------------- */
/* The pid that allocated p, or 0 (EINVAL) when p is not a live block. */
pid_t mkr_owner(mkr_heap *h, const void *p);
/* Frees every block pid allocated; returns how many, or -1. */
long mkr_reclaim_owner(mkr_heap *h, pid_t pid);
/* Frees the blocks of every owner that no longer exists (kill(pid, 0) says ESRCH); returns how many. */
long mkr_reclaim_dead(mkr_heap *h);
/* Calls fn for each live block (payload offset, usable size, owner) under the heap's lock, so fn must not
 * call mkr_* on the same heap (such a call fails with EDEADLK).  A non-zero return from fn stops the walk and
 * is returned. */
int mkr_foreach(mkr_heap *h, int (*fn)(void *arg, mkr_off off, size_t size, pid_t owner), void *arg);

/* --- waiting between processes --------------------------------------------------------------------- */
/* Sleeps while the 32-bit word (inside the region, 4-byte aligned) still holds `expected`, at most
 * timeout_ms milliseconds (-1: no limit).  0 when woken, when the word differed, or on a signal (callers
 * re-check their condition); -1 with ETIMEDOUT, or EINVAL for a word outside the region. */
int mkr_wait(mkr_heap *h, const uint32_t *word, uint32_t expected, long timeout_ms);
/* Wakes up to n processes sleeping on the word; returns how many woke, or -1. */
int mkr_notify(mkr_heap *h, const uint32_t *word, int n);

/* --- diagnostics ------------------------------------------------------------------------------------ */
/* 0 when every invariant holds; -1 with EIO and the first broken invariant in mkr_last_error(). */
int mkr_check(mkr_heap *h);

struct mkr_stats {
	size_t region_size;     /* bytes in the region, header included */
	size_t heap_size;       /* bytes of the block area */
	size_t used_blocks, used_bytes;   /* bytes counted with their 16-byte block headers */
	size_t free_blocks, free_bytes;
	size_t largest_free;    /* the largest request that can succeed now (usable bytes) */
	unsigned recoveries;    /* repairs after a lock holder died */
	pid_t last_dead;        /* the pid that held the lock when it died (0 if none) */
};
int mkr_stats(mkr_heap *h, struct mkr_stats *out);
/* Draws the heap as an SVG picture (every block, used ones banded by owner, the totals of mkr_stats) at
 * path, with the drawing module of memkit's heap maps (docs/profiling.md): 0, or -1 with errno set. */
int mkr_map(mkr_heap *h, const char *path);
/* The pid holding the heap's lock right now, or 0. */
pid_t mkr_lock_holder(const mkr_heap *h);
/* A sentence describing this thread's last mkr_* failure ("" when none yet). */
const char *mkr_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
