/* Heap maps: the engine's heap as a picture (map.c), and the time view's samples. */
#ifndef MK_PROF_MAP_H
#define MK_PROF_MAP_H

/* Writes the heap map (and the time view, when there are samples) to path: 0, or -1 with errno. */
int  mk__map_write(const char *path);
void mk__map_write_default(void);   /* to MEMKIT_MAP, with %p replaced by the pid */
void mk__map_sample_time(void);     /* one point of the time view: RSS, live, resident free */

#endif
