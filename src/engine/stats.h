/* Statistics: one list of counters (MK_STATS_LIST) generates the global counters, the snapshot struct, the
 * merge, the text and JSON reports, the name lookup of mk_stats_get and the table of docs/stats.md.
 *
 * Nothing is counted on the inlined malloc/free.  Each counter has a source (the lists: stats_list.h):
 *   G  a process-wide atomic, counted on a slow path (span, segment, large and huge operations);
 *   O  counted by the OS layer (os.c: system calls, purges), copied in;
 *   H  counted by a heap's owner in its own heap (plain relaxed stores, no shared line), summed over every
 *      heap at report time (a parked heap keeps its counts; the next thread adds to them);
 *   D  derived at report time from the allocator's state (span states, the huge registry, the system). */
#ifndef MK_STATS_H
#define MK_STATS_H

#include <stdint.h>

#include "engine/types.h"   /* which includes engine/stats_list.h */

#define MK_STAT_FIELD(src, field, ...) uint64_t field;
typedef struct mk_class_snapshot { MK_CLASS_STATS_LIST(MK_STAT_FIELD) } mk_class_snapshot;
typedef struct mk_stats_snapshot {
	long pid;
	MK_STATS_LIST(MK_STAT_FIELD)
	mk_class_snapshot cls[MK_NCLASSES];
} mk_stats_snapshot;

/* Takes every lock of the engine in turn (never two at once), so never from inside one. */
void mk__stats_snapshot(mk_stats_snapshot *s) __attribute__((visibility("hidden")));

/* The slow paths' counting (stats.c).  n > 0: made or allocated, n < 0: given back. */
void mk__stat_span(const mk_span *s, int n) __attribute__((visibility("hidden")));        /* segment.c, under its lock */
void mk__stat_segment(int n) __attribute__((visibility("hidden")));                       /* segment.c */
void mk__stat_huge(size_t bytes, int n) __attribute__((visibility("hidden")));           /* huge.c */
void mk__stat_huge_realloc(size_t old_bytes, size_t new_bytes) __attribute__((visibility("hidden")));
void mk__stat_heap(int adopted) __attribute__((visibility("hidden")));                    /* heap.c */
/* Counted by a thread with no heap (a remote free is counted in the freeing thread's heap: heap.c, inlined
 * there so that the remote free makes no call). */
extern mk_heap_stats mk__heapless_stats __attribute__((visibility("hidden")));

/* The public functions' backends (api.c: mk_stats_print, mk_stats_get) and docs/stats.md's table. */
void mk__engine_stats_print_to(void (*write_cb)(void *opaque, const char *text), void *opaque, const char *options)
	__attribute__((visibility("hidden")));
int  mk__engine_stats_get(const char *name, uint64_t *value) __attribute__((visibility("hidden")));
void mk__stats_write_doc(void (*write_cb)(void *opaque, const char *text), void *opaque)
	__attribute__((visibility("hidden")));

/* The report at exit (MEMKIT_STATS), and what init prepares for it (the start time, a copy of stderr). */
void mk__stats_init(void) __attribute__((visibility("hidden")));
void mk__stats_at_exit(void) __attribute__((visibility("hidden")));

#endif
