// A static C++ program with no standard containers or strings, linked with build/libmemkit.a: nothing of
// it pulls libstdc++'s std::__throw_bad_alloc in, so memkit's static build must (strong references in
// libmemkit.a's cxx-runtime-static.o), or a new that cannot be met would abort instead of throwing.
// Prints its own PLAN and its one case.
#include <cstdint>
#include <cstdio>
#include <new>

int main()
{
	std::printf("PLAN 1\n");
	std::fflush(stdout);
	volatile std::size_t impossible = std::size_t(PTRDIFF_MAX) + 1;
	bool caught = false;
	try {
		char *p = new char[impossible];
		delete[] p;
	} catch (const std::bad_alloc &) {
		caught = true;
	}
	std::printf("%s static-bad-alloc-without-containers\n", caught ? "PASS" : "FAIL");
	return caught ? 0 : 1;
}
