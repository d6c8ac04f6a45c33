/* Heap maps against the engine's own figures: a heap in a known state (large, huge and small blocks, two
 * threads' heaps) drawn with mk_heap_map; the numbers the map states (an SVG comment with the legend's
 * totals) must equal mallinfo2's, and its span counts the known ones.  Linked against build/libmemkit.so. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "include/memkit.h"
#include "include/memkit_region.h"
#include "tests/common/test.h"

struct figures { size_t segments, arena, uordblks, hblks, hblkhd, keepcost, small, large, free_resident, free_purged; int heaps; };
static char path[64];

static int read_map(struct figures *f, char *title, size_t tsize)
{
	memset(f, 0, sizeof *f);
	FILE *in = fopen(path, "r");
	if (!in)
		return -1;
	char line[4096];
	int found = 0, closed = 0;
	while (fgets(line, sizeof line, in)) {
		if (strstr(line, "</svg>"))
			closed = 1;
		char *t = strstr(line, "font-size=\"150\">");
		if (t && title && !title[0])
			snprintf(title, tsize, "%s", t + 16);
		char *m = strstr(line, "<!-- memkit-map ");
		if (m && sscanf(m, "<!-- memkit-map segments=%zu arena=%zu uordblks=%zu hblks=%zu hblkhd=%zu keepcost=%zu "
		                   "small=%zu large=%zu free_resident=%zu free_purged=%zu heaps=%d",
		                &f->segments, &f->arena, &f->uordblks, &f->hblks, &f->hblkhd, &f->keepcost, &f->small,
		                &f->large, &f->free_resident, &f->free_purged, &f->heaps) == 11)
			found = 1;
	}
	fclose(in);
	return found && closed ? 0 : -1;
}

static void *large[5], *huge[3], *small[2000];
static pthread_barrier_t barrier;
static void *thread_heap(void *arg)
{
	void **out = arg;
	*out = malloc(100);   /* kept: this thread's heap owns a span while the map is drawn */
	pthread_barrier_wait(&barrier);   /* the map is drawn */
	pthread_barrier_wait(&barrier);
	free(*out);
	return NULL;
}

static void test_known_state_matches_mallinfo2(void)
{
	struct figures before, f;
	REQUIRE(mk_heap_map(path) == 0 && read_map(&before, NULL, 0) == 0);
	for (int i = 0; i < 5; i++)
		large[i] = malloc(300 * 1024);
	for (int i = 0; i < 3; i++)
		huge[i] = malloc(4 << 20);
	for (int i = 0; i < 2000; i++)
		small[i] = malloc(1000);
	free(large[0]);
	free(large[1]);
	void *other;
	pthread_t t;
	pthread_barrier_init(&barrier, NULL, 2);
	pthread_create(&t, NULL, thread_heap, &other);
	pthread_barrier_wait(&barrier);
	REQUIRE(mk_heap_map(path) == 0);
	struct mallinfo2 mi = mallinfo2();
	REQUIRE(read_map(&f, NULL, 0) == 0);
	pthread_barrier_wait(&barrier);
	pthread_join(t, NULL);
	CHECK(f.arena == mi.arena);
	CHECK(f.uordblks == mi.uordblks);
	CHECK(f.hblks == mi.hblks);
	CHECK(f.hblkhd == mi.hblkhd);
	CHECK(f.keepcost == mi.keepcost);
	CHECK(f.segments * 4194304 == f.arena);
	CHECK(f.large == before.large + 3);          /* 5 allocated, 2 freed */
	CHECK(f.hblks == before.hblks + 3 && f.hblkhd >= before.hblkhd + 3 * (4u << 20));
	/* 2000 blocks of 1 KiB fill at least 31 spans' worth of 64 KiB: at least one more small span */
	CHECK(f.small > before.small);
	CHECK(f.heaps >= 2);                         /* this thread's heap and the other one's */
	CHECK(f.uordblks >= before.uordblks + 2000 * 1024 + 3 * 320 * 1024);
	fprintf(stderr, "  map: %zu segments, %zu small and %zu large spans, %zu+%zu free slices, %d heaps\n",
	        f.segments, f.small, f.large, f.free_resident, f.free_purged, f.heaps);
}

static void test_freed_state(void)
{
	for (int i = 2; i < 5; i++)
		free(large[i]);
	for (int i = 0; i < 3; i++)
		free(huge[i]);
	for (int i = 0; i < 2000; i++)
		free(small[i]);
	malloc_trim(0);
	struct figures f;
	REQUIRE(mk_heap_map(path) == 0);
	struct mallinfo2 mi = mallinfo2();   /* before read_map, whose stdio allocates */
	REQUIRE(read_map(&f, NULL, 0) == 0);
	CHECK(f.hblks == mi.hblks);
	CHECK(f.hblkhd == mi.hblkhd);
	CHECK(f.uordblks == mi.uordblks);
	CHECK(f.arena == mi.arena);
	CHECK(f.large == 0);
	CHECK(f.keepcost == mi.keepcost);
	CHECK(f.free_resident == 0);                 /* malloc_trim purged every free slice */
}

static void test_title_and_errors(void)
{
	char title[128] = "";
	struct figures f;
	REQUIRE(mk_heap_map(path) == 0 && read_map(&f, title, sizeof title) == 0);
	char want[64];
	snprintf(want, sizeof want, "memkit heap map, pid %ld<", (long)getpid());
	CHECK(strncmp(title, want, strlen(want)) == 0);
	errno = 0;
	CHECK(mk_heap_map(NULL) == -1 && errno == EINVAL);
	errno = 0;
	CHECK(mk_heap_map("/nonexistent-dir/map.svg") == -1 && errno == ENOENT);
	errno = 0;
	CHECK(mk_prof_dump("/tmp/never.heap") == -1 && errno == ENOTSUP);   /* MEMKIT_PROF is not set here */
	CHECK(mk_check() == 0);
}

/* A region heap drawn by the same module: its stated totals are mkr_stats', its blocks the known ones. */
static void test_region_map(void)
{
	mkr_heap *h = mkr_create_private(1 << 20);
	REQUIRE(h);
	void *b[10];
	for (int i = 0; i < 10; i++)
		b[i] = mkr_alloc(h, 1000);
	for (int i = 0; i < 10; i += 2)
		mkr_free(h, b[i]);
	struct mkr_stats st;
	REQUIRE(mkr_stats(h, &st) == 0);
	REQUIRE(mkr_map(h, path) == 0);
	FILE *in = fopen(path, "r");
	REQUIRE(in);
	char line[4096];
	size_t used = 0, nfree = 0, ub = 0, fb = 0;
	int owners = 0, found = 0, closed = 0;
	while (fgets(line, sizeof line, in)) {
		closed |= strstr(line, "</svg>") != NULL;
		char *m = strstr(line, "<!-- memkit-region-map ");
		if (m)
			found = sscanf(m, "<!-- memkit-region-map used_blocks=%zu free_blocks=%zu used_bytes=%zu free_bytes=%zu "
			                  "owners=%d", &used, &nfree, &ub, &fb, &owners) == 5;
	}
	fclose(in);
	CHECK(found && closed);
	CHECK(used == 5 && used == st.used_blocks);
	CHECK(nfree == st.free_blocks && nfree >= 5);   /* the five holes (neighbours of a hole coalesce into it) */
	CHECK(ub == st.used_bytes && fb == st.free_bytes);
	CHECK(owners == 1);
	errno = 0;
	CHECK(mkr_map(NULL, path) == -1 && errno == EINVAL);
	mkr_close(h);
}

static void cases(void)
{
	RUN(test_known_state_matches_mallinfo2);
	RUN(test_freed_state);
	RUN(test_title_and_errors);
	RUN(test_region_map);
}

int main(void)
{
	snprintf(path, sizeof path, "/tmp/memkit-map-test.%ld.svg", (long)getpid());
	int r = test_main(cases);
	unlink(path);
	return r;
}
