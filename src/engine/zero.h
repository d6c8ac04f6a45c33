/* malloc(0) in a no-access area (zero.c): the calls the engine's slow paths make. */
#ifndef MK_ZERO_H
#define MK_ZERO_H

#include "engine/engine.h"

void *mk__zero_alloc(void) MK_HIDDEN;                                   /* NULL: the area is full */
bool  mk__zero_owns(const void *p) MK_HIDDEN;                           /* p lies in the area */
void  mk__zero_free(const void *p, const mk_bad_words *words) MK_HIDDEN;  /* aborts when not live */
void  mk__zero_check(const void *p, const mk_bad_words *words) MK_HIDDEN;

#endif
