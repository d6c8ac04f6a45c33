// An STL-heavy program for tests/cxx/cxx-preload.sh: compilers build it with and without memkit (the
// objects must be identical), and it runs with and without memkit (the output must be identical).  Many
// templates to instantiate, and at run time containers of every shape, strings, shared pointers, streams,
// exceptions and over-aligned types: every operator new/delete form the library uses.
#include <algorithm>
#include <deque>
#include <functional>
#include <iomanip>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

struct alignas(64) cell {
	long value;
	std::string label;
};

template <typename Map> unsigned long fold(const Map &m)
{
	unsigned long h = 1469598103934665603ul;
	for (const auto &kv : m)
		h = (h ^ std::hash<std::string>()(kv.first) ^ static_cast<unsigned long>(kv.second)) * 1099511628211ul;
	return h;
}

std::string word(unsigned i)
{
	static const char *parts[] = { "al", "be", "ga", "de", "ep", "ze", "et", "th", "io", "ka" };
	std::string w;
	do {
		w += parts[i % 10];
		i /= 10;
	} while (i);
	return w;
}

struct shape {
	virtual ~shape() = default;
	virtual double area() const = 0;
	virtual std::string name() const = 0;
};
struct square : shape {
	double s;
	explicit square(double v) : s(v) {}
	double area() const override { return s * s; }
	std::string name() const override { return "square(" + std::to_string(s) + ")"; }
};
struct rect : shape {
	double w, h;
	rect(double a, double b) : w(a), h(b) {}
	double area() const override { return w * h; }
	std::string name() const override { return "rect(" + std::to_string(w) + "x" + std::to_string(h) + ")"; }
};

} // namespace

int main()
{
	std::map<std::string, int> ordered;
	std::unordered_map<std::string, int> hashed;
	for (unsigned i = 0; i < 40000; i++) {
		std::string w = word(i * 7919u % 100003u);
		ordered[w] += static_cast<int>(i % 13);
		hashed[w + "#"] += static_cast<int>(i % 17);
	}
	std::cout << "map " << ordered.size() << " " << fold(ordered) << "\n";
	std::vector<std::pair<std::string, int>> sorted(hashed.begin(), hashed.end());
	std::sort(sorted.begin(), sorted.end());
	std::cout << "hash " << hashed.size() << " " << fold(sorted) << " first " << sorted.front().first << "\n";

	std::list<std::unique_ptr<shape>> shapes;
	for (int i = 0; i < 5000; i++) {
		if (i % 3)
			shapes.push_back(std::make_unique<square>(i % 17 + 0.5));
		else
			shapes.push_back(std::make_unique<rect>(i % 11 + 1, i % 7 + 2));
	}
	shapes.remove_if([](const std::unique_ptr<shape> &s) { return s->area() > 150; });
	double total = 0;
	for (const auto &s : shapes)
		total += s->area();
	std::cout << "shapes " << shapes.size() << " " << total << " " << shapes.back()->name() << "\n";

	std::vector<std::shared_ptr<std::vector<int>>> shared;
	for (int i = 0; i < 3000; i++) {
		auto v = std::make_shared<std::vector<int>>(static_cast<size_t>(i % 50 + 1));
		std::iota(v->begin(), v->end(), i);
		shared.push_back(v);
		if (i % 4 == 0)
			shared.push_back(v);
	}
	long sum = 0;
	for (const auto &v : shared)
		sum += std::accumulate(v->begin(), v->end(), 0L) * v.use_count();
	std::cout << "shared " << shared.size() << " " << sum << "\n";

	std::deque<cell> cells;
	std::set<long> seen;
	for (long i = 0; i < 20000; i++) {
		cells.push_back(cell{ i * i % 1009, word(static_cast<unsigned>(i)) });
		if (cells.size() > 500)
			cells.pop_front();
		seen.insert(cells.back().value);
	}
	std::unique_ptr<cell[]> arr(new cell[100]);
	for (int i = 0; i < 100; i++)
		arr[i].value = i;
	std::cout << "cells " << cells.size() << " " << seen.size() << " " << cells.front().label << " "
	          << (reinterpret_cast<unsigned long>(arr.get()) % alignof(cell)) << "\n";

	std::ostringstream out;
	int thrown = 0;
	for (int i = 0; i < 2000; i++) {
		try {
			if (i % 5 == 0)
				throw std::runtime_error("error " + word(static_cast<unsigned>(i)));
			out << word(static_cast<unsigned>(i)).substr(0, 3);
		} catch (const std::exception &e) {
			thrown += static_cast<int>(std::string(e.what()).size());
		}
	}
	std::unordered_set<std::string> uniq;
	std::istringstream in(out.str());
	std::string chunk;
	while (in >> std::setw(4) >> chunk)
		uniq.insert(chunk);
	std::cout << "streams " << out.str().size() << " " << thrown << " " << uniq.size() << "\n";
	std::function<long(long)> fib = [&fib](long n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); };
	std::cout << "fib " << fib(20) << "\n";
	return 0;
}
