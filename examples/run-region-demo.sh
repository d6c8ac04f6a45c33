#!/bin/sh
# The region heap demo: a producer and a consumer, two separate programs, pass COUNT messages (default
# 1000) through a heap in POSIX shared memory, each sleeping on a futex in the heap while it waits for the
# other.  Run from the repository root after `make`:   examples/run-region-demo.sh [COUNT]
set -eu
bin=${MK_BUILD:-build}/examples
count=${1:-1000}
name=/memkit-demo-$$
"$bin/region-consumer" "$name" "$count" &
consumer=$!
"$bin/region-producer" "$name" "$count" || { kill "$consumer" 2>/dev/null; exit 1; }
wait "$consumer"
