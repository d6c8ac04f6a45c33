#!/bin/sh
# The region heap demo: a producer and a consumer, two separate programs, pass COUNT messages (default
# 1000) through a heap in POSIX shared memory, each sleeping on a futex in the heap while it waits for the
# other.  After `make`, from any directory:   examples/run-region-demo.sh [COUNT]
# The programs are those of the tree's build/ (MK_BUILD=dir: of another build directory).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${MK_BUILD:-$top/build}/examples
count=${1:-1000}
case $count in
'' | *[!0-9]* | 0 | 0*)
	echo "usage: $0 [COUNT]: COUNT is a number of messages from 1 to 4294967295, not '$count'" >&2
	exit 2 ;;
esac
for p in region-consumer region-producer; do
	[ -x "$bin/$p" ] || { echo "$0: no $bin/$p (run make in $top first)" >&2; exit 1; }
done
name=/memkit-demo-$$
"$bin/region-consumer" "$name" "$count" &
consumer=$!
"$bin/region-producer" "$name" "$count" || { kill "$consumer" 2>/dev/null; exit 1; }
wait "$consumer"
