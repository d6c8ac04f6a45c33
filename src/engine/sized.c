/* The slow side of the sized free check (sized.h): anything the inlined compare did not settle. */
#include <stdlib.h>

#include "engine/sized.h"

static const mk_bad_words words = { "free(): invalid pointer", "free(): interior pointer", "free(): double free of" };

void mk__engine_free_sized_slow(void *p, size_t n)
{
	if (p && mk__is_ours(p)) {
		mk_span *s = mk__valid_block(p, &words);   /* a bad pointer first gets free's own words */
		bool fits = s->cls == MK_LARGE_CLS ? n > MK_MEDIUM_MAX && n <= s->block_size
		                                   : n > 0 && n <= MK_MEDIUM_MAX && mk__class_of(n) == s->cls;
		if (!fits) {
			mk__message("memkit: operator delete(): wrong size %zu for %p (a block of %u bytes)\n", n, p,
			            s->block_size);
			abort();
		}
	}
	mk__engine_free(p);   /* huge, zero-size and foreign pointers: free's checks */
}

/* free_sized (C23): n is the size last asked of malloc, calloc or realloc, and realloc keeps a block in
 * place down to half its usable size and grows one to half again its old size (alloc.c), so a correct
 * program's n need not map to the block's class: any n with B / 2 <= n <= B (B the usable size) may be
 * right, and so may n of the block's own class. */
void mk__engine_free_sized_c(void *p, size_t n)
{
	if (p && mk__is_ours(p)) {
		mk_span *s = mk__valid_block(p, &words);
		size_t b = s->block_size;
		bool fits = (n <= b && n >= b / 2) ||
		            (s->cls != MK_LARGE_CLS && n > 0 && n <= MK_MEDIUM_MAX && mk__class_of(n) == s->cls);
		if (!fits) {
			mk__message("memkit: free_sized(): wrong size %zu for %p (a block of %u bytes)\n", n, p,
			            s->block_size);
			abort();
		}
	}
	mk__engine_free(p);
}
