// C++ misuse: what operator new and delete can catch.
//   newarr-delete    (SIZE) new char[n], freed with delete
//   new-deletearr    (SIZE) new of an n-byte object, freed with delete[]
//   sized-delete     (SIZE) new Derived (n bytes), deleted through its 1-byte Base: sized delete of the
//                    wrong size
//   strarr-delete    new std::string[4], freed with delete (the pointer is past the array's count)
//   str-deletearr    new std::string, freed with delete[] (the count read before it is garbage)
//   new-huge         operator new(-2): harmless when it throws std::bad_alloc
// All but new-huge are caught only when the program is stopped.
#include <new>
#include <string>

#include "tests/misuse/misuse.h"

struct Base {
	char c;
};
template <size_t N> struct Derived : Base {
	char more[N - 1];
};
template <size_t N> struct Object {
	char bytes[N];
};

template <size_t N> static void sized_case(const char *c)
{
	if (strcmp(c, "newarr-delete") == 0) {
		char *volatile a = new char[N];
		memset(a, 'a', N);
		delete a;
	} else if (strcmp(c, "new-deletearr") == 0) {
		Object<N> *volatile o = new Object<N>;
		memset(o, 'o', N);
		delete[] o;
	} else if (strcmp(c, "sized-delete") == 0) {
		Base *volatile b = new Derived<N>;
		delete b;
	} else {
		setup_failed("unknown case");
	}
}

static size_t volatile minus_two = (size_t)-2;

int main(int argc, char **argv)
{
	if (argc < 2)
		setup_failed("usage: cxx CASE [SIZE]");
	const char *c = argv[1];
	size_t n = misuse_size(argc, argv);
	if (strcmp(c, "strarr-delete") == 0) {
		std::string *volatile s = new std::string[4];
		delete s;
	} else if (strcmp(c, "str-deletearr") == 0) {
		std::string *volatile s = new std::string(100, 's');
		delete[] s;
	} else if (strcmp(c, "new-huge") == 0) {
		try {
			void *volatile p = ::operator new(minus_two);
			(void)p;
		} catch (const std::bad_alloc &) {
			harmless("std::bad_alloc");
		}
	} else if (n == 8) {
		sized_case<8>(c);
	} else if (n == 4096) {
		sized_case<4096>(c);
	} else if (n == 262144) {
		sized_case<262144>(c);
	} else {
		setup_failed("size: 8, 4096 or 262144");
	}
	keep_going(n ? n : 64);
	got_away();
}
