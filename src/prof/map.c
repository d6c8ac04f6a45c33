/* The engine's heap map: every segment as a row of its 64 slices, each span coloured by what it holds
 * (small blocks by size, a large block, free slices still resident or purged), with its fill (blocks out
 * over capacity) and a band naming the heap that owns it; huge blocks and the huge cache as bars; a legend
 * with the totals (the same figures as mallinfo2, computed from the walk itself); and the time view, RSS,
 * live and resident free bytes over time, sampled every MEMKIT_MAP_INTERVAL ms by the dump thread.
 * Memory comes from mappings of our own and output goes through write(2) (out.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "prof/map.h"
#include "prof/out.h"
#include "prof/prof.h"
#include "prof/svg.h"
#include "prof/walk.h"

#define EXPORT __attribute__((visibility("default")))

enum { K_HEADER, K_TINY, K_SMALL, K_MEDIUM, K_LARGE, K_FREE_RES, K_FREE_PURGED, K_HUGE, K_CACHE, NKINDS };
static const struct heapsvg_kind kinds[NKINDS] = {
	{ "segment header (span descriptors)", "#7f7f7f" },
	{ "small blocks, 16-256 B (solid part: blocks out)", "#6baed6" },
	{ "small blocks, 257 B-4 KiB", "#3182bd" },
	{ "small blocks, 4-128 KiB", "#08519c" },
	{ "large block (128 KiB-2 MiB)", "#fd8d3c" },
	{ "free, resident (not purged yet)", "#fdd835" },
	{ "free, purged (no RSS)", "#eeeeee" },
	{ "huge block (own mapping)", "#d62728" },
	{ "huge cache (freed, kept)", "#f7b6d2" },
};
#define MAX_GROUPS 12
static const char *const group_colours[MAX_GROUPS] = {
	"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
	"#a6761d", "#666666", "#17becf", "#bcbd22", "#9467bd", "#000000",
};

/* ---- the time view ---- */

#define TIME_POINTS 1024
static double t_x[TIME_POINTS], t_rss[TIME_POINTS], t_live[TIME_POINTS], t_free[TIME_POINTS];
static size_t t_n, t_stride = 1, t_skip;
static uint64_t t_start_ms;
static bool t_started;

static size_t rss_bytes(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	unsigned long size = 0, rss = 0;
	if (sscanf(buf, "%lu %lu", &size, &rss) != 2)
		return 0;
	return rss * (size_t)sysconf(_SC_PAGESIZE);
}

void mk__map_sample_time(void)
{
	if (!t_started) {
		t_start_ms = mk__now_ms();
		t_started = true;
	}
	if (t_skip++ % t_stride)
		return;
	if (t_n == TIME_POINTS) {   /* keep every other point, and sample half as often from now on */
		for (size_t i = 0; i < TIME_POINTS / 2; i++) {
			t_x[i] = t_x[2 * i];
			t_rss[i] = t_rss[2 * i];
			t_live[i] = t_live[2 * i];
			t_free[i] = t_free[2 * i];
		}
		t_n = TIME_POINTS / 2;
		t_stride *= 2;
	}
	struct mallinfo2 mi;
	mk__engine_info(&mi);
	t_x[t_n] = (double)(mk__now_ms() - t_start_ms) / 1000.0;
	t_rss[t_n] = (double)rss_bytes() / 1048576.0;
	t_live[t_n] = (double)(mi.uordblks + mi.hblkhd) / 1048576.0;
	t_free[t_n] = (double)mi.keepcost / 1048576.0;
	t_n++;
}

/* ---- the map ---- */

static int kind_of(const map_span *s)
{
	switch (s->kind) {
	case MAP_HEADER: return K_HEADER;
	case MAP_LARGE: return K_LARGE;
	case MAP_FREE_RESIDENT: return K_FREE_RES;
	case MAP_FREE_PURGED: return K_FREE_PURGED;
	default: return s->block_size <= 256 ? K_TINY : s->block_size <= 4096 ? K_SMALL : K_MEDIUM;
	}
}

#define KIB(x) ((unsigned long)((x) >> 10))

int mk__map_write(const char *path)
{
	mk__init();
	map_walk w;
	if (!mk__map_walk(&w))
		return -1;
	size_t hn, hbytes, hcached;
	mk__huge_info(&hn, &hbytes, &hcached);
	size_t nsp = w.nspans;
	size_t bytes = nsp * (sizeof(struct heapsvg_span) + sizeof(struct heapsvg_fill)) + w.nsegments * 32 + 2 * sizeof(struct heapsvg_bar) +
	               MAX_GROUPS * (sizeof(struct heapsvg_kind) + 64) + w.nsegments * sizeof(char *) + 64;
	char *mem = mk__scratch(bytes);
	if (!mem) {
		mk__map_walk_free(&w);
		return -1;
	}
	struct heapsvg_span *spans = (struct heapsvg_span *)mem;
	struct heapsvg_fill *fills = (struct heapsvg_fill *)(spans + nsp);
	char *labels = (char *)(fills + nsp);
	const char **row_labels = (const char **)(labels + w.nsegments * 32);
	struct heapsvg_bar *bars = (struct heapsvg_bar *)(row_labels + w.nsegments);
	struct heapsvg_kind *groups = (struct heapsvg_kind *)(bars + 2);
	char *group_names = (char *)(groups + MAX_GROUPS);   /* MAX_GROUPS names of 64 bytes */
	uintptr_t heaps[MAX_GROUPS];
	int ngroups = 0;
	size_t count[NKINDS] = { 0 }, inside = 0, outside = 0;
	for (size_t i = 0; i < w.nsegments; i++) {
		snprintf(labels + i * 32, 32, "%#lx", (unsigned long)w.segments[i]);
		row_labels[i] = labels + i * 32;
	}
	for (size_t i = 0; i < nsp; i++) {
		const map_span *s = &w.spans[i];
		int k = kind_of(s), g = 0;
		count[k]++;
		if (s->heap) {
			for (g = 0; g < ngroups && heaps[g] != s->heap; g++)
				;
			if (g == ngroups && ngroups < MAX_GROUPS) {
				heaps[ngroups] = s->heap;
				char *name = group_names + ngroups * 64;
				if (s->heap == (uintptr_t)&mk__prof_heap)
					snprintf(name, 64, "owner: the profiler's sampled blocks");
				else if (ngroups == MAX_GROUPS - 1)
					snprintf(name, 64, "owner: heap %d and more", ngroups + 1);
				else
					snprintf(name, 64, "owner: thread heap %d (%#lx)", ngroups + 1, (unsigned long)s->heap);
				groups[ngroups] = (struct heapsvg_kind){ name, group_colours[ngroups] };
				ngroups++;
			}
			g = g < MAX_GROUPS ? g + 1 : MAX_GROUPS;
		}
		int fill = 0;
		if (s->kind == MAP_SMALL && s->capacity) {
			uint32_t out = s->used < s->capacity ? s->used : s->capacity;
			fill = (int)((uint64_t)out * 1000 / s->capacity);
			fill = fill ? fill : 1;
			inside += (size_t)s->slices * MK_SLICE_SIZE - (size_t)s->used * s->block_size;
		} else if (s->kind == MAP_FREE_RESIDENT || s->kind == MAP_FREE_PURGED) {
			outside += (size_t)s->slices * MK_SLICE_SIZE;
		}
		spans[i] = (struct heapsvg_span){ k, (size_t)s->segment * MK_SEG_SIZE + (size_t)s->slice * MK_SLICE_SIZE,
		                                  (size_t)s->slices * MK_SLICE_SIZE };
		fills[i] = (struct heapsvg_fill){ fill, g };
	}
	size_t nbars = 0;
	if (hbytes)
		bars[nbars++] = (struct heapsvg_bar){ K_HUGE, hbytes, "huge blocks" };
	if (hcached)
		bars[nbars++] = (struct heapsvg_bar){ K_CACHE, hcached, "huge cache" };
	size_t mapped = w.nsegments * MK_SEG_SIZE, rss = rss_bytes();
	char n[8][200];
	snprintf(n[0], sizeof n[0], "%zu segments of 4 MiB, one row each (64 slices of 64 KiB): %lu KiB mapped "
	         "(mallinfo2 arena); %zu huge blocks: %lu KiB (hblkhd); huge cache: %lu KiB", w.nsegments, KIB(mapped),
	         hn, KIB(hbytes), KIB(hcached));
	snprintf(n[1], sizeof n[1], "in use: %lu KiB in spans (blocks out x block size: uordblks) + %lu KiB huge",
	         KIB(w.in_use), KIB(hbytes));
	snprintf(n[2], sizeof n[2], "resident: process RSS %lu KiB, of which %lu KiB in segments (mincore)", KIB(rss),
	         KIB(w.resident));
	snprintf(n[3], sizeof n[3], "free, not purged: %lu KiB in segments + %lu KiB huge cache = %lu KiB (keepcost); "
	         "purged: %lu KiB", KIB(w.free_dirty), KIB(hcached), KIB(w.free_dirty + hcached),
	         KIB(outside - w.free_dirty));
	snprintf(n[4], sizeof n[4], "internal fragmentation (room in spans in use: free and uncarved blocks, tail): "
	         "%lu KiB", KIB(inside));
	snprintf(n[5], sizeof n[5], "external fragmentation (free slices between spans): %lu KiB", KIB(outside));
	snprintf(n[6], sizeof n[6], "spans: %zu small, %zu large; free slices: %zu resident, %zu purged; "
	         "%d owning heaps (the band above each span)", count[K_TINY] + count[K_SMALL] + count[K_MEDIUM],
	         count[K_LARGE], count[K_FREE_RES], count[K_FREE_PURGED], ngroups);
	char title[128];
	snprintf(title, sizeof title, "memkit heap map, pid %ld", (long)getpid());
	struct heapsvg_chart chart = {
		.title = "over time (MEMKIT_MAP_INTERVAL): RSS, live (in use + huge), resident free (keepcost)",
		.yunit = "MiB", .n = t_n, .x = t_x, .nseries = 3,
		.series = { { "RSS", "#d62728", t_rss }, { "live", "#1f77b4", t_live }, { "resident free", "#fdb927", t_free } },
	};
	struct heapsvg h = {
		.title = title, .notes = { n[0], n[1], n[2], n[3], n[4], n[5], n[6] }, .total = mapped ? mapped : MK_SEG_SIZE,
		.rows = w.nsegments ? (int)w.nsegments : 1, .row_labels = row_labels, .kinds = kinds, .nkinds = NKINDS,
		.groups = groups, .ngroups = ngroups, .spans = spans, .fills = fills, .nspans = nsp, .bars_title = "outside segments",
		.bars = bars, .nbars = nbars, .chart = t_n ? &chart : NULL,
	};
	mk_out *o = mk__scratch(sizeof *o);
	int r = -1, e = ENOMEM;
	if (o && mk__out_open(o, path)) {
		heapsvg_draw(o, &h);
		/* The same figures for programs (tests/prof/map.c reads them). */
		mk__out_printf(o, "<!-- memkit-map segments=%zu arena=%zu uordblks=%zu hblks=%zu hblkhd=%zu keepcost=%zu "
		               "small=%zu large=%zu free_resident=%zu free_purged=%zu heaps=%d resident=%zu -->\n",
		               w.nsegments, mapped, w.in_use, hn, hbytes, w.free_dirty + hcached,
		               count[K_TINY] + count[K_SMALL] + count[K_MEDIUM], count[K_LARGE], count[K_FREE_RES],
		               count[K_FREE_PURGED], ngroups, w.resident);
		r = mk__out_close(o);
		e = errno;
	} else if (o) {
		e = errno;
	}
	mk__scratch_free(o, sizeof *o);
	mk__scratch_free(mem, bytes);
	mk__map_walk_free(&w);
	errno = e;
	return r;
}

void mk__map_write_default(void)
{
	char path[300];
	mk__prof_expand(mk__prof_opt.map, path, sizeof path);
	if (mk__map_write(path) != 0)
		mk__message("memkit: cannot write the heap map %s: %s\n", path, strerror(errno));
}

EXPORT int mk_heap_map(const char *path)
{
	if (!path) {
		errno = EINVAL;
		return -1;
	}
	return mk__map_write(path);
}
