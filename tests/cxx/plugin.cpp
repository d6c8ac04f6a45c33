// A C++ plugin that a C program (dlopen_host.c) loads with dlopen(RTLD_LOCAL) under LD_PRELOAD: the C++
// runtime arrives after memkit's weak references to it were bound (to nothing), and only in the plugin's
// local scope.  memkit's operators must still find its new-handler and throw its std::bad_alloc.
#include <cstddef>
#include <cstdint>
#include <new>

static int calls;
static void give_up_after_two()
{
	if (++calls == 2)
		std::set_new_handler(nullptr);
}
static void throwing_handler()
{
	calls++;
	throw std::bad_alloc();
}

// Returns 0 when every check held, else the number of the first that did not.
extern "C" int plugin_run(void)
{
	volatile std::size_t impossible = std::size_t(PTRDIFF_MAX) + 1;
	std::set_new_handler(give_up_after_two);
	bool caught = false;
	try {
		char *p = new char[impossible];
		delete[] p;
	} catch (const std::bad_alloc &) {
		caught = true;
	}
	if (!caught)
		return 1;
	if (calls != 2)
		return 2;
	calls = 0;
	std::set_new_handler(throwing_handler);
	if (::operator new(impossible, std::nothrow) != nullptr || calls != 1)
		return 3;
	std::set_new_handler(nullptr);
	int *q = new int[100]();
	q[99] = 7;
	int r = q[99] == 7 ? 0 : 4;
	delete[] q;
	return r;
}
