/* Lab versions 0 and 4: the reference allocators behind the lab interface, so that one benchmark source
 * measures the C library (0) and the memkit engine (4) beside the lab's own versions.  Only the lab's
 * rules are added (negative sizes fail with EINVAL); both backends return a unique pointer for 0 bytes. */
#include "my_memory_allocator.h"

#if LAB_VERSION == 0 || LAB_VERSION == 4
#include <errno.h>
#include <stdlib.h>

#if LAB_VERSION == 0
#define backend_malloc malloc
#define backend_free   free
static int backend_check(void) { return 0; } /* the C library's heap is not ours to walk */
#else
#include "memkit.h"
#define backend_malloc mk_malloc
#define backend_free   mk_free
#define backend_check  mk_check
#endif

void init_mem_pool(void) {}

void *my_malloc(int num_bytes)
{
	if (num_bytes < 0) {
		errno = EINVAL;
		return NULL;
	}
	return backend_malloc((size_t)num_bytes);
}

void my_free(void *ptr) { backend_free(ptr); }

int my_check(void) { return backend_check(); }

#endif
