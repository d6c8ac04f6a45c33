# The C++ operator new/delete family (src/override/cxx.c, in C under the mangled names) and what it needs
# of the C++ runtime (cxx_runtime.c, through weak references in build/libmemkit.so, which still depends on
# libc alone): both go into build/libmemkit.so and build/libmemkit.a (mk/engine.mk's LIBMEMKIT_CXX_OBJ).
# -fexceptions: std::bad_alloc, and a new-handler's exceptions, are thrown through these C frames.
CXX_OVERRIDE_CFLAGS := $(ENGINE_CFLAGS) -fexceptions
CXX_OVERRIDE_CC = $(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(CXX_OVERRIDE_CFLAGS)
$(BUILD)/obj/cxx-override.o: src/override/cxx.c
	@mkdir -p $(@D)
	$(CXX_OVERRIDE_CC) $(API_ENGINE) -c $< -o $@
$(BUILD)/obj/cxx-runtime.o: src/override/cxx_runtime.c
	@mkdir -p $(@D)
	$(CXX_OVERRIDE_CC) -c $< -o $@
# libmemkit.a's: strong references, which pull libstdc++'s pieces into the static C++ programs that use
# the operators (C programs never pull this object in).
$(BUILD)/obj/cxx-runtime-static.o: src/override/cxx_runtime.c
	@mkdir -p $(@D)
	$(CXX_OVERRIDE_CC) -DMK_CXX_STATIC -c $< -o $@

# Tests: one C++ program, built dynamically (run under LD_PRELOAD by tests/cxx/cxx-preload.sh, which also
# checks the library's dependencies and g++ under memkit) and statically with build/libmemkit.a.
# -fno-allocation-dce: g++ may drop a new whose block is only deleted; the tests want every call made.
# The user's CXXFLAGS and LDFLAGS come after the project's, as CFLAGS do for C.
CXX_TESTS_FLAGS = -std=gnu++17 $(OPT) -g -Wall -Wextra $(MK_WERROR) -pthread -fno-builtin -fno-allocation-dce \
                  $(CXXFLAGS)
$(BUILD)/tests/cxx-plain: tests/cxx/cxx.cpp tests/common/test.h tests/contract/abort.h
	@mkdir -p $(@D)
	$(CXX) $(TESTS_CPPFLAGS) $(CXX_TESTS_FLAGS) $< $(LDFLAGS) -o $@ -ldl $(LDLIBS)
$(BUILD)/tests/cxx-static: tests/cxx/cxx.cpp tests/common/test.h tests/contract/abort.h $(BUILD)/libmemkit.a
	@mkdir -p $(@D)
	$(CXX) $(TESTS_CPPFLAGS) $(CXX_TESTS_FLAGS) -DMK_TEST_STATIC -static $< $(BUILD)/libmemkit.a $(LDFLAGS) -o $@ $(LDLIBS)
# A C program that dlopens a C++ plugin: the runtime arrives late, in a local scope.
$(BUILD)/tests/cxx-plugin.so: tests/cxx/plugin.cpp
	@mkdir -p $(@D)
	$(CXX) $(MK_CPPFLAGS) $(CPPFLAGS) $(CXX_TESTS_FLAGS) -fPIC -shared $< $(LDFLAGS) -o $@
$(BUILD)/tests/cxx-dlopen-host: tests/cxx/dlopen_host.c
	@mkdir -p $(@D)
	$(CC) $(MK_CPPFLAGS) $(CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $< $(LDFLAGS) -o $@ -ldl $(LDLIBS)
tests/cxx/cxx-preload.sh: $(BUILD)/tests/cxx-plain $(BUILD)/libmemkit.so $(BUILD)/tests/cxx-plugin.so \
                          $(BUILD)/tests/cxx-dlopen-host
$(BUILD)/tests/cxx-static-nostl: tests/cxx/static_nostl.cpp $(BUILD)/libmemkit.a
	@mkdir -p $(@D)
	$(CXX) $(MK_CPPFLAGS) $(CPPFLAGS) $(CXX_TESTS_FLAGS) -static $< $(BUILD)/libmemkit.a $(LDFLAGS) -o $@ $(LDLIBS)
TESTS += tests/cxx/cxx-preload.sh $(BUILD)/tests/cxx-static $(BUILD)/tests/cxx-static-nostl

# Measurement only (not installed, not tested): instructions per new/delete pair under callgrind
# (tests/cxx/instr.sh), with memkit's operators and with libstdc++'s (build/libmemkit-nocxx.so: the same
# library without cxx.c, so libstdc++'s operator new calls memkit's malloc).
$(BUILD)/libmemkit-nocxx.so: $(filter-out $(LIBMEMKIT_CXX_OBJ),$(LIBMEMKIT_OBJ))
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(MK_LDLIBS) $(LDLIBS) -Wl,-z,now
$(BUILD)/obj/tests/cxx/instr_sizes.o: MK_CPPFLAGS += -I.
$(BUILD)/bench/instr-new: tests/cxx/instr_new.cpp $(BUILD)/obj/tests/cxx/instr_sizes.o
	@mkdir -p $(@D)
	$(CXX) $(MK_CPPFLAGS) $(CPPFLAGS) $(CXX_TESTS_FLAGS) $^ $(LDFLAGS) -o $@
bench-instr-cxx: $(BUILD)/bench/instr-new $(BUILD)/libmemkit.so $(BUILD)/libmemkit-nocxx.so
	tests/cxx/instr.sh $(INSTR_ITERATIONS)
.PHONY: bench-instr-cxx
