/* The profiler's estimates against the truth: allocation sites of known sizes and counts, a malloc/free
 * loop (whose bytes the fast path must not hide), blocks freed by other threads, huge and large blocks,
 * aligned blocks, fork while threads allocate.  Linked against build/libmemkit.so with -rdynamic, so that
 * the profile names the sites; runs itself again with MEMKIT_PROF=1 and a 16 KiB rate when started
 * without them (so run-all.sh can start it plainly).  Bounds: prof_bound in profile.h (5 standard
 * deviations of the sampling estimate). */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "include/memkit.h"
#include "tests/common/test.h"
#include "tests/prof/profile.h"
#include "tests/prof/reexec.h"

#define RATE 16384
static char dir[64];

#define NOINLINE __attribute__((noinline))
static void **keep_small, **keep_mid, **keep_large, **keep_huge;
enum { N_SMALL = 400000, N_MID = 4000, N_LARGE = 24, N_HUGE = 3, N_LOOP = 1000000, N_REMOTE = 100000 };

NOINLINE void site_small(void)
{
	for (int i = 0; i < N_SMALL; i++)
		keep_small[i] = malloc(64);
}
NOINLINE void site_mid(void)
{
	for (int i = 0; i < N_MID; i++)
		keep_mid[i] = malloc(4000);   /* class 4096 */
}
NOINLINE void site_large(void)
{
	for (int i = 0; i < N_LARGE; i++)
		keep_large[i] = malloc(300 * 1024);
}
NOINLINE void site_huge(void)
{
	for (int i = 0; i < N_HUGE; i++)
		keep_huge[i] = calloc(1, 4 << 20);
}
NOINLINE void site_loop(void)
{
	for (int i = 0; i < N_LOOP; i++) {
		void *volatile p = malloc(48);
		free(p);
	}
}
NOINLINE void site_aligned(void)
{
	for (int i = 0; i < 20000; i++) {
		void *volatile p = aligned_alloc(256, 256);
		free(p);
	}
}

/* Allocations of 64 classes interleaved, each block freed 1,000 allocations later: every class has a
 * proxy out at once, and the bytes of one class's must not hide another's sample points. */
enum { N_MIXED = 300000, MIXED_RING = 1000 };
static double mixed_truth, mixed_var, mixed_max;
NOINLINE void site_mixed(void)
{
	static void *ring[MIXED_RING];
	for (int i = 0; i < N_MIXED; i++) {
		free(ring[i % MIXED_RING]);
		void *p = malloc(16 * (1 + (size_t)(i * 37 % 64)));
		ring[i % MIXED_RING] = p;
		double s = (double)malloc_usable_size(p), q = 1 - exp(-s / RATE);
		mixed_truth += s;
		mixed_var += s * s * (1 - q) / q;
		mixed_max = s > mixed_max ? s : mixed_max;
	}
	for (int i = 0; i < MIXED_RING; i++)
		free(ring[i]);
}

static void *remote_blocks[N_REMOTE];
NOINLINE void site_remote(void)
{
	for (int i = 0; i < N_REMOTE; i++)
		remote_blocks[i] = malloc(128);
}
static void *remote_thread(void *arg)
{
	(void)arg;
	site_remote();
	return NULL;
}

/* Threads one after another, each a malloc/free loop: each adopts the heap its predecessor parked (with
 * its current spans, in the default build), and its loop must not run through them unseen (it did: the
 * estimate was an eighth of the truth). */
enum { N_CHAIN = 1000, CHAIN_LOOP = 1000 };
static _Atomic long chain_truth;
NOINLINE void site_chain(void)
{
	long bytes = 0;
	for (int i = 0; i < CHAIN_LOOP; i++) {
		void *volatile p = malloc(1 + (size_t)(i * 7 % 60));   /* classes 16 to 64 */
		bytes += (long)malloc_usable_size(p);
		free(p);
	}
	chain_truth += bytes;
}
static void *chain_thread(void *arg)
{
	(void)arg;
	site_chain();
	return NULL;
}

/* C++'s operator new[] and delete[] (libmemkit.so's, called by their mangled names): their inlined fast
 * path is malloc's, and in the profiling build their slow path runs it once more: counted once all the
 * same. */
void *_Znam(size_t n);
void _ZdaPv(void *p);
enum { N_CXX = 200000 };
static void **keep_cxx;
NOINLINE void site_cxx(void)
{
	for (int i = 0; i < N_CXX; i++)
		keep_cxx[i] = _Znam(64);
}

static struct profile prof;
static int have_profile;

static void dump(const char *name, struct profile *p)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s.heap", dir, name);
	if (mk_prof_dump(path) != 0 || prof_read(p, path) != 0) {
		fprintf(stderr, "  cannot dump or read %s\n", path);
		memset(p, 0, sizeof *p);
	}
}

static int within(const char *what, double est, double truth, double bound)
{
	int ok = est >= truth - bound && est <= truth + bound;
	fprintf(stderr, "  %-28s estimate %12.0f  truth %12.0f  bound +-%10.0f  %s\n", what, est, truth, bound,
	        ok ? "ok" : "OUT OF BOUND");
	return ok;
}

static void setup(void)
{
	keep_small = calloc(N_SMALL, sizeof(void *));
	keep_mid = calloc(N_MID, sizeof(void *));
	keep_large = calloc(N_LARGE, sizeof(void *));
	keep_huge = calloc(N_HUGE, sizeof(void *));
	keep_cxx = calloc(N_CXX, sizeof(void *));
	site_small();
	site_mid();
	site_large();
	site_huge();
	site_loop();
	site_aligned();
	site_mixed();
	site_cxx();
	pthread_t t;
	pthread_create(&t, NULL, remote_thread, NULL);
	pthread_join(t, NULL);
	for (int i = 0; i < N_REMOTE; i++)   /* freed by another thread than the one that allocated them */
		free(remote_blocks[i]);
	for (int i = 0; i < N_CHAIN; i++) {
		pthread_create(&t, NULL, chain_thread, NULL);
		pthread_join(t, NULL);
	}
	dump("live", &prof);
	have_profile = prof.nlines > 0;
}

static void test_profile_readable(void)
{
	CHECK(have_profile);
	CHECK(prof.rate == RATE);
	CHECK(prof.nsyms > 0);
}

static void test_small_site(void)
{
	REQUIRE(have_profile);
	CHECK(within("site_small live", prof_estimate(&prof, "site_small", 0), 64.0 * N_SMALL,
	             prof_bound(N_SMALL, 64, RATE)));
	CHECK(within("site_small allocated", prof_estimate(&prof, "site_small", 1), 64.0 * N_SMALL,
	             prof_bound(N_SMALL, 64, RATE)));
}

static void test_mid_site(void)
{
	REQUIRE(have_profile);
	CHECK(within("site_mid live", prof_estimate(&prof, "site_mid", 0), 4096.0 * N_MID, prof_bound(N_MID, 4096, RATE)));
}

static void test_large_and_huge_sites(void)
{
	REQUIRE(have_profile);
	/* Blocks of 20 rates and more are sampled with probability 1 - exp(-20): exactly counted. */
	CHECK(within("site_large live", prof_estimate(&prof, "site_large", 0), 320.0 * 1024 * N_LARGE, 1));
	CHECK(within("site_huge live", prof_estimate(&prof, "site_huge", 0), 4.0 * 1048576 * N_HUGE, 1));
}

static void test_malloc_free_loop_counted(void)
{
	REQUIRE(have_profile);
	/* One block reused a million times on the fast path: its bytes must all count. */
	CHECK(within("site_loop allocated", prof_estimate(&prof, "site_loop", 1), 48.0 * N_LOOP,
	             prof_bound(N_LOOP, 48, RATE)));
	CHECK(prof_estimate(&prof, "site_loop", 0) < 3 * 48 * prof_weight(48, RATE));
	CHECK(within("site_aligned allocated", prof_estimate(&prof, "site_aligned", 1), 256.0 * 20000,
	             prof_bound(20000, 256, RATE)));
}

static void test_interleaved_classes_counted(void)
{
	REQUIRE(have_profile);
	CHECK(within("site_mixed allocated", prof_estimate(&prof, "site_mixed", 1), mixed_truth,
	             5 * sqrt(mixed_var) + mixed_max));
}

static void test_cxx_new_counted(void)
{
	REQUIRE(have_profile);
	CHECK(within("site_cxx live", prof_estimate(&prof, "site_cxx", 0), 64.0 * N_CXX, prof_bound(N_CXX, 64, RATE)));
	for (int i = 0; i < N_CXX; i++)
		_ZdaPv(keep_cxx[i]);
}

static void test_thread_chain_loops_counted(void)
{
	REQUIRE(have_profile);
	/* The bound of the largest of the sizes, 64 bytes (the smaller ones' samples weigh less). */
	CHECK(within("site_chain allocated", prof_estimate(&prof, "site_chain", 1), (double)chain_truth,
	             prof_bound(N_CHAIN * CHAIN_LOOP, 64, RATE)));
}

static void test_remote_frees_forgotten(void)
{
	REQUIRE(have_profile);
	CHECK(within("site_remote allocated", prof_estimate(&prof, "site_remote", 1), 128.0 * N_REMOTE,
	             prof_bound(N_REMOTE, 128, RATE)));
	CHECK(prof_estimate(&prof, "site_remote", 0) == 0);
}

static void test_frees_forgotten(void)
{
	for (int i = 0; i < N_SMALL; i++)
		free(keep_small[i]);
	for (int i = 0; i < N_MID; i++)
		free(keep_mid[i]);
	for (int i = 0; i < N_LARGE; i++)
		free(keep_large[i]);
	for (int i = 0; i < N_HUGE; i++)
		free(keep_huge[i]);
	struct profile after;
	dump("freed", &after);
	REQUIRE(after.nlines > 0);
	CHECK(prof_estimate(&after, "site_small", 0) == 0);
	CHECK(prof_estimate(&after, "site_mid", 0) == 0);
	CHECK(prof_estimate(&after, "site_large", 0) == 0);
	CHECK(prof_estimate(&after, "site_huge", 0) == 0);
	CHECK(prof_estimate(&after, "site_small", 1) == prof_estimate(&prof, "site_small", 1));
	prof_free(&after);
}

static void test_heap_consistent(void) { CHECK(mk_check() == 0); }

/* Aligned blocks of a class whose current span has its free list in a proxy, among mallocs of the class:
 * the aligned path took the span for full, then the proxy's blocks came back to it, and the heap's span
 * lists broke within a hundred rounds (mk_check first, then faults). */
static void test_aligned_among_mallocs(void)
{
	void *volatile b[64];
	for (int i = 0; i < 64; i++)   /* one span of the 1 KiB class, carved to its end */
		b[i] = malloc(1024);
	for (int i = 0; i < 64; i++)
		free(b[i]);
	int bad = 0;
	for (int i = 0; i < 4000 && !bad; i++) {
		void *volatile p = malloc(1024);
		free(p);
		void *volatile q = aligned_alloc(1024, 1024);
		bad = q == NULL || ((uintptr_t)q & 1023) != 0;
		free(q);
		if (i % 8 == 0 && mk_check() != 0)
			bad = 1;
	}
	CHECK(!bad);
	CHECK(mk_check() == 0);
}

/* A thread exits with pieces of free lists in its proxies: its heap is parked with them (no walk to give
 * them back), the next thread pops them, no block is handed out twice, the heaps stay consistent, and
 * malloc_trim gives every piece back (no live block of the class left). */
enum { N_PARKED = 300, PARKED_SIZE = 700 };
static void *parked_blocks[2][N_PARKED];
static void *parked_thread(void *arg)
{
	void **b = arg;
	for (int i = 0; i < N_PARKED; i++) {
		b[i] = malloc(PARKED_SIZE);
		if (b[i])
			memset(b[i], i & 0xff, PARKED_SIZE);
	}
	for (int i = 0; i < N_PARKED; i++)
		if (!b[i] || ((unsigned char *)b[i])[PARKED_SIZE - 1] != (i & 0xff))
			return (void *)1;
	return NULL;
}

/* Allocates `arg` blocks and frees them all: a thread that pops exactly what its predecessor's proxy
 * kept, and frees it, must not empty the span under the piece. */
static void *parked_churn(void *arg)
{
	void *b[64];
	int n = (int)(intptr_t)arg;
	for (int i = 0; i < n; i++)
		b[i] = malloc(PARKED_SIZE);
	for (int i = 0; i < n; i++)
		free(b[i]);
	return NULL;
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static void test_parked_heap_proxies(void)
{
	for (int t = 0; t < 2; t++) {
		pthread_t th;
		void *r = (void *)1;
		REQUIRE(pthread_create(&th, NULL, parked_thread, parked_blocks[t]) == 0);
		pthread_join(th, &r);
		CHECK(r == NULL);
		CHECK(mk_check() == 0);
		if (t == 0)   /* the second thread allocates while the first one's blocks are still live */
			continue;
		static void *all[2 * N_PARKED];
		memcpy(all, parked_blocks, sizeof all);
		qsort(all, 2 * N_PARKED, sizeof all[0], ptr_cmp);
		int twice = 0;
		for (int i = 1; i < 2 * N_PARKED; i++)
			twice += all[i] == all[i - 1];
		CHECK(twice == 0);
	}
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < N_PARKED; i++)
			free(parked_blocks[t][i]);
	CHECK(mk_check() == 0);
	for (int k = 0; k < 400; k++) {   /* then one block each: some thread pops a piece's last block */
		pthread_t th;
		REQUIRE(pthread_create(&th, NULL, parked_churn, (void *)(intptr_t)(k < 64 ? k + 1 : 1)) == 0);
		pthread_join(th, NULL);
	}
	CHECK(mk_check() == 0);
	void *probe = malloc(PARKED_SIZE);
	size_t cls = malloc_usable_size(probe);
	free(probe);
	malloc_trim(0);
	char name[64];
	snprintf(name, sizeof name, "class.%zu.live", cls);
	uint64_t live = 1;
	CHECK(mk_stats_get(name, &live) == 0);
	CHECK(live == 0);
	CHECK(mk_check() == 0);
}

/* Threads allocate and free while the main thread forks: every child profiles, dumps and exits. */
static volatile int stop;
static void *churn(void *arg)
{
	(void)arg;
	void *slots[256] = { 0 };
	for (unsigned i = 0; !stop; i++) {
		unsigned k = (i * 2654435761u) >> 24;
		free(slots[k]);
		slots[k] = malloc(16 + (i % 2000));
	}
	for (int k = 0; k < 256; k++)
		free(slots[k]);
	return NULL;
}

NOINLINE void site_child(void)
{
	for (int i = 0; i < 2000; i++) {
		void *volatile p = malloc(1000);
		free(p);
	}
}

static void test_fork_while_threads_allocate(void)
{
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	int ok = 0;
	for (int f = 0; f < 20; f++) {
		pid_t pid = fork();
		if (pid == 0) {
			site_child();
			char path[128];
			snprintf(path, sizeof path, "%s/child%d.heap", dir, f);
			struct profile p;
			int good = mk_prof_dump(path) == 0 && prof_read(&p, path) == 0 && mk_check() == 0 &&
			           prof_estimate(&p, "site_child", 1) > 0;
			_exit(good ? 0 : 1);
		}
		int st = -1;
		for (int w = 0; w < 2000 && waitpid(pid, &st, WNOHANG) == 0; w++)
			usleep(10000);
		if (waitpid(pid, &st, WNOHANG) == 0) {   /* 20 s: a deadlock */
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		}
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			fprintf(stderr, "  child %d: status %#x\n", f, st);
	}
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	CHECK(ok == 20);
}

static void test_dump_errors(void)
{
	errno = 0;
	CHECK(mk_prof_dump("/nonexistent-dir/x.heap") == -1 && errno == ENOENT);
	char path[128];
	snprintf(path, sizeof path, "%s/default", dir);
	CHECK(chdir(dir) == 0);
	CHECK(mk_prof_dump(NULL) == 0);   /* MEMKIT_PROF_FILE=sites.heap, then sites.1.heap */
	CHECK(mk_prof_dump(NULL) == 0);
	CHECK(access("sites.heap", R_OK) == 0 && access("sites.1.heap", R_OK) == 0);
}

static void cases(void)
{
	RUN(test_profile_readable);
	RUN(test_small_site);
	RUN(test_mid_site);
	RUN(test_large_and_huge_sites);
	RUN(test_malloc_free_loop_counted);
	RUN(test_interleaved_classes_counted);
	RUN(test_thread_chain_loops_counted);
	RUN(test_cxx_new_counted);
	RUN(test_remote_frees_forgotten);
	RUN(test_frees_forgotten);
	RUN(test_heap_consistent);
	RUN(test_aligned_among_mallocs);
	RUN(test_parked_heap_proxies);
	RUN(test_fork_while_threads_allocate);
	RUN(test_dump_errors);
}

int main(int argc, char **argv)
{
	(void)argc;
	if (!getenv("MEMKIT_PROF"))
		setenv("MEMKIT_PROF_FILE", "sites.heap", 1);
	if (prof_reexec(argv, "16384"))
		return 1;
	snprintf(dir, sizeof dir, "/tmp/memkit-prof-sites.%ld", (long)getpid());
	mkdir(dir, 0755);
	setup();
	int r = test_main(cases);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
