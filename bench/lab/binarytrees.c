/* binary-trees (the Computer Language Benchmarks Game workload) over the lab allocator interface.
 *
 *   binarytrees-vN [max_depth]      (default 16; built once per LAB_VERSION)
 *
 * Builds a stretch tree of depth max+1 and frees it, keeps one long-lived tree of depth max, then for
 * depths 4, 6, ..., max builds, checks and frees 2^(max - depth + 4) trees.  "check" is the node count
 * of each tree; a tree of depth d has 2^(d+1) - 1 nodes, so a wrong count means the allocator handed out
 * overlapping memory.  Exit status: 0 ok, 1 wrong check, 2 out of memory or bad arguments. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "my_memory_allocator.h"

/* Two pointers: 16 bytes, so version 3's 32-byte cells serve it. */
struct node {
	struct node *left, *right;
};

static struct node *make(int depth)
{
	struct node *n = my_malloc(sizeof *n);
	if (!n) {
		fprintf(stderr, "binarytrees: my_malloc failed: %s\n", strerror(errno));
		exit(2);
	}
	if (depth > 0) {
		n->left = make(depth - 1);
		n->right = make(depth - 1);
	} else {
		n->left = n->right = NULL;
	}
	return n;
}

static long check(const struct node *n)
{
	return 1 + (n->left ? check(n->left) + check(n->right) : 0);
}

static void release(struct node *n)
{
	if (n->left) {
		release(n->left);
		release(n->right);
	}
	my_free(n);
}

static int wrong;

static void expect(long got, long want, const char *what, int depth)
{
	if (got != want) {
		fprintf(stderr, "binarytrees: %s of depth %d: check %ld, expected %ld\n", what, depth, got, want);
		wrong = 1;
	}
}

int main(int argc, char **argv)
{
	enum { MIN_DEPTH = 4 };
	int max = argc > 1 ? atoi(argv[1]) : 16;
	if (max < MIN_DEPTH + 2)
		max = MIN_DEPTH + 2;
	if (max > 28) {
		fprintf(stderr, "binarytrees: depth %d too large\n", max);
		return 2;
	}
	init_mem_pool();

	struct node *stretch = make(max + 1);
	long c = check(stretch);
	printf("stretch tree of depth %d\t check: %ld\n", max + 1, c);
	expect(c, (2l << (max + 1)) - 1, "stretch tree", max + 1);
	release(stretch);

	struct node *long_lived = make(max);
	for (int d = MIN_DEPTH; d <= max; d += 2) {
		long iterations = 1l << (max - d + MIN_DEPTH), sum = 0;
		for (long i = 0; i < iterations; i++) {
			struct node *t = make(d);
			sum += check(t);
			release(t);
		}
		printf("%ld\t trees of depth %d\t check: %ld\n", iterations, d, sum);
		expect(sum, iterations * ((2l << d) - 1), "trees", d);
	}
	c = check(long_lived);
	printf("long lived tree of depth %d\t check: %ld\n", max, c);
	expect(c, (2l << max) - 1, "long lived tree", max);
	release(long_lived);
	if (my_check() != 0)
		wrong = 1;
	return wrong;
}
