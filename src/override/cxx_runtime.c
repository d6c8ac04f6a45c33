/* The C++ runtime as the operators see it, without a dependency on it: libmemkit.so loads into C programs
 * (`ls`), which must not get libstdc++, and the operators are written in C.
 *
 * In libmemkit.so every libstdc++ and unwinder function used here is a weak undefined reference: the
 * dynamic linker binds it when the program has the runtime (a C++ program links libstdc++, which brings
 * libgcc_s), and leaves it NULL otherwise.  A runtime the program loads later with dlopen is found with
 * dlsym instead (runtime_symbol).  Without any runtime, the nothrow operators work and the throwing ones
 * abort with one line where they would throw.
 *
 * libmemkit.a has this file built with MK_CXX_STATIC: the references are strong.  A static link pulls this
 * object in only for a program that calls an operator, which is a C++ program linked with libstdc++; a
 * weak reference would bind only to what something else happened to pull in (std::__throw_bad_alloc is
 * not there in a program without standard containers or strings).
 *
 * Catching: a nothrow operator must turn a new-handler's exception into NULL, and C has no catch.  The
 * trampoline mk__cxx_call_catching below calls the handler from a frame whose unwind information names
 * our own personality routine; that routine claims C++ exceptions thrown from that one call, lands them
 * on a pad that ends the catch the way a C++ `catch (...) {}` does (__cxa_begin_catch, __cxa_end_catch),
 * and returns 1.  x86-64 only; elsewhere the handler is called directly and its exception propagates. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <unwind.h>

#include "override/cxx_runtime.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* std::get_new_handler(), std::__throw_bad_alloc() */
extern mk_new_handler _ZSt15get_new_handlerv(void);
extern void _ZSt17__throw_bad_allocv(void) __attribute__((noreturn));
extern void *__cxa_begin_catch(void *exception);
extern void __cxa_end_catch(void);
#ifndef MK_CXX_STATIC
#pragma weak _ZSt15get_new_handlerv
#pragma weak _ZSt17__throw_bad_allocv
#pragma weak __cxa_begin_catch
#pragma weak __cxa_end_catch
#pragma weak _Unwind_GetIP
#pragma weak _Unwind_SetIP
#pragma weak _Unwind_SetGR
#pragma weak dlsym
#pragma weak dlopen
#endif

#ifdef MK_CXX_STATIC
static void *runtime_symbol(void *linked, const char *name)
{
	(void)name;
	return linked;   /* a strong reference: linked in */
}
#else
/* The libraries that define what is looked up here. */
static const char *const runtime_libraries[] = { "libstdc++.so.6", "libgcc_s.so.1" };

/* The function linked in, else the one the process has loaded globally, else the one of a runtime loaded
 * locally (dlopen RTLD_LOCAL of a C++ plugin, as Python loads extensions: RTLD_NOLOAD finds it without
 * loading anything; the handle is kept, so the function stays valid), else NULL. */
static void *runtime_symbol(void *linked, const char *name)
{
	if (linked != NULL)
		return linked;
	if (dlsym == NULL || dlopen == NULL)
		return NULL;
	void *f = dlsym(RTLD_DEFAULT, name);
	for (size_t i = 0; f == NULL && i < sizeof runtime_libraries / sizeof runtime_libraries[0]; i++) {
		void *lib = dlopen(runtime_libraries[i], RTLD_LAZY | RTLD_NOLOAD);
		f = lib != NULL ? dlsym(lib, name) : NULL;
	}
	return f;
}
#endif
#define RUNTIME(fn) ((__typeof__(&fn))runtime_symbol((void *)&fn, #fn))

mk_new_handler mk__cxx_get_new_handler(void)
{
	mk_new_handler (*get)(void) = RUNTIME(_ZSt15get_new_handlerv);
	return get != NULL ? get() : NULL;
}

void mk__cxx_throw_bad_alloc(const char *function, size_t n)
{
	void (*throw_bad_alloc)(void) = RUNTIME(_ZSt17__throw_bad_allocv);
	if (throw_bad_alloc != NULL)
		throw_bad_alloc();
	char line[200];
	int len = snprintf(line, sizeof line,
	                   "memkit: %s: out of memory for %zu bytes, and no C++ runtime to throw std::bad_alloc\n",
	                   function, n);
	if (len > 0 && write(2, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1) < 0) {
		/* nothing more to say: the abort below is the report */
	}
	abort();
}

#if defined(__x86_64__)
/* int mk__cxx_call_catching(h): calls h with the stack aligned; returns 0 after it, 1 from the pad.  The
 * personality recognises the call by its return address, mk__cxx_call_return. */
__asm__(".text\n"
        ".p2align 4\n"
        ".globl mk__cxx_call_catching\n"
        ".hidden mk__cxx_call_catching\n"
        ".globl mk__cxx_call_return\n"
        ".hidden mk__cxx_call_return\n"
        ".globl mk__cxx_catch_pad\n"
        ".hidden mk__cxx_catch_pad\n"
        ".type mk__cxx_call_catching, @function\n"
        "mk__cxx_call_catching:\n"
        ".cfi_startproc\n"
        ".cfi_personality 0x1b, mk__cxx_personality\n"   /* DW_EH_PE_pcrel | sdata4: our own function */
        "	subq $8, %rsp\n"
        ".cfi_adjust_cfa_offset 8\n"
        "	call *%rdi\n"
        "mk__cxx_call_return:\n"
        "	xorl %eax, %eax\n"
        "	addq $8, %rsp\n"
        ".cfi_adjust_cfa_offset -8\n"
        "	ret\n"
        ".cfi_adjust_cfa_offset 8\n"
        "mk__cxx_catch_pad:\n"                              /* %rax: the exception (set by the personality) */
        "	movq %rax, %rdi\n"
        "	call mk__cxx_catch_end\n"
        "	movl $1, %eax\n"
        "	addq $8, %rsp\n"
        ".cfi_adjust_cfa_offset -8\n"
        "	ret\n"
        ".cfi_endproc\n"
        ".size mk__cxx_call_catching, .-mk__cxx_call_catching\n");

extern const char mk__cxx_call_return[] HIDDEN;
extern const char mk__cxx_catch_pad[] HIDDEN;

/* What `catch (...) {}` does with the exception once caught: takes it, then destroys it. */
HIDDEN __attribute__((used)) void mk__cxx_catch_end(void *exception)
{
	RUNTIME(__cxa_begin_catch)(exception);
	RUNTIME(__cxa_end_catch)();
}

/* The exception classes of GNU C++ (libstdc++): "GNUCC++" then 0, or 1 for a dependent exception
 * (std::rethrow_exception). */
static int is_gnu_cxx(_Unwind_Exception_Class cls) { return (uint64_t)cls >> 8 == 0x474e5543432b2bULL; }

/* Called by the unwinder for mk__cxx_call_catching's frame only (its unwind information names it). */
HIDDEN __attribute__((used)) _Unwind_Reason_Code mk__cxx_personality(int version, _Unwind_Action actions,
                                                                      _Unwind_Exception_Class cls,
                                                                      struct _Unwind_Exception *exception,
                                                                      struct _Unwind_Context *context)
{
	__typeof__(&_Unwind_GetIP) get_ip = RUNTIME(_Unwind_GetIP);
	__typeof__(&_Unwind_SetIP) set_ip = RUNTIME(_Unwind_SetIP);
	__typeof__(&_Unwind_SetGR) set_gr = RUNTIME(_Unwind_SetGR);
	/* Catch only what the pad can end: a C++ exception of a runtime we can reach, from the handler's call. */
	if (version != 1 || (actions & _UA_FORCE_UNWIND) || !is_gnu_cxx(cls) || !get_ip || !set_ip || !set_gr ||
	    !RUNTIME(__cxa_begin_catch) || !RUNTIME(__cxa_end_catch) ||
	    get_ip(context) != (_Unwind_Ptr)mk__cxx_call_return)
		return _URC_CONTINUE_UNWIND;
	if (actions & _UA_SEARCH_PHASE)
		return _URC_HANDLER_FOUND;
	if (!(actions & _UA_HANDLER_FRAME))
		return _URC_CONTINUE_UNWIND;
	set_gr(context, __builtin_eh_return_data_regno(0), (_Unwind_Ptr)exception);
	set_gr(context, __builtin_eh_return_data_regno(1), 0);
	set_ip(context, (_Unwind_Ptr)mk__cxx_catch_pad);
	return _URC_INSTALL_CONTEXT;
}
#else
int mk__cxx_call_catching(mk_new_handler h)
{
	h();
	return 0;
}
#endif
