#!/bin/sh
# make test's run of the misuse suite (tests/misuse/misuse.py --check): the default and the secure build
# each catch at least their floor (68 and 100 of the 116 cases) and every case tests/misuse/expected.txt
# lists for them.  3 runs per case; the table itself is `make misuse` / `make misuse-doc`.
root=$(cd "$(dirname "$0")/../.." && pwd)
exec python3 "$root/tests/misuse/misuse.py" --check --runs 3 "$@"
