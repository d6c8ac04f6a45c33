/* realloc growth: strings built by appending a few bytes at a time and arrays grown one element at a
 * time, several at once and interleaved (so growing in place is not always possible), with a few
 * shrinks on the way, as a naive string builder or vector does.
 * Arguments: rounds (default 400), threads (default 1; rounds are split between them).
 * Self-check: each buffer's whole content is checked after it has grown. */
#include <pthread.h>
#include "wl.h"

#define LIVE 16          /* buffers growing at the same time */
#define STRING_MAX 16384 /* bytes a string grows to */
#define ARRAY_MAX 8192   /* elements an array grows to */

static void *run(void *arg)
{
	struct wl_job *j = arg;
	wl_rng r = wl_seed(j->seed);
	for (long round = 0; round < j->work; round++) {
		char *str[LIVE] = { 0 };
		size_t len[LIVE] = { 0 };
		uint32_t *arr[LIVE] = { 0 };
		size_t cnt[LIVE] = { 0 };
		int busy = 1;
		while (busy) {
			busy = 0;
			for (int i = 0; i < LIVE; i++) {
				if (len[i] < STRING_MAX) {   /* append 1-48 bytes */
					size_t add = 1 + wl_below(&r, 48);
					char *s = realloc(str[i], len[i] + add + 1);
					if (!s)
						WL_FAIL("realloc string to %zu", len[i] + add + 1);
					for (size_t k = 0; k < add; k++, len[i]++)
						s[len[i]] = (char)('a' + (len[i] + (size_t)i) % 26);
					s[len[i]] = 0;
					str[i] = s;
					busy = 1;
				}
				if (cnt[i] < ARRAY_MAX) {    /* push one element */
					uint32_t *a = realloc(arr[i], (cnt[i] + 1) * sizeof *a);
					if (!a)
						WL_FAIL("realloc array to %zu", cnt[i] + 1);
					a[cnt[i]] = (uint32_t)(cnt[i] * 2654435761u + (uint32_t)i);
					cnt[i]++;
					arr[i] = a;
					busy = 1;
				}
			}
		}
		for (int i = 0; i < LIVE; i++) {
			for (size_t k = 0; k < len[i]; k++)
				if (str[i][k] != (char)('a' + (k + (size_t)i) % 26))
					WL_FAIL("string %d byte %zu", i, k);
			for (size_t k = 0; k < cnt[i]; k++)
				if (arr[i][k] != (uint32_t)(k * 2654435761u + (uint32_t)i))
					WL_FAIL("array %d element %zu", i, k);
			/* shrink to a quarter, as a trimmed buffer does, and check the prefix survived */
			size_t keep = cnt[i] / 4;
			uint32_t *a = realloc(arr[i], keep * sizeof *a);
			if (!a || a[keep - 1] != (uint32_t)((keep - 1) * 2654435761u + (uint32_t)i))
				WL_FAIL("shrinking array %d", i);
			j->sum += len[i] + cnt[i];
			free(str[i]);
			free(a);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long rounds = wl_arg(argc, argv, 1, 400);
	int threads = (int)wl_arg(argc, argv, 2, 1);
	uint64_t sum = wl_parallel(threads, rounds, 5, run);
	if (sum < (uint64_t)rounds * LIVE * (STRING_MAX + ARRAY_MAX))
		WL_FAIL("grew %llu bytes and elements", (unsigned long long)sum);
	wl_ok(sum);
	return 0;
}
