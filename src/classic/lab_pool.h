/* Pool size shared by the lab's pool-based versions (2 and 3).  The seed suggests 100K pages (400 MB of
 * address space; untouched pages cost no memory).  Tests build with a small -DLAB_POOL_BYTES to make the
 * pools run out quickly. */
#ifndef CLASSIC_LAB_POOL_H
#define CLASSIC_LAB_POOL_H

#ifndef LAB_POOL_BYTES
#define LAB_POOL_BYTES (100000ul * 4096ul)
#endif

#endif
