/* Statistics: the slow paths' counters, the snapshot that merges them with the per-heap counters and what
 * is derived from the allocator's state, and everything written from a snapshot (the text and JSON
 * reports, mk_stats_get, malloc_info's XML, the table of docs/stats.md); all from the lists of
 * stats_list.h.  The report at exit (MEMKIT_STATS, MEMKIT_STATS_FILE) is here too.
 *
 * Nothing here allocates: reports are formatted on the stack and written with write(2) (malloc_info alone
 * writes to the caller's FILE, after the snapshot, with no lock of ours held). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/stats.h"
#include "memkit.h"
#include "os/os.h"

/* ---- the slow paths' counters ---- */

#define FIELD_G(field) _Atomic uint64_t field;
#define FIELD_O(field)
#define FIELD_H(field)
#define FIELD_D(field)
#define GLOBAL_FIELD(src, field, ...) FIELD_##src(field)
static struct { MK_STATS_LIST(GLOBAL_FIELD) } g;
static struct { MK_CLASS_STATS_LIST(GLOBAL_FIELD) } gc[MK_NCLASSES];
/* Source H counted by a thread that has no heap (it only frees): shared, so atomic. */
mk_heap_stats mk__heapless_stats;   /* what threads with no heap count (remote frees) */
/* What the peaks are peaks of. */
static _Atomic uint64_t held, small_span_bytes, large_bytes, huge_bytes, segments;

#define ADD(x, n) atomic_fetch_add_explicit(&(x), (uint64_t)(n), memory_order_relaxed)
#define SUB(x, n) atomic_fetch_sub_explicit(&(x), (uint64_t)(n), memory_order_relaxed)

/* For counters that only one lock's holder writes (mk__stat_span's, under the segment lock): a load and
 * a store, without the locked read-modify-write, which waits for the stores before it (the segment
 * headers' cache misses) to complete.  Readers still load them atomically. */
#define LOCKED_ADD(x, n) atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + (uint64_t)(n), memory_order_relaxed)
#define LOCKED_SUB(x, n) atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) - (uint64_t)(n), memory_order_relaxed)

static void locked_gauge_add(_Atomic uint64_t *gauge, _Atomic uint64_t *peak, uint64_t n)
{
	uint64_t now = atomic_load_explicit(gauge, memory_order_relaxed) + n;
	atomic_store_explicit(gauge, now, memory_order_relaxed);
	if (now > atomic_load_explicit(peak, memory_order_relaxed))
		atomic_store_explicit(peak, now, memory_order_relaxed);
}

/* gauge += n, and peak follows it up. */
static void gauge_add(_Atomic uint64_t *gauge, _Atomic uint64_t *peak, uint64_t n)
{
	uint64_t now = atomic_fetch_add_explicit(gauge, n, memory_order_relaxed) + n;
	uint64_t p = atomic_load_explicit(peak, memory_order_relaxed);
	while (now > p && !atomic_compare_exchange_weak_explicit(peak, &p, now, memory_order_relaxed, memory_order_relaxed))
		;
}

void mk__stat_span(const mk_span *s, int n)
{
	if (!s)
		return;
	uint64_t bytes = (uint64_t)s->slices * MK_SLICE_SIZE;
	bool large = s->cls == MK_LARGE_CLS;
	/* held is shared with the huge blocks (under their own lock): a real read-modify-write; the rest is
	 * written under the segment lock alone. */
	if (n < 0) {
		SUB(held, bytes);
		if (large)
			LOCKED_SUB(large_bytes, bytes);
		else
			LOCKED_SUB(small_span_bytes, bytes);
		return;
	}
	gauge_add(&held, &g.bytes_held_peak, bytes);
	if (large) {
		LOCKED_ADD(g.large_allocs, 1);
		LOCKED_ADD(g.large_bytes_total, bytes);
		locked_gauge_add(&large_bytes, &g.large_bytes_peak, bytes);
	} else {
		LOCKED_ADD(g.small_spans_made, 1);
		LOCKED_ADD(gc[s->cls].spans_made, 1);
		locked_gauge_add(&small_span_bytes, &g.small_span_bytes_peak, bytes);
	}
}

void mk__stat_segment(int n)
{
	if (n < 0) {
		ADD(g.segments_unmapped, 1);
		SUB(segments, 1);
	} else {
		ADD(g.segments_mapped, 1);
		gauge_add(&segments, &g.segments_peak, 1);
	}
}

void mk__stat_huge(size_t bytes, int n)
{
	if (n < 0) {
		SUB(held, bytes);
		SUB(huge_bytes, bytes);
		return;
	}
	ADD(g.huge_allocs, 1);
	ADD(g.huge_bytes_total, bytes);
	gauge_add(&held, &g.bytes_held_peak, bytes);
	gauge_add(&huge_bytes, &g.huge_bytes_peak, bytes);
}

void mk__stat_huge_realloc(size_t old_bytes, size_t new_bytes)
{
	ADD(g.huge_reallocs, 1);
	mk__stat_huge(old_bytes, -1);
	gauge_add(&held, &g.bytes_held_peak, new_bytes);
	gauge_add(&huge_bytes, &g.huge_bytes_peak, new_bytes);
}

void mk__stat_heap(int adopted)
{
	if (adopted)
		ADD(g.heaps_adopted, 1);
	else
		ADD(g.heaps_created, 1);
}

/* ---- the snapshot ---- */

static uint64_t start_ms;

static uint64_t precise_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
/* Sums the counters of source H (the others expand to nothing). */
#define SUM_FIELD(src, field, ...) SUM_##src(field)
#define SUM_H(field) s->field += LOAD(h->field);
#define SUM_G(field)
#define SUM_O(field)
#define SUM_D(field)

static void add_heap_stats(mk_stats_snapshot *s, const mk_heap_stats *h)
{
	MK_STATS_LIST(SUM_FIELD)
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		mk_class_snapshot *sc = &s->cls[c];
		const __typeof__(h->cls[0]) *hc = &h->cls[c];
#define SUM_CLASS(src, field, ...) SUM_CLASS_##src(field)
#define SUM_CLASS_H(field) sc->field += LOAD(hc->field);
#define SUM_CLASS_G(field)
#define SUM_CLASS_D(field)
		MK_CLASS_STATS_LIST(SUM_CLASS)
	}
}

static void visit_heap(const mk_heap *h, void *arg) { add_heap_stats(arg, &h->stats); }

/* A span in use: live blocks are its `used` less the pin of its class's current span. */
static void visit_span(const mk_span *sp, void *arg)
{
	mk_stats_snapshot *s = arg;
	if (sp->cls == MK_LARGE_CLS) {
		if (LOAD(sp->used)) {   /* 0: freed, waiting in its thread's cache (large.c) */
			s->large_blocks++;
			s->large_bytes += sp->block_size;
		}
		return;
	}
	mk_class_snapshot *c = &s->cls[sp->cls];
	uint64_t used = LOAD(sp->used);
	mk_heap *h = (mk_heap *)((uintptr_t)LOAD(sp->heap) & ~(uintptr_t)1);
	if (h && used && LOAD(h->current[sp->cls]) == sp)
		used--;
	c->spans++;
	c->capacity += sp->capacity;
	c->live += used;
	s->small_span_bytes += (uint64_t)sp->slices * MK_SLICE_SIZE;
}

/* /proc/self/statm's second field (resident pages), read without stdio. */
static uint64_t resident_bytes(void)
{
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[128];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long long size, resident;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void mk__stats_snapshot(mk_stats_snapshot *s)
{
	mk__init();   /* the class table, for the sizes */
	int saved = errno;
	memset(s, 0, sizeof *s);
	s->pid = (long)getpid();
#define COPY_G(src, field, ...) COPY_G_##src(field)
#define COPY_G_G(field) s->field = atomic_load_explicit(&g.field, memory_order_relaxed);
#define COPY_G_O(field)
#define COPY_G_H(field)
#define COPY_G_D(field)
	MK_STATS_LIST(COPY_G)
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		mk_class_snapshot *sc = &s->cls[c];
#define COPY_CLASS_G(src, field, ...) COPY_CLASS_G_##src(field)
#define COPY_CLASS_G_G(field) sc->field = atomic_load_explicit(&gc[c].field, memory_order_relaxed);
#define COPY_CLASS_G_H(field)
#define COPY_CLASS_G_D(field)
		MK_CLASS_STATS_LIST(COPY_CLASS_G)
	}
	add_heap_stats(s, &mk__heapless_stats);
	mk__heaps_walk(visit_heap, s);

	mk_os_counts os;
	mk__os_counts(&os);
	s->os_mmap = os.mmap;
	s->os_munmap = os.munmap;
	s->os_madvise = os.madvise;
	s->os_mremap = os.mremap;
	s->os_mprotect = os.mprotect;
	s->os_mincore = os.mincore;
	s->purges = os.purges;
	s->purged_bytes = os.purged_bytes;

	mk__segments_walk(visit_span, s);
	size_t mapped, in_use, dirty, nseg, hn, hbytes, hcached, parked;
	mk__segments_info(&mapped, &in_use, &dirty, &nseg);
	mk__huge_info(&hn, &hbytes, &hcached);
	s->segments = nseg;
	s->segment_bytes = mapped;
	s->free_unpurged = dirty;
	s->huge_blocks = hn;
	s->huge_bytes = hbytes;
	s->huge_cached_bytes = hcached;
	s->heaps = mk__heaps_count(&parked);
	s->heaps_parked = parked;
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		mk_class_snapshot *sc = &s->cls[c];
		uint64_t size = mk__classes[c].size, span_bytes = (uint64_t)mk__classes[c].span_slices * MK_SLICE_SIZE;
		s->small_refills += sc->refills;
		s->small_blocks += sc->live;
		s->small_bytes += sc->live * size;
		s->small_spans += sc->spans;
		sc->util_permille = sc->spans ? sc->live * size * 1000 / (sc->spans * span_bytes) : 0;
	}
	s->bytes_current = s->small_bytes + s->large_bytes + s->huge_bytes;
	s->blocks_current = s->small_blocks + s->large_blocks + s->huge_blocks;
	s->bytes_held = s->small_span_bytes + s->large_bytes + s->huge_bytes;

	s->elapsed_ms = precise_ms() - start_ms;
	s->rss = resident_bytes();
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		s->rss_peak = (uint64_t)ru.ru_maxrss * 1024;
		s->minor_faults = (uint64_t)ru.ru_minflt;
		s->major_faults = (uint64_t)ru.ru_majflt;
	}
	errno = saved;
}

/* ---- reports ---- */

typedef void write_fn(void *opaque, const char *text);

static void emit(write_fn *cb, void *opaque, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void emit(write_fn *cb, void *opaque, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	cb(opaque, buf);
}

/* A class is shown when it was ever used. */
static bool class_shown(const mk_class_snapshot *c) { return c->refills || c->spans_made || c->spans; }

static void report_text(const mk_stats_snapshot *s, write_fn *cb, void *opaque)
{
	long pid = s->pid;
	emit(cb, opaque, "memkit[%ld]: statistics (memkit %d.%d.%d; names as in mk_stats_get and docs/stats.md)\n", pid,
	     MEMKIT_VERSION_MAJOR, MEMKIT_VERSION_MINOR, MEMKIT_VERSION_PATCH);
#define TEXT_LINE(src, field, name, unit, help) \
	emit(cb, opaque, "memkit[%ld]: %-22s %16llu %s\n", pid, name, (unsigned long long)s->field, unit);
	MK_STATS_LIST(TEXT_LINE)
	char line[256];
	int n = snprintf(line, sizeof line, "memkit[%ld]: %-10s", pid, "class.size");
#define CLASS_HEAD(src, field, name, help) n += snprintf(line + n, sizeof line - (size_t)n, " %13s", name);
	MK_CLASS_STATS_LIST(CLASS_HEAD)
	emit(cb, opaque, "%s\n", line);
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		const mk_class_snapshot *sc = &s->cls[c];
		if (!class_shown(sc))
			continue;
		n = snprintf(line, sizeof line, "memkit[%ld]: %-10u", pid, mk__classes[c].size);
#define CLASS_CELL(src, field, name, help) \
	n += snprintf(line + n, sizeof line - (size_t)n, " %13llu", (unsigned long long)sc->field);
		MK_CLASS_STATS_LIST(CLASS_CELL)
		emit(cb, opaque, "%s\n", line);
	}
}

/* One line: {"memkit":{"pid":..,"version":"..","stats":{"name":value,...},"classes":[{"size":..,...},...]}} */
static void report_json(const mk_stats_snapshot *s, write_fn *cb, void *opaque)
{
	emit(cb, opaque, "{\"memkit\":{\"pid\":%ld,\"version\":\"%d.%d.%d\",\"stats\":{", s->pid, MEMKIT_VERSION_MAJOR,
	     MEMKIT_VERSION_MINOR, MEMKIT_VERSION_PATCH);
	const char *sep = "";
#define JSON_FIELD(src, field, name, unit, help) \
	emit(cb, opaque, "%s\"%s\":%llu", sep, name, (unsigned long long)s->field); \
	sep = ",";
	MK_STATS_LIST(JSON_FIELD)
	emit(cb, opaque, "},\"classes\":[");
	sep = "";
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		const mk_class_snapshot *sc = &s->cls[c];
		if (!class_shown(sc))
			continue;
		emit(cb, opaque, "%s{\"size\":%u", sep, mk__classes[c].size);
#define JSON_CLASS(src, field, name, help) emit(cb, opaque, ",\"%s\":%llu", name, (unsigned long long)sc->field);
		MK_CLASS_STATS_LIST(JSON_CLASS)
		emit(cb, opaque, "}");
		sep = ",";
	}
	emit(cb, opaque, "]}}\n");
}

/* Reports for a file descriptor: lines gathered in a buffer, written whole (a line is never split between
 * two processes writing the same file). */
typedef struct fd_out {
	int fd;
	size_t n;
	char buf[4096];
} fd_out;

static void fd_flush(fd_out *o)
{
	for (size_t done = 0; done < o->n;) {
		ssize_t w = write(o->fd, o->buf + done, o->n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	o->n = 0;
}

static void fd_write(void *opaque, const char *text)
{
	fd_out *o = opaque;
	size_t len = strlen(text);
	if (o->n + len > sizeof o->buf)
		fd_flush(o);
	if (len > sizeof o->buf) {
		o->n = 0;
		return;
	}
	memcpy(o->buf + o->n, text, len);
	o->n += len;
	if (len && text[len - 1] == '\n' && o->n > sizeof o->buf / 2)
		fd_flush(o);
}

/* stderr as it was at start: coreutils (and others) close fd 2 at exit, before our report.  The copy is
 * used only while it is still the same file as at start (a program may have closed it and opened
 * something else under the number). */
static int err_copy = -1;
static dev_t err_dev;
static ino_t err_ino;
/* What mk__stats_init found: 0 nothing looked at (statistics off, or to a file), 1 stderr recorded,
 * 2 no stderr at start (fd 2 closed: the program's first open then gets 2, and a report there would go
 * into the program's own file). */
static int err_known;

static bool is_err(int fd)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == err_dev && st.st_ino == err_ino;
}

/* -1: no stderr of the program's start to write to. */
static int stderr_fd(void)
{
	if (err_known == 2)
		return -1;
	if (err_known == 0)
		return 2;
	if (is_err(err_copy))
		return err_copy;
	return is_err(2) ? 2 : -1;
}

static void print_snapshot(const mk_stats_snapshot *s, int fd, bool json)
{
	if (fd < 0)
		return;
	fd_out o = { .fd = fd, .n = 0 };
	if (json)
		report_json(s, fd_write, &o);
	else
		report_text(s, fd_write, &o);
	fd_flush(&o);
}

void mk__engine_stats_print(void)
{
	mk_stats_snapshot s;
	mk__stats_snapshot(&s);
	print_snapshot(&s, stderr_fd(), false);
}

void mk__stats_init(void)
{
	start_ms = precise_ms();
	if (mk__opt.stats && !*mk__opt.stats_file) {
		struct stat st;
		int saved = errno;
		/* High, out of the way of programs that use low numbers by number; not inherited by exec. */
		int fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
		if (fd >= 0 && fstat(fd, &st) == 0) {
			err_copy = fd;
			err_dev = st.st_dev;
			err_ino = st.st_ino;
			err_known = 1;
		} else if (fd >= 0) {
			close(fd);
		} else if (errno == EBADF) {
			err_known = 2;
		} else if (fstat(2, &st) == 0) {   /* no fd to spare (EMFILE): fd 2 itself, while it is the same */
			err_dev = st.st_dev;
			err_ino = st.st_ino;
			err_known = 1;
		}
		errno = saved;
	}
}

/* MEMKIT_STATS_FILE with %p replaced by the pid (and %% by %); false when it does not fit. */
static bool expand_path(const char *pattern, char *out, size_t cap)
{
	size_t n = 0;
	for (const char *p = pattern; *p; p++) {
		char num[24];
		const char *add = num;
		if (p[0] == '%' && p[1] == 'p') {
			snprintf(num, sizeof num, "%ld", (long)getpid());
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			num[0] = '%', num[1] = 0;
			p++;
		} else {
			num[0] = *p, num[1] = 0;
		}
		size_t len = strlen(add);
		if (n + len >= cap)
			return false;
		memcpy(out + n, add, len);
		n += len;
	}
	out[n] = 0;
	return true;
}

void mk__stats_at_exit(void)
{
	int saved = errno;
	mk_stats_snapshot s;
	mk__stats_snapshot(&s);
	int fd = -1;
	if (*mk__opt.stats_file) {
		char path[PATH_MAX];
		if (!expand_path(mk__opt.stats_file, path, sizeof path))
			mk__message("memkit[%ld]: MEMKIT_STATS_FILE=%s: name too long; statistics on stderr\n", s.pid,
			            mk__opt.stats_file);
		else if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
			mk__message("memkit[%ld]: MEMKIT_STATS_FILE=%s: cannot open %s: %m; statistics on stderr\n", s.pid,
			            mk__opt.stats_file, path);
	}
	print_snapshot(&s, fd >= 0 ? fd : stderr_fd(), mk__opt.stats == MK_STATS_JSON);
	if (fd >= 0)
		close(fd);
	errno = saved;
}

/* MEMKIT_STATS: the report at exit.  A destructor rather than atexit(), which may allocate. */
__attribute__((destructor)) static void report_at_exit(void)
{
	if (mk__opt.stats)
		mk__stats_at_exit();
}

/* ---- the public functions ---- */

typedef struct cb_out {
	void (*cb)(void *, const char *);
	void *opaque;
} cb_out;

void mk__engine_stats_print_to(void (*write_cb)(void *opaque, const char *text), void *opaque, const char *options)
{
	mk_stats_snapshot s;
	mk__stats_snapshot(&s);
	bool json = options && strstr(options, "json");
	if (!write_cb) {
		print_snapshot(&s, stderr_fd(), json);
		return;
	}
	if (json)
		report_json(&s, write_cb, opaque);
	else
		report_text(&s, write_cb, opaque);
}

/* "class.SIZE.field": the class of that block size. */
static int class_lookup(const mk_stats_snapshot *s, const char *name, uint64_t *value)
{
	char *end;
	unsigned long size = strtoul(name + 6, &end, 10);
	if (end == name + 6 || *end != '.')
		return -1;
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		if (mk__classes[c].size != size)
			continue;
		const mk_class_snapshot *sc = &s->cls[c];
#define CLASS_GET(src, field, fname, help) \
	if (strcmp(end + 1, fname) == 0) {     \
		*value = sc->field;                \
		return 0;                          \
	}
		MK_CLASS_STATS_LIST(CLASS_GET)
	}
	return -1;
}

int mk__engine_stats_get(const char *name, uint64_t *value)
{
	if (!name || !value) {
		errno = EINVAL;
		return -1;
	}
	mk_stats_snapshot s;
	mk__stats_snapshot(&s);
#define GET(src, field, fname, unit, help) \
	if (strcmp(name, fname) == 0) {        \
		*value = s.field;                  \
		return 0;                          \
	}
	MK_STATS_LIST(GET)
	if (strncmp(name, "class.", 6) == 0 && class_lookup(&s, name, value) == 0)
		return 0;
	errno = ENOENT;
	return -1;
}

/* glibc's XML (its manual's malloc_info), with memkit's figures: one heap, whose sizes are the size
 * classes' free blocks (in spans in use, carved or not), then the free slices of the segments; mmap'ed
 * blocks are the huge ones. */
int mk__engine_malloc_info(int options, FILE *fp)
{
	if (options != 0 || !fp) {
		errno = EINVAL;
		return -1;
	}
	mk_stats_snapshot s;
	mk__stats_snapshot(&s);
	uint64_t free_blocks = 0, free_bytes = 0, prev = 0;
	fprintf(fp, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
	for (unsigned c = 0; c < MK_NCLASSES; c++) {
		uint64_t size = mk__classes[c].size, n = s.cls[c].capacity - s.cls[c].live;
		if (s.cls[c].spans)
			fprintf(fp, "  <size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n",
			        (unsigned long long)prev + 1, (unsigned long long)size, (unsigned long long)(n * size),
			        (unsigned long long)n);
		free_blocks += n;
		free_bytes += n * size;
		prev = size;
	}
	uint64_t headers = s.segments * MK_SLICE_SIZE, spans = s.small_span_bytes + s.large_bytes;
	uint64_t free_slices = s.segment_bytes > headers + spans ? s.segment_bytes - headers - spans : 0;
	fprintf(fp, "  <unsorted from=\"%zu\" to=\"%zu\" total=\"%llu\" count=\"%llu\"/>\n", MK_SLICE_SIZE,
	        MK_SEG_SIZE - MK_SLICE_SIZE, (unsigned long long)free_slices, (unsigned long long)(free_slices / MK_SLICE_SIZE));
	uint64_t rest_bytes = free_bytes + free_slices, system = s.segment_bytes;
	uint64_t system_max = s.segments_peak * MK_SEG_SIZE;
	fprintf(fp,
	        "</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
	        "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
	        "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n</heap>\n",
	        (unsigned long long)free_blocks, (unsigned long long)rest_bytes, (unsigned long long)system,
	        (unsigned long long)system_max, (unsigned long long)system, (unsigned long long)system);
	uint64_t all = system + s.huge_bytes + s.huge_cached_bytes, all_max = system_max + s.huge_bytes_peak;
	fprintf(fp,
	        "<total type=\"fast\" count=\"0\" size=\"0\"/>\n<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
	        "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>\n"
	        "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
	        "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n</malloc>\n",
	        (unsigned long long)free_blocks, (unsigned long long)(rest_bytes + s.huge_cached_bytes),
	        (unsigned long long)s.huge_blocks, (unsigned long long)s.huge_bytes, (unsigned long long)all,
	        (unsigned long long)all_max, (unsigned long long)all, (unsigned long long)all);
	return ferror(fp) ? -1 : 0;
}

/* The table of docs/stats.md, from the lists. */
void mk__stats_write_doc(void (*write_cb)(void *opaque, const char *text), void *opaque)
{
	static const char *const sources[] = { ['G'] = "slow path", ['O'] = "OS layer", ['H'] = "per heap",
	                                        ['D'] = "at report" };
	emit(write_cb, opaque, "| name | unit | counted | meaning |\n|---|---|---|---|\n");
#define DOC_LINE(src, field, name, unit, help) \
	emit(write_cb, opaque, "| `%s` | %s | %s | %s |\n", name, unit, sources[(unsigned char)#src[0]], help);
	MK_STATS_LIST(DOC_LINE)
	emit(write_cb, opaque, "\nPer size class (`class.SIZE.NAME`, SIZE the block size, e.g. `class.48.live`):\n\n"
	                       "| name | counted | meaning |\n|---|---|---|\n");
#define DOC_CLASS(src, field, name, help) \
	emit(write_cb, opaque, "| `%s` | %s | %s |\n", name, sources[(unsigned char)#src[0]], help);
	MK_CLASS_STATS_LIST(DOC_CLASS)
}
