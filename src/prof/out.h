/* Output without malloc: a buffered writer over a file descriptor (write(2) only), and scratch memory
 * from mappings of our own.  Everything the profiler and the heap maps write goes through here, so they
 * can run inside malloc's slow path, at exit, and from the dump thread, without touching the heap. */
#ifndef MK_PROF_OUT_H
#define MK_PROF_OUT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mk_out {
	int fd;
	int error;        /* errno of the first failed write, 0 if none */
	size_t n;
	char buf[8192];
} mk_out;

/* Opens path for writing (created, truncated); false with errno set on failure. */
bool mk__out_open(mk_out *o, const char *path);
void mk__out_fd(mk_out *o, int fd);
void mk__out_write(mk_out *o, const void *p, size_t n);
void mk__out_str(mk_out *o, const char *s);
void mk__out_printf(mk_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "0x" and v in 16 hex digits, and v in decimal: what profiles print thousands of times, at about a
 * sixth of vsnprintf's cost (185 instructions an address against about 1,200). */
void mk__out_hex16(mk_out *o, unsigned long v);
void mk__out_dec(mk_out *o, unsigned long v);
/* Writes s with &, < and > escaped (SVG text). */
void mk__out_xml(mk_out *o, const char *s);
/* Flushes and, for a file opened by mk__out_open, closes it: 0, or -1 with errno set. */
int  mk__out_close(mk_out *o);
int  mk__out_flush(mk_out *o);
/* Copies a whole small file (/proc/self/maps, /proc/self/statm) into o; false if it cannot be read. */
bool mk__out_copy_file(mk_out *o, const char *path);

/* Zeroed memory of at least size bytes from a mapping of its own; NULL when the system refuses. */
void *mk__scratch(size_t size);
void  mk__scratch_free(void *p, size_t size);

#endif
