/* A file-backed heap outlives its processes: one process writes a linked list (offsets, never pointers),
 * exits; a new process (a fresh exec, so a fresh address space) opens the file and reads it back intact,
 * changes it, and a third reads the change. */
#include <sys/wait.h>

#include "helpers.h"

struct node {
	mkr_off next;
	uint32_t value;
	char text[20];
};

static int write_list(const char *path, int n)
{
	mkr_heap *h = mkr_open_file(path, MKR_CREATE | MKR_EXCL, 1u << 20, 0600);
	if (!h)
		return fprintf(stderr, "  create %s: %s\n", path, mkr_last_error()), 1;
	mkr_off head = 0;
	for (int i = n - 1; i >= 0; i--) {
		struct node *nd = mkr_alloc(h, sizeof *nd);
		if (!nd)
			return 1;
		nd->next = head;
		nd->value = (uint32_t)i * 2654435761u;
		snprintf(nd->text, sizeof nd->text, "node %d", i);
		head = mkr_to_off(h, nd);
	}
	int rc = mkr_root_set(h, 0, head) || mkr_sync(h) || mkr_check(h);
	mkr_close(h);
	return rc;
}

/* Reads the list, expecting the nodes whose index is a multiple of `step`. */
static int read_list(const char *path, int n, int step)
{
	mkr_heap *h = mkr_open_file(path, 0, 0, 0);
	if (!h)
		return fprintf(stderr, "  open %s: %s\n", path, mkr_last_error()), 1;
	int i = 0, bad = mkr_check(h) != 0;
	char want[20];
	for (struct node *nd = mkr_to_ptr(h, mkr_root_get(h, 0)); nd; nd = mkr_to_ptr(h, nd->next), i += step) {
		snprintf(want, sizeof want, "node %d", i);
		if (i >= n || nd->value != (uint32_t)i * 2654435761u || strcmp(nd->text, want) != 0) {
			fprintf(stderr, "  node %d is wrong\n", i);
			bad = 1;
			break;
		}
	}
	bad |= i != (n + step - 1) / step * step;
	mkr_close(h);
	return bad;
}

/* Unlinks and frees every node at an odd position. */
static int thin_list(const char *path)
{
	mkr_heap *h = mkr_open_file(path, 0, 0, 0);
	if (!h)
		return 1;
	for (struct node *nd = mkr_to_ptr(h, mkr_root_get(h, 0)); nd; nd = mkr_to_ptr(h, nd->next)) {
		struct node *odd = mkr_to_ptr(h, nd->next);
		if (!odd)
			break;
		nd->next = odd->next;
		if (mkr_free(h, odd) != 0)
			return 1;
	}
	int rc = mkr_check(h);
	mkr_close(h);
	return rc != 0;
}

static int run_self(const char *what, const char *path, const char *n)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "region-persist", what, path, n, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_list_survives_processes(void)
{
	const char *path = scratch_path("list");
	unlink(path);
	CHECK(run_self("--write", path, "500") == 0);
	CHECK(run_self("--read", path, "500") == 0);
	CHECK(run_self("--thin", path, "500") == 0);
	CHECK(run_self("--read-thinned", path, "500") == 0);
	CHECK(run_self("--read", path, "500") != 0); /* the reader notices a list that is not the one it expects */
	mkr_heap *h = mkr_open_file(path, 0, 0, 0);
	REQUIRE(h);
	struct mkr_stats st;
	CHECK(mkr_stats(h, &st) == 0 && st.used_blocks == 250);
	CHECK_HEAP(h);
	mkr_close(h);
	unlink(path);
}

static void cases(void)
{
	RUN(test_list_survives_processes);
}

int main(int argc, char **argv)
{
	if (argc == 4) {
		int n = atoi(argv[3]);
		if (strcmp(argv[1], "--write") == 0)
			return write_list(argv[2], n);
		if (strcmp(argv[1], "--read") == 0)
			return read_list(argv[2], n, 1);
		if (strcmp(argv[1], "--thin") == 0)
			return thin_list(argv[2]);
		if (strcmp(argv[1], "--read-thinned") == 0)
			return read_list(argv[2], n, 2);
		return 2;
	}
	return test_main(cases);
}
