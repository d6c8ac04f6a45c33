/* Fragmentation, then release: allocate a lot of mixed-size blocks (16 B to 16 KiB, log-uniform), free
 * the first 90% of them in random order and keep the last 10% (the data a program goes on using), then
 * sample RSS for the next second while doing a little allocation work, as a live program would.
 * Prints as metrics the RSS above the starting baseline, relative to the live bytes, right after the frees
 * and after 0.25, 0.5 and 1 s (the design's target: within 10% of live data after 1 s), and the time of
 * the allocate-and-free phase alone ("time_s": the runner uses it instead of the wall time, which the
 * sampling second would swamp).
 * Arguments: megabytes to allocate (default 256), threads (ignored).
 * Self-check: every surviving block is verified at the end, and the freed ones when they are freed. */
#include <math.h>
#include "wl.h"

struct blk { void *p; uint32_t size; };

static void sleep_working(double seconds, wl_rng *r, uint64_t *sum)
{
	double end = wl_now() + seconds;
	while (wl_now() < end) {
		/* a little work: a few small blocks, then a pause */
		void *tmp[16];
		for (int i = 0; i < 16; i++) {
			size_t n = 16 + wl_below(r, 240);
			tmp[i] = wl_malloc(n);
			memset(tmp[i], i, n);
		}
		for (int i = 15; i >= 0; i--) {
			*sum += ((unsigned char *)tmp[i])[0];
			free(tmp[i]);
		}
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	size_t total = (size_t)wl_arg(argc, argv, 1, 256) << 20;
	wl_rng r = wl_seed(99);
	free(wl_malloc(1));  /* the allocator's own start-up belongs to the baseline */
	size_t base = wl_rss();
	double t0 = wl_now();
	size_t cap = total / 1024, n = 0, bytes = 0;  /* blocks average about 2.4 KiB */
	struct blk *b = wl_malloc(cap * sizeof *b);
	while (bytes < total) {
		if (n == cap)
			WL_FAIL("more blocks than expected");
		uint32_t size = (uint32_t)exp2(4.0 + 10.0 * wl_unit(&r));
		b[n].p = wl_malloc(size);
		b[n].size = size;
		memset(b[n].p, (int)(n & 0xff), size);  /* touch all of it: RSS is what we measure */
		wl_stamp(b[n].p, size, (uint32_t)n);
		bytes += size;
		n++;
	}
	size_t keep_from = n - n / 10, live = 0;
	for (size_t i = keep_from; i < n; i++)
		live += b[i].size;
	/* free the first 90% in random order: shuffle their indices (Fisher-Yates) */
	uint32_t *order = wl_malloc(keep_from * sizeof *order);
	for (size_t i = 0; i < keep_from; i++)
		order[i] = (uint32_t)i;
	for (size_t i = keep_from; i > 1; i--) {
		size_t k = wl_below(&r, i);
		uint32_t t = order[i - 1];
		order[i - 1] = order[k];
		order[k] = t;
	}
	uint64_t sum = 0;
	for (size_t i = 0; i < keep_from; i++) {
		struct blk *x = &b[order[i]];
		wl_verify(x->p, x->size, order[i]);
		sum += x->size;
		free(x->p);
	}
	free(order);
	double work = wl_now() - t0;
	/* the index array is live data too */
	live += cap * sizeof *b;
	double at[] = { 0, 0.25, 0.5, 1.0 };
	const char *name[] = { "rss_ratio_0s", "rss_ratio_0.25s", "rss_ratio_0.5s", "rss_ratio_1s" };
	double prev = 0;
	for (int i = 0; i < 4; i++) {
		sleep_working(at[i] - prev, &r, &sum);
		prev = at[i];
		size_t rss = wl_rss();
		printf("metric %s %.3f\n", name[i], (double)(rss > base ? rss - base : 0) / (double)live);
	}
	printf("metric live_mib %.1f\nmetric time_s %.4f\n", (double)live / 1048576.0, work);
	for (size_t i = keep_from; i < n; i++) {
		wl_verify(b[i].p, b[i].size, (uint32_t)i);
		sum += b[i].size;
		free(b[i].p);
	}
	free(b);
	wl_ok(sum);
	return 0;
}
