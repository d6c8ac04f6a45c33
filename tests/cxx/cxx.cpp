// memkit's C++ operator new/delete family (src/override/cxx.c), from a C++ program.  Built twice:
// build/tests/cxx-plain, run under LD_PRELOAD=build/libmemkit.so by tests/cxx/cxx-preload.sh, and
// build/tests/cxx-static (MK_TEST_STATIC), linked with g++ -static and build/libmemkit.a.
//
// The operators are called through a table of their addresses (volatile), so that the compiler can neither
// pair a new with its delete and drop both (allocation elision) nor pick one operator for another.
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>

#include <cstddef>
#include <malloc.h>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "memkit.h"
#include "tests/common/test.h"
#include "tests/contract/abort.h"

using std::align_val_t;
using std::nothrow_t;
using std::size_t;

// ---- every operator, by address ----

struct new_op {
	const char *name;      // the mangled name, for dlsym
	bool array, aligned, nothrow;
	void *(*plain)(size_t);
	void *(*nt)(size_t, const nothrow_t &);
	void *(*al)(size_t, align_val_t);
	void *(*al_nt)(size_t, align_val_t, const nothrow_t &);
};
static void *(*const volatile new_plain)(size_t) = &::operator new;
static void *(*const volatile new_array)(size_t) = &::operator new[];
static void *(*const volatile new_nothrow)(size_t, const nothrow_t &) = &::operator new;
static void *(*const volatile new_array_nothrow)(size_t, const nothrow_t &) = &::operator new[];
static void *(*const volatile new_al)(size_t, align_val_t) = &::operator new;
static void *(*const volatile new_array_al)(size_t, align_val_t) = &::operator new[];
static void *(*const volatile new_al_nothrow)(size_t, align_val_t, const nothrow_t &) = &::operator new;
static void *(*const volatile new_array_al_nothrow)(size_t, align_val_t, const nothrow_t &) = &::operator new[];
static const new_op new_ops[] = {
	{ "_Znwm", false, false, false, new_plain, nullptr, nullptr, nullptr },
	{ "_Znam", true, false, false, new_array, nullptr, nullptr, nullptr },
	{ "_ZnwmRKSt9nothrow_t", false, false, true, nullptr, new_nothrow, nullptr, nullptr },
	{ "_ZnamRKSt9nothrow_t", true, false, true, nullptr, new_array_nothrow, nullptr, nullptr },
	{ "_ZnwmSt11align_val_t", false, true, false, nullptr, nullptr, new_al, nullptr },
	{ "_ZnamSt11align_val_t", true, true, false, nullptr, nullptr, new_array_al, nullptr },
	{ "_ZnwmSt11align_val_tRKSt9nothrow_t", false, true, true, nullptr, nullptr, nullptr, new_al_nothrow },
	{ "_ZnamSt11align_val_tRKSt9nothrow_t", true, true, true, nullptr, nullptr, nullptr, new_array_al_nothrow },
};
static const size_t n_new_ops = sizeof new_ops / sizeof new_ops[0];

static void *call_new(const new_op &op, size_t n, size_t align)
{
	if (op.plain)
		return op.plain(n);
	if (op.nt)
		return op.nt(n, std::nothrow);
	if (op.al)
		return op.al(n, align_val_t(align));
	return op.al_nt(n, align_val_t(align), std::nothrow);
}

struct delete_op {
	const char *name;
	bool array, aligned;   // what it may free: blocks of new[] or new, aligned or not
	void (*plain)(void *);
	void (*nt)(void *, const nothrow_t &);
	void (*sized)(void *, size_t);
	void (*al)(void *, align_val_t);
	void (*al_nt)(void *, align_val_t, const nothrow_t &);
	void (*sized_al)(void *, size_t, align_val_t);
};
static void (*const volatile del_plain)(void *) = &::operator delete;
static void (*const volatile del_array)(void *) = &::operator delete[];
static void (*const volatile del_nothrow)(void *, const nothrow_t &) = &::operator delete;
static void (*const volatile del_array_nothrow)(void *, const nothrow_t &) = &::operator delete[];
static void (*const volatile del_sized)(void *, size_t) = &::operator delete;
static void (*const volatile del_array_sized)(void *, size_t) = &::operator delete[];
static void (*const volatile del_al)(void *, align_val_t) = &::operator delete;
static void (*const volatile del_array_al)(void *, align_val_t) = &::operator delete[];
static void (*const volatile del_al_nothrow)(void *, align_val_t, const nothrow_t &) = &::operator delete;
static void (*const volatile del_array_al_nothrow)(void *, align_val_t, const nothrow_t &) = &::operator delete[];
static void (*const volatile del_sized_al)(void *, size_t, align_val_t) = &::operator delete;
static void (*const volatile del_array_sized_al)(void *, size_t, align_val_t) = &::operator delete[];
static const delete_op delete_ops[] = {
	{ "_ZdlPv", false, false, del_plain, nullptr, nullptr, nullptr, nullptr, nullptr },
	{ "_ZdaPv", true, false, del_array, nullptr, nullptr, nullptr, nullptr, nullptr },
	{ "_ZdlPvRKSt9nothrow_t", false, false, nullptr, del_nothrow, nullptr, nullptr, nullptr, nullptr },
	{ "_ZdaPvRKSt9nothrow_t", true, false, nullptr, del_array_nothrow, nullptr, nullptr, nullptr, nullptr },
	{ "_ZdlPvm", false, false, nullptr, nullptr, del_sized, nullptr, nullptr, nullptr },
	{ "_ZdaPvm", true, false, nullptr, nullptr, del_array_sized, nullptr, nullptr, nullptr },
	{ "_ZdlPvSt11align_val_t", false, true, nullptr, nullptr, nullptr, del_al, nullptr, nullptr },
	{ "_ZdaPvSt11align_val_t", true, true, nullptr, nullptr, nullptr, del_array_al, nullptr, nullptr },
	{ "_ZdlPvSt11align_val_tRKSt9nothrow_t", false, true, nullptr, nullptr, nullptr, nullptr, del_al_nothrow, nullptr },
	{ "_ZdaPvSt11align_val_tRKSt9nothrow_t", true, true, nullptr, nullptr, nullptr, nullptr, del_array_al_nothrow,
	  nullptr },
	{ "_ZdlPvmSt11align_val_t", false, true, nullptr, nullptr, nullptr, nullptr, nullptr, del_sized_al },
	{ "_ZdaPvmSt11align_val_t", true, true, nullptr, nullptr, nullptr, nullptr, nullptr, del_array_sized_al },
};
static const size_t n_delete_ops = sizeof delete_ops / sizeof delete_ops[0];

static void call_delete(const delete_op &op, void *p, size_t n, size_t align)
{
	if (op.plain)
		op.plain(p);
	else if (op.nt)
		op.nt(p, std::nothrow);
	else if (op.sized)
		op.sized(p, n);
	else if (op.al)
		op.al(p, align_val_t(align));
	else if (op.al_nt)
		op.al_nt(p, align_val_t(align), std::nothrow);
	else
		op.sized_al(p, n, align_val_t(align));
}

// The unsized delete that matches op (same array-ness, same alignment): what frees a block of op.
static const delete_op &matching_delete(const new_op &op)
{
	return delete_ops[(op.aligned ? 6 : 0) + (op.array ? 1 : 0)];
}

// ---- memkit's own view of a block ----

#ifdef MK_TEST_STATIC
static size_t memkit_usable(void *p) { return mk_malloc_usable_size(p); }
static int memkit_check() { return mk_check(); }
#else
// Under LD_PRELOAD the program is not linked with memkit: its mk_ names come from the preloaded library.
static size_t memkit_usable(void *p)
{
	auto f = reinterpret_cast<size_t (*)(void *)>(dlsym(RTLD_DEFAULT, "mk_malloc_usable_size"));
	return f ? f(p) : 0;
}
static int memkit_check()
{
	auto f = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "mk_check"));
	return f ? f() : -1;
}
#endif

// Writes every usable byte of p and reads it back.
static bool fill_and_verify(void *p, size_t usable, unsigned seed)
{
	unsigned char *b = static_cast<unsigned char *>(p);
	for (size_t i = 0; i < usable; i++)
		b[i] = static_cast<unsigned char>(i * 31 + seed);
	size_t bad = 0;
	for (size_t i = 0; i < usable; i++)
		bad += b[i] != static_cast<unsigned char>(i * 31 + seed);
	return bad == 0;
}

static const size_t sizes[] = { 0, 1, 24, 100, 1000, 5000, 70000, 200000, 3 << 20 };
static const size_t aligns[] = { 64, 4096, 65536, 2 << 20 };

// Each new operator, at every size and (aligned ones) every alignment: a block memkit knows (its usable
// size is memkit's, at least n), aligned, every byte writable, freed by each delete that may take it.
static void test_every_variant(void)
{
	size_t k = 0;
	for (size_t i = 0; i < n_new_ops; i++) {
		const new_op &op = new_ops[i];
		for (size_t a = 0; a < (op.aligned ? sizeof aligns / sizeof aligns[0] : 1); a++) {
			size_t align = op.aligned ? aligns[a] : 16;
			for (size_t n : sizes) {
				void *p = call_new(op, n, align);
				REQUIRE(p != nullptr);
				CHECK(reinterpret_cast<uintptr_t>(p) % align == 0);
				size_t usable = memkit_usable(p);
				CHECK(usable >= n && usable == malloc_usable_size(p));
				CHECK(fill_and_verify(p, usable, unsigned(n + i)));
				// a delete of the same array-ness and alignment, each in turn
				const delete_op *d;
				do
					d = &delete_ops[k++ % n_delete_ops];
				while (d->array != op.array || d->aligned != op.aligned);
				call_delete(*d, p, n, align);
			}
		}
	}
	CHECK(memkit_check() == 0);
}

// Each delete frees into memkit: the very next new of the same size on this thread gets the block back
// (memkit's free list is LIFO), so the block went back to the allocator that new took it from.
static void test_every_delete_frees(void)
{
	const bool secure = getenv("MK_TEST_SECURE") != nullptr;
	for (size_t i = 0; i < n_delete_ops; i++) {
		const delete_op &d = delete_ops[i];
		const new_op &op = new_ops[(d.array ? 1 : 0) + (d.aligned ? 4 : 0)];   // plain new or new[], aligned or not
		for (size_t n : { size_t(8), size_t(64), size_t(480) }) {
			void *p = call_new(op, n, 64);
			REQUIRE(p != nullptr);
			call_delete(d, p, n, 64);
			void *q = call_new(op, n, 64);
			if (q != p && !secure)
				fprintf(stderr, "  %s did not free %p (next block %p, %zu bytes)\n", d.name, p, q, n);
			CHECK(q == p || secure);   // the secure build's quarantine never hands the block straight back
			call_delete(d, q, n, 64);
		}
	}
	// and delete of NULL is a no-op, in every form
	for (size_t i = 0; i < n_delete_ops; i++)
		call_delete(delete_ops[i], nullptr, 0, 64);
	CHECK(memkit_check() == 0);
}

static void test_new_zero_unique(void)
{
	std::vector<void *> seen;
	for (size_t i = 0; i < n_new_ops; i++)
		for (int j = 0; j < 4; j++) {
			void *p = call_new(new_ops[i], 0, 64);
			REQUIRE(p != nullptr);
			for (void *q : seen)
				CHECK(p != q);
			seen.push_back(p);
		}
	for (size_t i = 0; i < seen.size(); i++)
		call_delete(matching_delete(new_ops[i / 4]), seen[i], 0, 64);
}

// The alignments the compiler asks for itself: over-aligned types, single and in arrays.
struct alignas(64) line64 { char c[100]; };
struct alignas(4096) page4k { char c[5000]; };
struct alignas(65536) big64k { char c[10]; };

template <typename T> static void check_aligned_type(void)
{
	std::vector<T *> one;
	std::vector<T *> many;
	for (int i = 0; i < 20; i++) {
		one.push_back(new T);
		many.push_back(new T[3]);
	}
	for (int i = 0; i < 20; i++) {
		CHECK(reinterpret_cast<uintptr_t>(one[i]) % alignof(T) == 0);
		CHECK(reinterpret_cast<uintptr_t>(many[i]) % alignof(T) == 0);
		CHECK(fill_and_verify(one[i], sizeof(T), unsigned(i)));
		CHECK(fill_and_verify(many[i], 3 * sizeof(T), unsigned(i)));
	}
	for (int i = 0; i < 20; i++) {
		delete one[i];
		delete[] many[i];
	}
}

static void test_aligned_types(void)
{
	check_aligned_type<line64>();
	check_aligned_type<page4k>();
	check_aligned_type<big64k>();
	CHECK(memkit_check() == 0);
}

// ---- the new-handler ----

static const size_t impossible = size_t(PTRDIFF_MAX) + 1;
static int handler_calls;

static void counting_handler()
{
	if (++handler_calls == 3)
		std::set_new_handler(nullptr);
}

// A handler that cannot help is called again and again until it uninstalls itself; then bad_alloc.
static void test_handler_loops_then_bad_alloc(void)
{
	for (size_t i = 0; i < n_new_ops; i++) {
		handler_calls = 0;
		std::set_new_handler(counting_handler);
		bool caught = false;
		void *p = reinterpret_cast<void *>(1);
		try {
			p = call_new(new_ops[i], impossible, 64);
		} catch (const std::bad_alloc &) {
			caught = true;
		}
		if (new_ops[i].nothrow)
			CHECK(!caught && p == nullptr);
		else
			CHECK(caught);
		CHECK(handler_calls == 3);
		std::set_new_handler(nullptr);
	}
}

// No handler: bad_alloc at once (throwing forms), NULL (nothrow forms).
static void test_bad_alloc_and_nothrow_null(void)
{
	std::set_new_handler(nullptr);
	for (size_t i = 0; i < n_new_ops; i++)
		for (size_t n : { impossible, SIZE_MAX, SIZE_MAX - 4095 }) {
			bool caught = false;
			void *p = reinterpret_cast<void *>(1);
			try {
				p = call_new(new_ops[i], n, 4096);
			} catch (const std::bad_alloc &) {
				caught = true;
			}
			CHECK(new_ops[i].nothrow ? !caught && p == nullptr : caught);
		}
	// the same through a new-expression of an impossible array
	volatile size_t count = SIZE_MAX / 8;
	bool caught = false;
	try {
		double *d = new double[count / 2];
		delete[] d;
	} catch (const std::bad_alloc &) {
		caught = true;
	}
	CHECK(caught);
	CHECK(new (std::nothrow) char[count * 4] == nullptr);
	// an alignment that is not a power of two is refused (libstdc++ does the same)
	caught = false;
	try {
		void *p = new_al(64, align_val_t(48));
		del_al(p, align_val_t(48));
	} catch (const std::bad_alloc &) {
		caught = true;
	}
	CHECK(caught);
	CHECK(new_al_nothrow(64, align_val_t(48), std::nothrow) == nullptr);
}

struct handler_gave_up {
	int code;
};
static void throwing_handler()
{
	handler_calls++;
	throw handler_gave_up{ 42 };
}
static void bad_alloc_handler()
{
	handler_calls++;
	throw std::bad_alloc();
}

// A handler that throws: its exception leaves the throwing forms as it is; the nothrow forms return NULL
// (catching bad_alloc or anything else), and the program goes on (the exception was destroyed).
static void test_handler_throws(void)
{
	for (size_t i = 0; i < n_new_ops; i++) {
		handler_calls = 0;
		std::set_new_handler(throwing_handler);
		int code = 0;
		void *p = reinterpret_cast<void *>(1);
		try {
			p = call_new(new_ops[i], impossible, 64);
		} catch (const handler_gave_up &e) {
			code = e.code;
		}
		CHECK(new_ops[i].nothrow ? code == 0 && p == nullptr : code == 42);
		CHECK(handler_calls == 1);

		handler_calls = 0;
		std::set_new_handler(bad_alloc_handler);
		bool caught = false;
		p = reinterpret_cast<void *>(1);
		try {
			p = call_new(new_ops[i], impossible, 64);
		} catch (const std::bad_alloc &) {
			caught = true;
		}
		CHECK(new_ops[i].nothrow ? !caught && p == nullptr : caught);
		CHECK(handler_calls == 1);
	}
	std::set_new_handler(nullptr);
	// exceptions still work after all those caught inside the nothrow operators
	bool caught = false;
	try {
		std::vector<int>().at(3);
	} catch (const std::out_of_range &) {
		caught = true;
	}
	CHECK(caught);
}

// A handler that frees a reserve: the request fails (the address space is limited so that it cannot fit
// beside the reserve), the handler frees the reserve once, and the retry succeeds.  In a child: the limit
// stays there.
static void *reserve;
static void freeing_handler()
{
	handler_calls++;
	::operator delete(reserve);
	reserve = nullptr;
	malloc_trim(0);   // memkit keeps freed huge mappings in a cache: give them back for the retry
	std::set_new_handler(nullptr);
}

static void handler_frees_reserve_child(void *arg)
{
	const new_op &op = new_ops[reinterpret_cast<uintptr_t>(arg)];
	const size_t mib = size_t(1) << 20;
	char line[256] = "";
	long vm_kib = 0;
	// What memkit caches (free segments, huge mappings) is counted in VmSize and given back when a mapping
	// is refused: gone first, so that 190 MiB can never fit in the 160 given.
	malloc_trim(0);
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %ld", &vm_kib) == 1)
			break;
	if (f)
		fclose(f);
	struct rlimit lim;
	lim.rlim_cur = lim.rlim_max = rlim_t(vm_kib) * 1024 + 160 * mib;
	if (vm_kib == 0 || setrlimit(RLIMIT_AS, &lim) != 0)
		_exit(2);
	reserve = ::operator new(100 * mib);
	handler_calls = 0;
	std::set_new_handler(freeing_handler);
	void *p = call_new(op, 90 * mib, 4096);      // 190 MiB do not fit in 160
	if (p == nullptr || handler_calls != 1 || reserve != nullptr)
		_exit(3);
	if (reinterpret_cast<uintptr_t>(p) % (op.aligned ? 4096 : 16) != 0 || !fill_and_verify(p, 90 * mib, 7))
		_exit(4);
	if (op.array)   // the delete that matches the new (the secure build checks)
		::operator delete[](p);
	else
		::operator delete(p);
	_exit(0);
}

static void test_handler_frees_reserve(void)
{
	for (size_t i = 0; i < n_new_ops; i++) {
		char out[4096];
		int status = test_capture(handler_frees_reserve_child, reinterpret_cast<void *>(i), out, sizeof out);
		if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			fprintf(stderr, "  %s: child status %#x, stderr: %s\n", new_ops[i].name, status, out);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

// ---- the operators are memkit's ----

#ifndef MK_TEST_STATIC
// Every operator the program calls resolves into libmemkit.so (dlsym of its mangled name, then dladdr).
static void test_operators_resolve_to_memkit(void)
{
	const char *names[n_new_ops + n_delete_ops];
	for (size_t i = 0; i < n_new_ops; i++)
		names[i] = new_ops[i].name;
	for (size_t i = 0; i < n_delete_ops; i++)
		names[n_new_ops + i] = delete_ops[i].name;
	for (const char *name : names) {
		void *f = dlsym(RTLD_DEFAULT, name);
		Dl_info info;
		bool ok = f && dladdr(f, &info) && info.dli_fname && (strstr(info.dli_fname, "libmemkit.so") ||
		                                                           strstr(info.dli_fname, "libmemkit-secure.so"));
		if (!ok)
			fprintf(stderr, "  %s resolves to %p in %s\n", name, f, f && dladdr(f, &info) ? info.dli_fname : "?");
		CHECK(ok);
	}
	// and the addresses the program itself took are those
	CHECK(reinterpret_cast<void *>(new_plain) == dlsym(RTLD_DEFAULT, "_Znwm"));
	CHECK(reinterpret_cast<void *>(del_sized) == dlsym(RTLD_DEFAULT, "_ZdlPvm"));
}
#endif

// The standard library's own allocations (containers, strings, exceptions) come from memkit too.
static void test_library_blocks_are_memkit(void)
{
	std::vector<std::string> v;
	for (int i = 0; i < 1000; i++)
		v.push_back(std::string(size_t(20 + i % 300), char('a' + i % 26)));
	size_t bad = 0;
	for (int i = 0; i < 1000; i++)
		bad += memkit_usable(&v[size_t(i)][0]) < v[size_t(i)].size() + 1;
	CHECK(bad == 0);
	CHECK(memkit_usable(v.data()) >= v.size() * sizeof(std::string));
	CHECK(memkit_check() == 0);
}

// ---- bad deletes get memkit's line ----

struct bad_delete {
	const delete_op *op;
	void *p;
};
static void double_delete_child(void *arg)
{
	bad_delete *b = static_cast<bad_delete *>(arg);
	call_delete(*b->op, b->p, 48, 64);
	call_delete(*b->op, b->p, 48, 64);
}

static void test_double_delete(void)
{
	for (size_t i = 0; i < n_delete_ops; i++) {
		const delete_op &d = delete_ops[i];
		bad_delete b = { &d, call_new(new_ops[(d.array ? 1 : 0) + (d.aligned ? 4 : 0)], 48, 64) };
		if (!test_expect_bad_free(double_delete_child, &b, b.p, "free(): double free of"))
			fprintf(stderr, "  (%s)\n", d.name);
		CHECK(b.p != nullptr);
		call_delete(d, b.p, 48, 64);
	}
}

static void delete_child(void *arg)
{
	bad_delete *b = static_cast<bad_delete *>(arg);
	call_delete(*b->op, b->p, 16, 64);
}

// delete of memory memkit never gave out, and of a pointer into a block
static void test_invalid_delete(void)
{
	static char not_heap[64] __attribute__((aligned(64)));
	char *block = static_cast<char *>(new_array(100));
	bad_delete stat = { &delete_ops[0], not_heap };
	bad_delete interior = { &delete_ops[1], block + 16 };
	CHECK(test_expect_bad_free(delete_child, &stat, not_heap, "free(): invalid pointer"));
	CHECK(test_expect_bad_free(delete_child, &interior, block + 16, "free(): interior pointer"));
	del_array(block);
}

// ---- threads ----

static void *allocate_many(void *)
{
	std::vector<int *> *v = new std::vector<int *>;
	for (int i = 0; i < 20000; i++)
		v->push_back(new int[size_t(1 + i % 100)]{ i });
	return v;
}

// Blocks made by new in other threads, deleted here (memkit's remote frees), sized and not.
static void test_threads(void)
{
	pthread_t t[4];
	for (pthread_t &th : t)
		REQUIRE(pthread_create(&th, nullptr, allocate_many, nullptr) == 0);
	size_t bad = 0;
	for (pthread_t &th : t) {
		void *r;
		pthread_join(th, &r);
		std::vector<int *> *v = static_cast<std::vector<int *> *>(r);
		for (size_t i = 0; i < v->size(); i++) {
			bad += (*v)[i][0] != int(i);
			if (i % 2)
				delete[](*v)[i];
			else
				del_array_sized((*v)[i], (1 + i % 100) * sizeof(int));
		}
		delete v;
	}
	CHECK(bad == 0);
	CHECK(memkit_check() == 0);
}

static void cases(void)
{
	RUN(test_every_variant);
	RUN(test_every_delete_frees);
	RUN(test_new_zero_unique);
	RUN(test_aligned_types);
	RUN(test_handler_loops_then_bad_alloc);
	RUN(test_bad_alloc_and_nothrow_null);
	RUN(test_handler_throws);
	RUN(test_handler_frees_reserve);
#ifndef MK_TEST_STATIC
	RUN(test_operators_resolve_to_memkit);
#endif
	RUN(test_library_blocks_are_memkit);
	RUN(test_double_delete);
	RUN(test_invalid_delete);
	RUN(test_threads);
}

int main(void)
{
	return test_main(cases);
}
