/* What the C++ operators (cxx.c) need of the C++ runtime, reached without depending on it
 * (cxx_runtime.c): libmemkit.so must load into a C program without pulling libstdc++ in. */
#ifndef MK_OVERRIDE_CXX_RUNTIME_H_
#define MK_OVERRIDE_CXX_RUNTIME_H_

#include <stddef.h>

typedef void (*mk_new_handler)(void);

/* std::get_new_handler(), or NULL when there is none or no C++ runtime is loaded. */
mk_new_handler mk__cxx_get_new_handler(void) __attribute__((visibility("hidden")));

/* Throws std::bad_alloc (std::__throw_bad_alloc()).  Without a C++ runtime to throw with (one that
 * neither the program links nor dlsym finds), prints one line naming the function and the size, and
 * aborts. */
void mk__cxx_throw_bad_alloc(const char *function, size_t n)
	__attribute__((visibility("hidden"), noreturn, cold));

/* Calls h() and catches any C++ exception it throws (what the nothrow operators must do with a
 * new-handler's std::bad_alloc): 0 when h returned, 1 when it threw and the exception was destroyed.
 * Foreign exceptions and forced unwinding (thread cancellation) pass through. */
int mk__cxx_call_catching(mk_new_handler h) __attribute__((visibility("hidden")));

#endif
