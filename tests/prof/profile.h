/* Reading memkit's heap profiles back in tests: the symbol section and the heap lines (the same format
 * google-pprof reads), and the estimate of what a named function allocated. */
#ifndef TESTS_PROF_PROFILE_H
#define TESTS_PROF_PROFILE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROF_MAX_LINES 20000
#define PROF_MAX_SYMS 20000

struct prof_line { unsigned long live, live_bytes, alloc, alloc_bytes; int nframes; uintptr_t frames[64]; };
struct prof_sym { uintptr_t pc; char name[96]; };
struct profile {
	long rate;
	size_t nlines, nsyms;
	struct prof_line *lines;
	struct prof_sym *syms;
};

static const char *prof_symbol(const struct profile *p, uintptr_t pc)
{
	for (size_t i = 0; i < p->nsyms; i++)
		if (p->syms[i].pc == pc)
			return p->syms[i].name;
	return "?";
}

/* 0 on success. */
static int prof_read(struct profile *p, const char *path)
{
	memset(p, 0, sizeof *p);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	p->lines = calloc(PROF_MAX_LINES, sizeof *p->lines);
	p->syms = calloc(PROF_MAX_SYMS, sizeof *p->syms);
	char line[8192];
	int section = 0;   /* 0 start, 1 symbols, 2 heap, 3 maps */
	while (fgets(line, sizeof line, f)) {
		if (section == 0 && strncmp(line, "--- symbol", 10) == 0) {
			section = 1;
		} else if (section == 1 && strncmp(line, "---", 3) == 0) {
			section = 2;
		} else if (section == 1) {
			unsigned long pc;
			char name[96];
			if (sscanf(line, "0x%lx %95s", &pc, name) == 2 && p->nsyms < PROF_MAX_SYMS) {
				p->syms[p->nsyms].pc = pc;
				strcpy(p->syms[p->nsyms++].name, name);
			}
		} else if (strncmp(line, "heap profile:", 13) == 0) {
			char *r = strstr(line, "heap_v2/");
			p->rate = r ? atol(r + 8) : 0;
			section = 2;
		} else if (strncmp(line, "MAPPED_LIBRARIES:", 17) == 0) {
			section = 3;
		} else if (section == 2 && p->nlines < PROF_MAX_LINES) {
			struct prof_line *l = &p->lines[p->nlines];
			int used = 0;
			if (sscanf(line, "%lu: %lu [%lu: %lu] @%n", &l->live, &l->live_bytes, &l->alloc, &l->alloc_bytes,
			           &used) != 4)
				continue;
			char *s = line + used, *end;
			for (l->nframes = 0; l->nframes < 64; l->nframes++) {
				unsigned long pc = strtoul(s, &end, 16);
				if (end == s)
					break;
				l->frames[l->nframes] = pc;
				s = end;
			}
			p->nlines++;
		}
	}
	fclose(f);
	return p->rate > 0 ? 0 : -1;
}

static double prof_weight(double size, long rate) { return 1 / (1 - exp(-size / (double)rate)); }

static int prof_line_has(const struct profile *p, const struct prof_line *l, const char *fn)
{
	for (int i = 0; i < l->nframes; i++)
		if (strcmp(prof_symbol(p, l->frames[i]), fn) == 0)
			return 1;
	return 0;
}

/* Estimated bytes allocated (alloc = 1) or still live (alloc = 0) by stacks through function fn. */
static double prof_estimate(const struct profile *p, const char *fn, int alloc)
{
	double sum = 0;
	for (size_t i = 0; i < p->nlines; i++) {
		const struct prof_line *l = &p->lines[i];
		unsigned long c = alloc ? l->alloc : l->live, b = alloc ? l->alloc_bytes : l->live_bytes;
		if (c && prof_line_has(p, l, fn))
			sum += (double)b * prof_weight((double)b / (double)c, p->rate);
	}
	return sum;
}

/* The statistical bound of the tests: n allocations of size s are each sampled with probability
 * q = 1 - exp(-s / rate), so the estimate (samples * s / q) has standard deviation s * sqrt(n (1 - q) / q).
 * Five of them (plus one block) keeps a correct profiler failing less than once in a million runs. */
static double prof_bound(double n, double s, long rate)
{
	double q = 1 - exp(-s / (double)rate);
	return 5 * s * sqrt(n * (1 - q) / q) + s;
}

static void prof_free(struct profile *p)
{
	free(p->lines);
	free(p->syms);
}

#endif
