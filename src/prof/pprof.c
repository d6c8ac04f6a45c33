/* Writing what was sampled: the profile, in the legacy text format of gperftools' heap profiler that
 * google-pprof reads, and the leak report at exit.
 *
 * The profile is a "symbolised profile" (what `pprof --raw` writes): a `--- symbol` section naming every
 * address (symbols.c, at write time only), then the `heap profile:` section, one line per site (stack and
 * block size), then MAPPED_LIBRARIES (a copy of /proc/self/maps) for tools that want the binaries.
 * Counts are the raw sample counts; the header's `heap_v2/RATE` tells pprof to scale each line by
 * 1 / (1 - exp(-size / RATE)), which is exact here because all samples of a line have one size.
 * Bytes are block sizes (what malloc_usable_size says), the memory the program really holds.
 *
 * The sites are copied out under the lock and symbolised after it is released: naming takes the dynamic
 * loader's lock (dl_iterate_phdr), which a thread inside dlopen holds while it calls malloc (and may wait
 * for ours). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "prof/out.h"
#include "prof/prof.h"

static _Atomic long dumps;   /* profiles named so far (the sequence number) */

void mk__prof_expand(const char *pattern, char *buf, size_t size)
{
	size_t n = 0;
	for (const char *s = pattern; *s && n + 24 < size; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			n += (size_t)snprintf(buf + n, size - n, "%ld", (long)getpid());
			s++;
		} else {
			buf[n++] = *s;
		}
	}
	buf[n] = '\0';
}

/* A fork's child: its pid is new, so where the name has %p its first dump has no sequence number, as the
 * parent's first had; without %p the count goes on (the parent's files keep their names). */
void mk__prof_names_after_fork(void)
{
	if (strstr(mk__prof_opt.file, "%p"))
		atomic_store(&dumps, 0);
}

void mk__prof_next_name(char *buf, size_t size)
{
	long seq = atomic_fetch_add(&dumps, 1);
	char name[300];
	mk__prof_expand(mk__prof_opt.file, name, sizeof name);
	if (seq == 0) {
		snprintf(buf, size, "%s", name);
		return;
	}
	/* memkit.123.heap -> memkit.123.1.heap; a name without .heap gets .1 at the end. */
	size_t len = strlen(name);
	if (len > 5 && strcmp(name + len - 5, ".heap") == 0)
		snprintf(buf, size, "%.*s.%ld.heap", (int)(len - 5), name, seq);
	else
		snprintf(buf, size, "%s.%ld", name, seq);
}

/* Shell sort (qsort may allocate). */
static void sort_addresses(uintptr_t *a, size_t n)
{
	for (size_t gap = n / 2; gap; gap = gap == 2 ? 1 : gap * 5 / 11)
		for (size_t i = gap; i < n; i++) {
			uintptr_t v = a[i];
			size_t j = i;
			for (; j >= gap && a[j - gap] > v; j -= gap)
				a[j] = a[j - gap];
			a[j] = v;
		}
}

/* Names for the sorted addresses pcs[0..n) (duplicates removed first: n becomes the count of distinct
 * ones), in scratch memory freed by names_free; NULL when out of memory. */
typedef struct names { char (*name)[PROF_NAME_MAX]; size_t bytes; } names;

static bool names_of(uintptr_t *pcs, size_t *n, names *out)
{
	size_t k = 0;
	for (size_t i = 0; i < *n; i++)
		if (!k || pcs[i] != pcs[k - 1])
			pcs[k++] = pcs[i];
	*n = k;
	out->bytes = (k + 1) * (PROF_NAME_MAX + sizeof(uintptr_t));
	out->name = mk__scratch(out->bytes);
	if (!out->name)
		return false;
	mk__prof_symbolize(pcs, k, out->name, (uintptr_t *)(out->name + k));
	return true;
}

static void names_free(names *nm) { mk__scratch_free(nm->name, nm->bytes); }

/* A copy of the sites, taken under the lock: freed by the caller with mk__scratch_free. */
static prof_site *snapshot(size_t *n, size_t *bytes)
{
	for (;;) {
		mk__prof_lock();
		size_t want = mk__prof_sites_count();
		mk__prof_unlock();
		size_t cap = want + 64;
		*bytes = cap * sizeof(prof_site) + 1;
		prof_site *s = mk__scratch(*bytes);
		if (!s)
			return NULL;
		mk__prof_lock();
		size_t have = mk__prof_sites_copy(s, cap);
		mk__prof_unlock();
		if (have <= cap) {
			*n = have;
			return s;
		}
		mk__scratch_free(s, *bytes);
	}
}

static void write_symbols(mk_out *o, const prof_site *s, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += s[i].nframes;
	size_t bytes = (total + 1) * sizeof(uintptr_t);
	uintptr_t *pcs = mk__scratch(bytes);
	if (!pcs)
		return;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (unsigned f = 0; f < s[i].nframes; f++)
			pcs[k++] = s[i].frames[f];
	sort_addresses(pcs, k);
	char exe[512];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[len > 0 ? len : 0] = '\0';
	mk__out_printf(o, "--- symbol\nbinary=%s\n", exe);
	names nm;
	if (names_of(pcs, &k, &nm)) {
		for (size_t i = 0; i < k; i++) {
			mk__out_hex16(o, (unsigned long)pcs[i]);
			mk__out_str(o, " ");
			mk__out_str(o, nm.name[i]);
			mk__out_str(o, "\n");
		}
		names_free(&nm);
	}
	mk__out_str(o, "---\n");
	mk__scratch_free(pcs, bytes);
}

int mk__prof_write(const char *path, bool symbols)
{
	size_t n, bytes;
	prof_site *s = snapshot(&n, &bytes);
	if (!s)
		return -1;
	mk_out *o = mk__scratch(sizeof *o);
	if (!o || !mk__out_open(o, path)) {
		int e = errno;
		mk__scratch_free(o, sizeof *o);
		mk__scratch_free(s, bytes);
		errno = e;
		return -1;
	}
	if (symbols)
		write_symbols(o, s, n);
	uint64_t lc = 0, lb = 0, ac = 0, ab = 0;
	for (size_t i = 0; i < n; i++) {
		lc += s[i].live_count;
		lb += s[i].live_count * s[i].size;
		ac += s[i].alloc_count;
		ab += s[i].alloc_count * s[i].size;
	}
	mk__out_printf(o, "heap profile: %lu: %lu [%lu: %lu] @ heap_v2/%ld\n", (unsigned long)lc,
	               (unsigned long)lb, (unsigned long)ac, (unsigned long)ab, mk__prof_opt.rate);
	for (size_t i = 0; i < n; i++) {
		mk__out_dec(o, (unsigned long)s[i].live_count);
		mk__out_str(o, ": ");
		mk__out_dec(o, (unsigned long)(s[i].live_count * s[i].size));
		mk__out_str(o, " [");
		mk__out_dec(o, (unsigned long)s[i].alloc_count);
		mk__out_str(o, ": ");
		mk__out_dec(o, (unsigned long)(s[i].alloc_count * s[i].size));
		mk__out_str(o, "] @");
		if (s[i].nframes == 0)
			mk__out_str(o, " 0x1");    /* no stack (sampled before the unwinder was ready) */
		for (unsigned f = 0; f < s[i].nframes; f++) {
			mk__out_str(o, " ");
			mk__out_hex16(o, (unsigned long)s[i].frames[f]);
		}
		mk__out_str(o, "\n");
	}
	mk__out_str(o, "\nMAPPED_LIBRARIES:\n");
	mk__out_copy_file(o, "/proc/self/maps");
	int r = mk__out_close(o);
	int e = errno;
	mk__scratch_free(o, sizeof *o);
	mk__scratch_free(s, bytes);
	errno = e;
	return r;
}

#define LEAK_LINES 20

void mk__prof_leak_report(int fd)
{
	size_t n, bytes;
	prof_site *s = snapshot(&n, &bytes);
	if (!s)
		return;
	/* The LEAK_LINES sites holding the most estimated bytes, by selection (n is small). */
	size_t top[LEAK_LINES], ntop = 0;
	uint64_t total = 0, blocks = 0, samples = 0;
	for (size_t i = 0; i < n; i++) {
		if (!s[i].live_count)
			continue;
		double w = mk__prof_weight(s[i].size);
		total += (uint64_t)(w * (double)(s[i].live_count * s[i].size));
		blocks += (uint64_t)(w * (double)s[i].live_count + 0.5);
		samples += s[i].live_count;
		size_t j = ntop < LEAK_LINES ? ntop++ : LEAK_LINES;
		if (j == LEAK_LINES) {
			if (s[i].live_count * s[i].size * w <= s[top[j - 1]].live_count * s[top[j - 1]].size *
			                                       mk__prof_weight(s[top[j - 1]].size))
				continue;
			j--;
		}
		for (; j > 0 && s[top[j - 1]].live_count * s[top[j - 1]].size * mk__prof_weight(s[top[j - 1]].size) <
		               s[i].live_count * s[i].size * w; j--)
			top[j] = top[j - 1];
		top[j] = i;
	}
	mk_out *o = mk__scratch(sizeof *o);
	if (!o) {
		mk__scratch_free(s, bytes);
		return;
	}
	mk__out_fd(o, fd);
	mk__out_printf(o, "memkit: leak report (pid %ld): %lu sampled blocks still live, about %lu bytes in %lu "
	               "blocks (1 sample per %ld bytes; %ld allocations by the unwinder after its warm-up)\n",
	               (long)getpid(), (unsigned long)samples, (unsigned long)total, (unsigned long)blocks,
	               mk__prof_opt.rate, atomic_load(&mk__prof_capture_allocs));
	/* The frames named, at most 8 of each of the top sites. */
	uintptr_t pcs[LEAK_LINES * 8];
	size_t npcs = 0;
	for (size_t t = 0; t < ntop; t++)
		for (unsigned f = 0; f < s[top[t]].nframes && f < 8; f++)
			pcs[npcs++] = s[top[t]].frames[f];
	sort_addresses(pcs, npcs);
	names nm;
	bool named = names_of(pcs, &npcs, &nm);
	for (size_t t = 0; t < ntop; t++) {
		const prof_site *x = &s[top[t]];
		double w = mk__prof_weight(x->size);
		mk__out_printf(o, "memkit:   %lu bytes in %lu blocks of %u (%lu samples) at",
		               (unsigned long)(w * (double)(x->live_count * x->size)),
		               (unsigned long)(w * (double)x->live_count + 0.5), x->size, (unsigned long)x->live_count);
		for (unsigned f = 0; f < x->nframes && f < 8; f++) {
			size_t a = 0, b = npcs;   /* the frame's place among the sorted names */
			while (a < b) {
				size_t m = (a + b) / 2;
				if (pcs[m] < x->frames[f])
					a = m + 1;
				else
					b = m;
			}
			if (named)
				mk__out_printf(o, "%s %s", f ? " <" : "", nm.name[a]);
			else
				mk__out_printf(o, "%s 0x%lx", f ? " <" : "", (unsigned long)x->frames[f]);
		}
		if (!x->nframes)
			mk__out_str(o, " (no stack)");
		mk__out_str(o, "\n");
	}
	mk__out_flush(o);
	if (named)
		names_free(&nm);
	mk__scratch_free(o, sizeof *o);
	mk__scratch_free(s, bytes);
}
