/* Lab version 3: fixed-size 32-byte cells on a free list.
 *
 * Each pool is one mapping:
 *
 *   | struct pool | used bitmap (1 bit per cell) | cell 0 | cell 1 | ... | cell carved-1 | untouched ... |
 *
 * A free cell holds the `Cell.ptr` link to the next free cell; an allocated cell holds up to 32 user bytes.
 * my_malloc pops the list head; my_free pushes the cell back.  When the list is empty the next cell is
 * carved from the newest pool (`carved` counts them), and when that pool is used up another is mapped.
 *
 * Invariants:
 *  - every cell on the free list lies in some pool, below that pool's `carved` mark, at a multiple of 32
 *    from the pool's first cell, and has its bitmap bit clear; every other carved cell has its bit set;
 *  - the list has no cycle (its length never exceeds the number of carved cells);
 *  - only the newest pool (`pools`) has uncarved cells.
 * The seed links every cell of the pool in init_mem_pool.  Carving on demand gives the same list order
 * (first to last) without touching all 400 MB of the pool up front, which would make every run pay the
 * whole pool in time and resident memory.
 * The bitmap costs 1/257 of the pool and makes every bad my_free (foreign pointer, interior pointer,
 * double free) an abort instead of a corrupted list. */
#include "my_memory_allocator.h"

#if LAB_VERSION == 3
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "classic/lab_abort.h"
#include "classic/lab_pool.h"
#include "os/os.h"

typedef union Cell {
	uint8_t bytes[LAB_CELL_SIZE];
	union Cell *ptr;
} Cell;

struct pool {
	struct pool *older;
	Cell *cells;       /* first cell */
	size_t ncells;     /* cells that fit in the mapping */
	size_t carved;     /* cells handed out at least once: cells[0 .. carved) */
	uint64_t used[];   /* bitmap, then the cells */
};

static struct pool *pools;
static Cell *free_list;

static struct pool *new_pool(void)
{
	size_t size = LAB_POOL_BYTES;
	struct pool *p = mk__os_map(size);
	if (!p)
		return NULL;
	/* 8 bits of bitmap + 256 bits of cell per cell, rounded down; the cells start 32-byte aligned. */
	size_t n = (size - sizeof(struct pool)) * 8 / (8 * sizeof(Cell) + 1);
	size_t off = sizeof(struct pool) + (n + 63) / 64 * 8;
	off = (off + sizeof(Cell) - 1) & ~(sizeof(Cell) - 1);
	p->cells = (Cell *)((char *)p + off);
	p->ncells = (size - off) / sizeof(Cell);
	p->carved = 0;
	p->older = pools;
	pools = p;
	return p;
}

void init_mem_pool(void)
{
	if (!pools)
		new_pool();
}

static struct pool *pool_of(const void *ptr)
{
	for (struct pool *p = pools; p; p = p->older)
		if ((const char *)ptr >= (const char *)p->cells && (const char *)ptr < (const char *)(p->cells + p->ncells))
			return p;
	return NULL;
}

static void mark(struct pool *p, size_t i, int used)
{
	uint64_t bit = 1ull << (i % 64);
	p->used[i / 64] = used ? p->used[i / 64] | bit : p->used[i / 64] & ~bit;
}

static int is_used(const struct pool *p, size_t i) { return (p->used[i / 64] >> (i % 64)) & 1; }

__attribute__((noinline)) static Cell *carve(void)
{
	struct pool *p = pools;
	if ((!p || p->carved == p->ncells) && !(p = new_pool()))
		return NULL; /* errno = ENOMEM from the OS layer */
	return &p->cells[p->carved++];
}

void *my_malloc(int num_bytes)
{
	if (num_bytes < 0 || num_bytes > LAB_CELL_SIZE) {
		errno = num_bytes < 0 ? EINVAL : ENOMEM;
		return NULL;
	}
	Cell *c = free_list;
	if (c)
		free_list = c->ptr;
	else if (!(c = carve()))
		return NULL;
	struct pool *p = pool_of(c);
	mark(p, (size_t)(c - p->cells), 1);
	return c;
}

void my_free(void *ptr)
{
	if (!ptr)
		return;
	struct pool *p = pool_of(ptr);
	if (!p)
		lab_abort("pointer not from my_malloc", ptr);
	size_t off = (size_t)((char *)ptr - (char *)p->cells);
	if (off % sizeof(Cell) || off / sizeof(Cell) >= p->carved)
		lab_abort("not the start of a cell", ptr);
	size_t i = off / sizeof(Cell);
	if (!is_used(p, i))
		lab_abort("double free", ptr);
	mark(p, i, 0);
	Cell *c = ptr;
	c->ptr = free_list;
	free_list = c;
}

int my_check(void)
{
	int bad = 0;
	size_t carved = 0, used = 0, listed = 0;
	for (struct pool *p = pools; p; p = p->older) {
		if (p->carved > p->ncells || (p != pools && p->carved != p->ncells))
			bad++, fprintf(stderr, "cells: pool %p carved %zu of %zu\n", (void *)p, p->carved, p->ncells);
		carved += p->carved;
		for (size_t i = 0; i < p->carved; i++)
			used += is_used(p, i);
		for (size_t i = p->carved; i < p->ncells; i++)
			if (is_used(p, i))
				bad++, fprintf(stderr, "cells: uncarved cell %zu of pool %p marked used\n", i, (void *)p);
	}
	for (Cell *c = free_list; c; c = c->ptr) {
		if (++listed > carved) {
			fprintf(stderr, "cells: free list longer than the carved cells (cycle?)\n");
			return bad + 1;
		}
		struct pool *p = pool_of(c);
		size_t off = p ? (size_t)((char *)c - (char *)p->cells) : 0;
		if (!p || off % sizeof(Cell) || off / sizeof(Cell) >= p->carved) {
			fprintf(stderr, "cells: free list entry %p is not a carved cell\n", (void *)c);
			return bad + 1;
		}
		if (is_used(p, off / sizeof(Cell)))
			bad++, fprintf(stderr, "cells: free cell %p marked used\n", (void *)c);
	}
	if (listed != carved - used)
		bad++, fprintf(stderr, "cells: %zu cells on the free list, %zu carved cells unused\n", listed, carved - used);
	return bad;
}

#endif
