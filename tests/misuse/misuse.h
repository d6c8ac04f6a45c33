/* The misuse suite's common part (tests/misuse/, docs/hardening.md).
 *
 * Each program is run as `PROGRAM CASE [SIZE]` and does exactly one misuse of the allocator it runs
 * under, then goes on as a program would.  How it ends says whether the allocator caught it:
 *   - killed by a signal (an abort with the allocator's message, or a fault on no-access memory): caught;
 *   - "harmless: WHY" as its last line: the allocator made the misuse harmless (the case says what that
 *     means: a read of a freed block saw none of the old data, the next malloc did not return the block
 *     just freed, ...): caught;
 *   - "got away" as its last line: not caught.
 * Anything else (exit status 3: the case could not be set up) is an error, never a catch.  The runner
 * (misuse.py) gives each run a time limit; a run that hangs is not caught. */
#ifndef MISUSE_H
#define MISUSE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Written with write(2): an overflow may have damaged stdio's buffer, and the verdict must still get out. */
static inline void misuse_say(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(1, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}
static inline void got_away(void)
{
	misuse_say("got away\n");
	exit(0);
}
static inline void harmless(const char *why)
{
	misuse_say("harmless: ");
	misuse_say(why);
	misuse_say("\n");
	exit(0);
}
static inline void setup_failed(const char *what)
{
	misuse_say("setup failed: ");
	misuse_say(what);
	misuse_say("\n");
	exit(3);
}

/* The size argument: 8, 4096 or 262144 in the suite (any positive size works). */
static inline size_t misuse_size(int argc, char **argv)
{
	if (argc < 3)
		return 0;
	char *end;
	unsigned long n = strtoul(argv[2], &end, 10);
	if (*end != '\0' || n == 0)
		setup_failed("size");
	return (size_t)n;
}

/* The program's own data, as 8-byte words: a read that sees one of these after a free saw old data. */
#define MISUSE_OLD_WORD 0x5ec2e7da7a5ec2e7ull
static inline void fill_old(void *p, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i += 8)
		*(volatile uint64_t *)((char *)p + i) = MISUSE_OLD_WORD;
}
static inline size_t count_old(const void *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i + 8 <= n; i += 8)
		k += *(const volatile uint64_t *)((const char *)p + i) == MISUSE_OLD_WORD;
	return k;
}

/* A plain store of `len` bytes at dst, byte by byte, as a loop that runs past its bound would do. */
static inline void store_bytes(void *dst, int c, size_t len)
{
	for (size_t i = 0; i < len; i++)
		((volatile unsigned char *)dst)[i] = (unsigned char)c;
}

/* What a program does after the misuse: it goes on allocating, so a damaged free list, a check when a block
 * leaves a quarantine or a canary checked later gets its chance: 2000 frees and mallocs of `n` bytes with
 * 16 blocks live. */
static inline void keep_going(size_t n)
{
	void *live[16] = { 0 };
	for (unsigned i = 0; i < 2000; i++) {
		free(live[i % 16]);
		live[i % 16] = malloc(n);
		if (!live[i % 16])
			setup_failed("malloc while going on");
		((volatile char *)live[i % 16])[0] = 1;
	}
	for (unsigned i = 0; i < 16; i++)
		free(live[i]);
}

#ifdef __cplusplus
}
#endif
#endif
