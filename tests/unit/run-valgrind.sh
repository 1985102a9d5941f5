#!/bin/bash
# Runs the unit test runner under valgrind, all tests in one process.
# Usage: tests/unit/run-valgrind.sh [path/to/unit_tests] (default: the one
# next to this script in the build tree). Exits non-zero on any valgrind
# error (invalid access, uninitialised use, definite leak) or test failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
runner=${1:-$here/unit_tests}
VALGRIND=${VALGRIND:-valgrind}

if ! command -v "$VALGRIND" >/dev/null 2>&1; then
	echo "run-valgrind: valgrind not found (Debian package 'valgrind')" >&2
	exit 1
fi
if [ ! -x "$runner" ]; then
	echo "run-valgrind: $runner not built (run make check first)" >&2
	exit 1
fi

export CK_FORK=no
# libcheck's timeouts need fork; and valgrind is slow
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-300}

exec "$VALGRIND" --quiet --error-exitcode=1 \
	--leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --track-origins=yes --num-callers=30 \
	--suppressions="$here/valgrind.supp" \
	"$runner"
