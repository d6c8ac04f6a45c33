#!/usr/bin/env bash
# The engine's exported functions call one another directly (-fno-semantic-interposition, mk/engine.mk):
# no call or jump in libmemkit.so goes through the PLT to one of its own malloc-family names.
set -u
cd "$(dirname "$0")/../.."
echo "PLAN 1"
lib=build/libmemkit.so
names='(mk_)?(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|free_sized|free_aligned_sized|malloc_trim|malloc_stats|mallinfo2?|mallopt)'
if ! out=$(objdump -d "$lib" 2>&1); then
	echo "FAIL no-internal-plt-calls: objdump $lib: $(tail -1 <<<"$out")"
	exit 1
fi
calls=$(grep -E "(call|jmp) +[0-9a-f]+ <$names@plt>" <<<"$out" | sort | uniq -c)
if [ -z "$calls" ] && grep -q '<malloc>:\|<__libc_malloc>:' <<<"$out"; then
	echo "PASS no-internal-plt-calls"
else
	echo "FAIL no-internal-plt-calls: ${calls:-no malloc in the disassembly}" | tr '\n' ' '
	echo
	exit 1
fi
