# Tests of the engine's common paths (issue 8): calloc of fresh large blocks, remote frees, thread exit
# (mk_ build), and no internal call through the PLT (a script over objdump).
$(BUILD)/tests/fastpath-mk: tests/fastpath/fastpath.c $(BUILD)/libmemkit-mk.a
	@mkdir -p $(@D)
	$(CC) $(TESTS_CPPFLAGS) $(MK_CFLAGS) $(CFLAGS) $(TESTS_CFLAGS) -DMK_TEST_PREFIXED $< $(BUILD)/libmemkit-mk.a $(LDFLAGS) -o $@ $(TESTS_LDLIBS)
tests/fastpath/plt.sh: $(BUILD)/libmemkit.so
TESTS += $(BUILD)/tests/fastpath-mk tests/fastpath/plt.sh
