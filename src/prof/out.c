/* See out.h.  vsnprintf with integer and string conversions does not allocate in glibc; no floating-point
 * conversion is used anywhere in the profiler's output for that reason (numbers are printed as integers,
 * fractions as integer per-mille). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "os/os.h"
#include "prof/out.h"

bool mk__out_open(mk_out *o, const char *path)
{
	o->n = 0;
	o->error = 0;
	o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	return o->fd >= 0;
}

void mk__out_fd(mk_out *o, int fd)
{
	o->n = 0;
	o->error = 0;
	o->fd = fd;
}

int mk__out_flush(mk_out *o)
{
	size_t done = 0;
	while (done < o->n && !o->error) {
		ssize_t w = write(o->fd, o->buf + done, o->n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->error = w < 0 ? errno : EIO;
		else
			done += (size_t)w;
	}
	o->n = 0;
	if (o->error) {
		errno = o->error;
		return -1;
	}
	return 0;
}

void mk__out_write(mk_out *o, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		if (o->n == sizeof o->buf)
			mk__out_flush(o);
		size_t k = sizeof o->buf - o->n < n ? sizeof o->buf - o->n : n;
		memcpy(o->buf + o->n, s, k);
		o->n += k;
		s += k;
		n -= k;
	}
}

void mk__out_str(mk_out *o, const char *s) { mk__out_write(o, s, strlen(s)); }

void mk__out_printf(mk_out *o, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	mk__out_write(o, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void mk__out_hex16(mk_out *o, unsigned long v)
{
	char t[18] = "0x";
	for (int i = 17; i >= 2; i--, v >>= 4)
		t[i] = "0123456789abcdef"[v & 15];
	mk__out_write(o, t, sizeof t);
}

void mk__out_dec(mk_out *o, unsigned long v)
{
	char t[20];
	int i = sizeof t;
	do
		t[--i] = (char)('0' + v % 10);
	while (v /= 10);
	mk__out_write(o, t + i, sizeof t - (size_t)i);
}

void mk__out_xml(mk_out *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			mk__out_str(o, "&lt;");
		else if (*s == '>')
			mk__out_str(o, "&gt;");
		else if (*s == '&')
			mk__out_str(o, "&amp;");
		else if (*s == '"')
			mk__out_str(o, "&quot;");
		else
			mk__out_write(o, s, 1);
	}
}

int mk__out_close(mk_out *o)
{
	int r = mk__out_flush(o);
	int saved = errno;
	if (o->fd > 2 && close(o->fd) != 0 && r == 0)
		return -1;
	errno = saved;
	return r;
}

bool mk__out_copy_file(mk_out *o, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[4096];
	ssize_t r;
	while ((r = read(fd, buf, sizeof buf)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		mk__out_write(o, buf, (size_t)r);
	}
	close(fd);
	return r == 0;
}

void *mk__scratch(size_t size) { return mk__os_map(size); }
void mk__scratch_free(void *p, size_t size)
{
	if (p)
		mk__os_unmap(p, size);
}
