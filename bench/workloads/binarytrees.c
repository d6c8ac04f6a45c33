/* binary-trees: build and walk many short-lived perfect binary trees beside one long-lived tree.
 * Every node is one 16-byte malloc, so this measures the small-object fast path and little else.
 * Arguments: max depth (default 16), threads (default 1) that share the trees of each depth.
 * Self-check: every walk counts its nodes, which must be 2^(d+1) - 1. */
#include <pthread.h>
#include "wl.h"

struct node { struct node *left, *right; };

static struct node *build(int depth)
{
	struct node *n = wl_malloc(sizeof *n);
	if (depth > 0) {
		n->left = build(depth - 1);
		n->right = build(depth - 1);
	} else {
		n->left = n->right = NULL;
	}
	return n;
}

static long check(const struct node *n)
{
	return n->left ? 1 + check(n->left) + check(n->right) : 1;
}

static void release(struct node *n)
{
	if (n->left) {
		release(n->left);
		release(n->right);
	}
	free(n);
}

static long tree_count(int depth)
{
	struct node *t = build(depth);
	long c = check(t);
	release(t);
	if (c != (2L << depth) - 1)
		WL_FAIL("tree of depth %d has %ld nodes", depth, c);
	return c;
}

struct job { int depth; long iterations; long nodes; };

static void *worker(void *arg)
{
	struct job *j = arg;
	for (long i = 0; i < j->iterations; i++)
		j->nodes += tree_count(j->depth);
	return NULL;
}

int main(int argc, char **argv)
{
	int max_depth = (int)wl_arg(argc, argv, 1, 16);
	int threads = (int)wl_arg(argc, argv, 2, 1);
	if (max_depth < 6)
		max_depth = 6;
	uint64_t total = (uint64_t)tree_count(max_depth + 1);
	struct node *long_lived = build(max_depth);
	pthread_t tid[threads];
	struct job jobs[threads];
	for (int d = 4; d <= max_depth; d += 2) {
		long iterations = 1L << (max_depth - d + 4);
		for (int t = 0; t < threads; t++) {
			jobs[t] = (struct job){ d, iterations / threads + (t < iterations % threads), 0 };
			if (pthread_create(&tid[t], NULL, worker, &jobs[t]))
				WL_FAIL("pthread_create");
		}
		long nodes = 0;
		for (int t = 0; t < threads; t++) {
			pthread_join(tid[t], NULL);
			nodes += jobs[t].nodes;
		}
		if (nodes != iterations * ((2L << d) - 1))
			WL_FAIL("depth %d: %ld nodes", d, nodes);
		total += (uint64_t)nodes;
	}
	long ll = check(long_lived);
	if (ll != (2L << max_depth) - 1)
		WL_FAIL("long-lived tree has %ld nodes", ll);
	release(long_lived);
	wl_ok(total + (uint64_t)ll);
	return 0;
}
