/* mkprof: reads a memkit heap profile (the symbolised text format that google-pprof reads too) and
 * prints the top sites by live and by allocated bytes, or draws a flame graph as one self-contained SVG.
 *
 *   mkprof [--top N] PROFILE                 the N functions holding the most (default 20), both ways
 *   mkprof --flame OUT.svg [--alloc] PROFILE flame graph of live bytes (--alloc: of bytes allocated)
 *   mkprof --help                            the usage, on stdout
 * (man/mkprof.1 is the manual.)  Exit status: 0, 1 when the profile cannot be read or the SVG written,
 * 2 for a bad command line.
 *
 * Estimates are what pprof computes: a line of c samples of size s stands for c / (1 - exp(-s / rate))
 * blocks.  Stacks are merged by function name, from the outermost frame (bottom) to the allocating one. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 64

struct sym { uintptr_t pc; char *name; };
struct line { double live, alloc; int n; int names[MAX_FRAMES]; };   /* names: indices, allocating frame first */

static struct sym *syms;
static size_t nsyms, capsyms;
static char **names;            /* distinct function names */
static size_t nnames, capnames;
static struct line *lines;
static size_t nlines, caplines;
static long rate;

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	*cap = *cap ? *cap * 2 : 256;
	if (*cap < need)
		*cap = need;
	p = realloc(p, *cap * size);
	if (!p) {
		perror("mkprof");
		exit(2);
	}
	return p;
}

static int name_index(const char *s)
{
	for (size_t i = 0; i < nnames; i++)   /* profiles have hundreds of names: linear is fine */
		if (strcmp(names[i], s) == 0)
			return (int)i;
	names = grow(names, &capnames, nnames + 1, sizeof *names);
	names[nnames] = strdup(s);
	return (int)nnames++;
}

static const char *symbol(uintptr_t pc, char *buf)
{
	for (size_t i = 0; i < nsyms; i++)
		if (syms[i].pc == pc)
			return syms[i].name;
	sprintf(buf, "0x%lx", (unsigned long)pc);
	return buf;
}

static int read_profile(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return -1;
	}
	char buf[16384];
	int section = 0;
	while (fgets(buf, sizeof buf, f)) {
		if (section == 0 && strncmp(buf, "--- symbol", 10) == 0) {
			section = 1;
			continue;
		}
		if (section == 1) {
			unsigned long pc;
			char name[1024];
			if (strncmp(buf, "---", 3) == 0)
				section = 0;
			else if (sscanf(buf, "0x%lx %1023s", &pc, name) == 2) {
				syms = grow(syms, &capsyms, nsyms + 1, sizeof *syms);
				syms[nsyms++] = (struct sym){ pc, strdup(name) };
			}
			continue;
		}
		if (strncmp(buf, "heap profile:", 13) == 0) {
			char *r = strstr(buf, "_v2/");
			rate = r ? atol(r + 4) : 0;
			section = 2;
			continue;
		}
		if (strncmp(buf, "MAPPED_LIBRARIES:", 17) == 0)
			break;
		unsigned long lc, lb, ac, ab;
		int used;
		if (section != 2 || sscanf(buf, "%lu: %lu [%lu: %lu] @%n", &lc, &lb, &ac, &ab, &used) != 4)
			continue;
		lines = grow(lines, &caplines, nlines + 1, sizeof *lines);
		struct line *l = &lines[nlines++];
		double wl = lc && rate ? 1 / (1 - exp(-((double)lb / lc) / rate)) : 1;
		double wa = ac && rate ? 1 / (1 - exp(-((double)ab / ac) / rate)) : 1;
		l->live = lb * wl;
		l->alloc = ab * wa;
		l->n = 0;
		char *s = buf + used, *end, tmp[32];
		while (l->n < MAX_FRAMES) {
			uintptr_t pc = strtoul(s, &end, 16);
			if (end == s)
				break;
			l->names[l->n++] = name_index(symbol(pc, tmp));
			s = end;
		}
	}
	fclose(f);
	if (!rate) {
		fprintf(stderr, "mkprof: %s: no 'heap profile: ... @ heap_v2/RATE' line\n", path);
		return -1;
	}
	return 0;
}

static void top(int n)
{
	/* flat: bytes of stacks whose allocating frame is the function; cum: stacks through it at all */
	double *flat[2], *cum[2], total[2] = { 0, 0 };
	for (int k = 0; k < 2; k++) {
		flat[k] = calloc(nnames + 1, sizeof(double));
		cum[k] = calloc(nnames + 1, sizeof(double));
	}
	char *seen = calloc(nnames + 1, 1);
	for (size_t i = 0; i < nlines; i++) {
		const struct line *l = &lines[i];
		double v[2] = { l->live, l->alloc };
		memset(seen, 0, nnames + 1);
		for (int k = 0; k < 2; k++) {
			total[k] += v[k];
			if (l->n)
				flat[k][l->names[0]] += v[k];
		}
		for (int f = 0; f < l->n; f++)
			if (!seen[l->names[f]]) {
				seen[l->names[f]] = 1;
				for (int k = 0; k < 2; k++)
					cum[k][l->names[f]] += v[k];
			}
	}
	static const char *title[2] = { "live bytes (estimated, in use now)", "allocated bytes (estimated, since start)" };
	size_t *order = calloc(nnames + 1, sizeof *order);
	for (int k = 0; k < 2; k++) {
		printf("top %d by %s: total %.0f bytes (1 sample per %ld bytes)\n", n, title[k], total[k], rate);
		printf("%14s %6s %14s %6s  function\n", "flat bytes", "flat%", "cum bytes", "cum%");
		for (size_t i = 0; i < nnames; i++)
			order[i] = i;
		for (size_t i = 1; i < nnames; i++)   /* insertion sort by flat, then cum */
			for (size_t j = i; j > 0; j--) {
				size_t a = order[j - 1], b = order[j];
				if (flat[k][a] > flat[k][b] || (flat[k][a] == flat[k][b] && cum[k][a] >= cum[k][b]))
					break;
				order[j - 1] = b;
				order[j] = a;
			}
		for (size_t i = 0; i < nnames && (int)i < n; i++) {
			size_t x = order[i];
			if (cum[k][x] <= 0)
				break;
			printf("%14.0f %5.1f%% %14.0f %5.1f%%  %s\n", flat[k][x], total[k] ? 100 * flat[k][x] / total[k] : 0,
			       cum[k][x], total[k] ? 100 * cum[k][x] / total[k] : 0, names[x]);
		}
		printf("\n");
	}
}

/* ---- the flame graph ---- */

struct node { int name, parent, child, sibling; double value; };
static struct node *nodes;
static size_t nnodes, capnodes;

static int child_of(int parent, int name)
{
	for (int c = nodes[parent].child; c >= 0; c = nodes[c].sibling)
		if (nodes[c].name == name)
			return c;
	nodes = grow(nodes, &capnodes, nnodes + 1, sizeof *nodes);
	nodes[nnodes] = (struct node){ name, parent, -1, nodes[parent].child, 0 };
	nodes[parent].child = (int)nnodes;
	return (int)nnodes++;
}

static void xml(FILE *f, const char *s)
{
	for (; *s; s++)
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else
			fputc(*s, f);
}

enum { FW = 1200, FH = 17, FTOP = 60 };
static int max_depth;

static void depth_of(int n, int d)
{
	if (d > max_depth)
		max_depth = d;
	for (int c = nodes[n].child; c >= 0; c = nodes[c].sibling)
		depth_of(c, d + 1);
}

static void draw(FILE *f, int n, int depth, double x, double total, int height)
{
	double w = total > 0 ? nodes[n].value / total * (FW - 20) : 0;
	if (w < 0.1)
		return;
	const char *name = n == 0 ? "all" : names[nodes[n].name];
	unsigned h = 5381;
	for (const char *s = name; *s; s++)
		h = h * 33 + (unsigned char)*s;
	double y = height - 30 - (depth + 1) * FH;
	fprintf(f, "<g><title>");
	xml(f, name);
	fprintf(f, " (%.0f bytes, %.2f%%)</title><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"rgb(%u,%u,%u)\" "
	           "rx=\"2\"/>", nodes[n].value, 100 * nodes[n].value / total, 10 + x, y, w, FH - 1, 205 + h % 50,
	        80 + (h >> 8) % 130, 40 + (h >> 16) % 50);
	int chars = (int)(w / 7);
	if (chars > 3) {
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", 13 + x, y + FH - 5);
		char label[256];
		snprintf(label, sizeof label, "%s", name);
		if ((int)strlen(label) > chars)
			strcpy(label + chars - 2, "..");
		xml(f, label);
		fputs("</text>", f);
	}
	fputs("</g>\n", f);
	for (int c = nodes[n].child; c >= 0; c = nodes[c].sibling) {
		draw(f, c, depth + 1, x, total, height);
		x += total > 0 ? nodes[c].value / total * (FW - 20) : 0;
	}
}

static int flame(const char *out, int alloc, const char *path)
{
	nodes = grow(nodes, &capnodes, 1, sizeof *nodes);
	nodes[0] = (struct node){ -1, -1, -1, -1, 0 };
	nnodes = 1;
	for (size_t i = 0; i < nlines; i++) {
		double v = alloc ? lines[i].alloc : lines[i].live;
		if (v <= 0)
			continue;
		int n = 0;
		nodes[0].value += v;
		for (int f = lines[i].n - 1; f >= 0; f--) {
			n = child_of(n, lines[i].names[f]);
			nodes[n].value += v;
		}
	}
	depth_of(0, 0);
	int height = FTOP + (max_depth + 1) * FH + 40;
	FILE *f = fopen(out, "w");
	if (!f) {
		perror(out);
		return -1;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"monospace\" "
	           "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fdfdf6\"/>\n", FW, height);
	fprintf(f, "<text x=\"10\" y=\"22\" font-family=\"sans-serif\" font-size=\"16\">memkit heap profile: %s</text>\n",
	        alloc ? "bytes allocated" : "live bytes");
	fprintf(f, "<text x=\"10\" y=\"42\" font-family=\"sans-serif\" font-size=\"12\" fill=\"#555\">");
	xml(f, path);
	fprintf(f, ": %.0f bytes estimated from samples (1 per %ld bytes); width is bytes, the allocating "
	           "function on top; hover for figures</text>\n", nodes[0].value, rate);
	draw(f, 0, 0, 0, nodes[0].value, height);
	fputs("</svg>\n", f);
	return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	int n = 20, alloc = 0;
	const char *out = NULL, *path = NULL;
	static const char usage[] = "usage: mkprof [--top N] PROFILE\n       mkprof --flame OUT.svg [--alloc] PROFILE\n";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--top") == 0 && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (strcmp(argv[i], "--flame") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--alloc") == 0)
			alloc = 1;
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else
			path = NULL, i = argc;
	}
	if (!path || n <= 0) {
		fputs(usage, stderr);
		return 2;
	}
	if (read_profile(path) != 0)
		return 1;
	if (out)
		return flame(out, alloc, path) == 0 ? 0 : 1;
	top(n);
	return 0;
}
