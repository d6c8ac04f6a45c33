# Sourced by the scripts that run ThreadSanitizer builds (sanitize.sh, tests/fuzz/fuzz-sanitize.sh,
# tests/stress/purge0.sh): tsan_run CMD... runs CMD with stdout and stderr together on stdout, keeping its
# exit status.
#
# ThreadSanitizer's runtime needs its fixed memory layout; with many bits of mmap randomisation
# (newer kernels) it dies at start with "unexpected memory mapping".  Without randomisation
# (setarch -R) it always fits, so a program that cannot start is retried that way.
tsan_run() {
	local out
	out=$("$@" 2>&1)
	local rc=$?
	if [ $rc -ne 0 ] && grep -q 'unexpected memory mapping\|FATAL: ThreadSanitizer' <<<"$out" &&
		! grep -q '^PASS\|^FAIL' <<<"$out"; then
		echo "  (ThreadSanitizer could not map its shadow memory; retrying with setarch -R)" >&2
		out=$(setarch "$(uname -m)" -R "$@" 2>&1)
		rc=$?
	fi
	printf '%s\n' "$out"
	return $rc
}
