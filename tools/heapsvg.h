/* heapsvg: the drawing module shared by every picture of a heap.  It lives in the library
 * (src/prof/svg.c, with the heap maps); tools and tests that draw the classic allocators link
 * build/obj/src/prof/svg.o, out.o and src/os/os.o (mk/classic.mk: HEAPSVG_OBJ). */
#ifndef TOOLS_HEAPSVG_H
#define TOOLS_HEAPSVG_H
#include "../src/prof/svg.h"
#endif
