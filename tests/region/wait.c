/* Waiting between processes: a sleeper on a word of the region is woken by another process; waits time
 * out; bad words are refused. */
#include <sys/wait.h>

#include "helpers.h"

static void test_timeout(void)
{
	mkr_heap *h = mkr_create_shared(64 * 1024);
	REQUIRE(h);
	uint32_t *word = mkr_alloc(h, sizeof *word);
	REQUIRE(word);
	*word = 0;
	errno = 0;
	CHECK(mkr_wait(h, word, 0, 30) == -1 && errno == ETIMEDOUT);
	CHECK(strstr(mkr_last_error(), "30 ms") != NULL);
	CHECK(mkr_wait(h, word, 1, 30) == 0); /* the word already differs: no sleep */
	CHECK(mkr_notify(h, word, 1) == 0);   /* nobody sleeps */
	mkr_close(h);
}

static void test_bad_words(void)
{
	mkr_heap *h = mkr_create_private(64 * 1024);
	REQUIRE(h);
	uint32_t local = 0;
	char *p = mkr_alloc(h, 64);
	CHECK(mkr_wait(h, &local, 0, 10) == -1 && errno == EINVAL);
	CHECK(mkr_wait(h, (uint32_t *)(p + 2), 0, 10) == -1 && errno == EINVAL);
	CHECK(mkr_notify(h, &local, 1) == -1 && errno == EINVAL);
	CHECK(mkr_wait(NULL, (uint32_t *)p, 0, 10) == -1 && errno == EINVAL);
	mkr_close(h);
}

/* The child sleeps until the word changes.  The parent wakes it without changing the word until a wake
 * reaches a sleeper (so the child really slept in the kernel), then changes the word and wakes it. */
static void test_sleeper_is_woken(void)
{
	mkr_heap *h = mkr_create_shared(64 * 1024);
	REQUIRE(h);
	uint32_t *word = mkr_alloc(h, sizeof *word);
	REQUIRE(word);
	__atomic_store_n(word, 0, __ATOMIC_SEQ_CST);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == 0)
			if (mkr_wait(h, word, 0, -1) != 0)
				_exit(1);
		_exit(__atomic_load_n(word, __ATOMIC_SEQ_CST) == 7 ? 0 : 2);
	}
	int woke = 0;
	for (int tries = 0; !woke && tries < 100000; tries++) {
		woke = mkr_notify(h, word, 1);
		if (!woke)
			usleep(100);
	}
	CHECK(woke == 1);
	__atomic_store_n(word, 7, __ATOMIC_SEQ_CST);
	CHECK(mkr_notify(h, word, 1) >= 0);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	mkr_close(h);
}

static void cases(void)
{
	RUN(test_timeout);
	RUN(test_bad_words);
	RUN(test_sleeper_is_woken);
}

int main(void)
{
	return test_main(cases);
}
