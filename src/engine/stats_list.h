/* The lists of statistics (see stats.h for what the sources G, O, H, D mean), apart so that types.h can
 * put the per-heap counters (source H) into mk_heap.  No includes: types.h includes it after MK_NCLASSES. */
#ifndef MK_STATS_LIST_H
#define MK_STATS_LIST_H

/* X(source, field, name, unit, help) */
#define MK_STATS_LIST(X)                                                                                          \
	X(D, elapsed_ms, "elapsed", "ms", "since memkit started in this process")                                   \
	X(D, bytes_current, "bytes.current", "bytes", "in live blocks of every kind (block sizes, not requests)")   \
	X(D, blocks_current, "blocks.current", "blocks", "live blocks of every kind")                               \
	X(D, bytes_held, "bytes.held", "bytes", "held for blocks: spans in use plus huge mappings")                 \
	X(G, bytes_held_peak, "bytes.held_peak", "bytes", "peak of bytes.held (exact: it changes on slow paths only)") \
	X(D, small_blocks, "small.blocks", "blocks", "live small blocks (up to 128 KiB)")                           \
	X(D, small_bytes, "small.bytes", "bytes", "in live small blocks")                                           \
	X(D, small_spans, "small.spans", "spans", "spans of small blocks in use")                                   \
	X(D, small_span_bytes, "small.span_bytes", "bytes", "in those spans")                                       \
	X(G, small_span_bytes_peak, "small.span_bytes_peak", "bytes", "peak of small.span_bytes")                   \
	X(G, small_spans_made, "small.spans_made", "spans", "spans of small blocks made, in all")                   \
	X(D, small_refills, "small.refills", "calls", "times a heap found its current span of a size class empty (the sum of class.*.refills)") \
	X(D, large_blocks, "large.blocks", "blocks", "live large blocks (over 128 KiB up to 2 MiB)")                \
	X(D, large_bytes, "large.bytes", "bytes", "in live large blocks (whole 64 KiB slices)")                     \
	X(G, large_bytes_peak, "large.bytes_peak", "bytes", "peak of large.bytes")                                  \
	X(G, large_allocs, "large.allocs", "blocks", "large blocks allocated, in all")                              \
	X(G, large_bytes_total, "large.bytes_total", "bytes", "allocated as large blocks, in all")                  \
	X(D, huge_blocks, "huge.blocks", "blocks", "live huge blocks (over 2 MiB, a mapping each)")                 \
	X(D, huge_bytes, "huge.bytes", "bytes", "in live huge blocks (whole pages)")                                \
	X(G, huge_bytes_peak, "huge.bytes_peak", "bytes", "peak of huge.bytes")                                     \
	X(G, huge_allocs, "huge.allocs", "blocks", "huge blocks allocated, in all")                                 \
	X(G, huge_bytes_total, "huge.bytes_total", "bytes", "allocated as huge blocks, in all")                     \
	X(G, huge_reallocs, "huge.reallocs", "calls", "huge blocks resized with mremap")                            \
	X(D, huge_cached_bytes, "huge.cached_bytes", "bytes", "freed huge mappings kept for reuse")                 \
	X(D, segments, "segments.current", "segments", "4 MiB segments mapped")                                     \
	X(D, segment_bytes, "segments.bytes", "bytes", "mapped in segments")                                        \
	X(G, segments_peak, "segments.peak", "segments", "peak of segments.current")                                \
	X(G, segments_mapped, "segments.mapped", "segments", "segments mapped, in all")                             \
	X(G, segments_unmapped, "segments.unmapped", "segments", "segments unmapped, in all")                       \
	X(D, free_unpurged, "free.unpurged", "bytes", "free in segments and not purged yet (resident or not)")      \
	X(O, purges, "purges", "calls", "purges done (madvise(MADV_DONTNEED) that succeeded)")                      \
	X(O, purged_bytes, "purges.bytes", "bytes", "given back to the system by those purges")                     \
	X(O, os_mmap, "os.mmap", "calls", "mmap system calls")                                                      \
	X(O, os_munmap, "os.munmap", "calls", "munmap system calls")                                                \
	X(O, os_madvise, "os.madvise", "calls", "madvise system calls (purges, refused ones too)")                  \
	X(O, os_mremap, "os.mremap", "calls", "mremap system calls")                                                \
	X(O, os_mprotect, "os.mprotect", "calls", "mprotect system calls")                                          \
	X(O, os_mincore, "os.mincore", "calls", "mincore system calls (calloc of a reused huge block, heap maps)")  \
	X(D, heaps, "heaps.current", "heaps", "thread heaps made (never unmapped)")                                 \
	X(D, heaps_parked, "heaps.parked", "heaps", "of those, parked (their thread exited) and waiting")           \
	X(G, heaps_created, "heaps.created", "heaps", "thread heaps created, in all")                               \
	X(G, heaps_adopted, "heaps.adopted", "heaps", "parked heaps taken over by a new thread, in all")            \
	X(H, remote_frees, "remote_frees", "blocks", "small blocks freed by a thread other than their heap's")      \
	X(D, rss, "rss", "bytes", "resident set of the process (/proc/self/statm)")                                  \
	X(D, rss_peak, "rss.peak", "bytes", "peak resident set (getrusage)")                                        \
	X(D, minor_faults, "faults.minor", "faults", "minor page faults of the process (getrusage)")                 \
	X(D, major_faults, "faults.major", "faults", "major page faults of the process (getrusage)")

/* Per size class: X(source, field, name, help); the name is class.SIZE.name. */
#define MK_CLASS_STATS_LIST(X)                                                                                    \
	X(H, refills, "refills", "times a heap found its span of this class empty")                                 \
	X(G, spans_made, "spans_made", "spans of this class made, in all")                                          \
	X(D, spans, "spans", "spans of this class in use")                                                          \
	X(D, live, "live", "live blocks")                                                                           \
	X(D, capacity, "capacity", "blocks that the spans in use hold")                                             \
	X(D, util_permille, "util_permille", "live bytes per 1000 bytes of those spans")

/* The per-heap counters (source H), generated from the lists. */
#define MK_STAT_H_H(field) uint64_t field;
#define MK_STAT_H_G(field)
#define MK_STAT_H_O(field)
#define MK_STAT_H_D(field)
#define MK_STAT_H(src, field, ...) MK_STAT_H_##src(field)
typedef struct mk_heap_stats {
	MK_STATS_LIST(MK_STAT_H)
	struct { MK_CLASS_STATS_LIST(MK_STAT_H) } cls[MK_NCLASSES];
} mk_heap_stats;

/* A counter a heap's owner keeps in its own heap: relaxed, so report-time readers on other threads are
 * not a data race, and a plain add on x86-64. */
#define MK_STAT_OWN_INC(field) __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED)

#endif
