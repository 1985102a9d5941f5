#!/bin/bash
# Runs the unit test runner under valgrind, all tests in one process.
# Usage: tests/unit/run-valgrind.sh [path/to/unit_tests] (default: the one
# next to this script in the build tree). Exits non-zero on any valgrind
# error (invalid access, uninitialised use, definite leak), test failure, or
# when the run takes longer than VALGRIND_TIMEOUT seconds (default 600).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
runner=${1:-$here/unit_tests}
VALGRIND=${VALGRIND:-valgrind}
VALGRIND_TIMEOUT=${VALGRIND_TIMEOUT:-600}

if ! command -v "$VALGRIND" >/dev/null 2>&1; then
	echo "run-valgrind: valgrind not found (Debian package 'valgrind')" >&2
	exit 1
fi
if [ ! -x "$runner" ]; then
	echo "run-valgrind: $runner not built (run make check first)" >&2
	exit 1
fi

export CK_FORK=no
# libcheck's timeouts need fork; the overall timeout below stands in
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-300}
# check's log is written as each test ends: tells where a hang is
if [ -n "${CK_LOG_FILE_NAME:-}" ]; then
	log=$CK_LOG_FILE_NAME own_log=
else
	log=$(mktemp /tmp/sasync-unit-valgrind.XXXXXX) own_log=1
	export CK_LOG_FILE_NAME=$log
fi

timeout -k 10 "$VALGRIND_TIMEOUT" "$VALGRIND" --quiet --error-exitcode=1 \
	--leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --track-origins=yes --num-callers=30 \
	--suppressions="$here/valgrind.supp" \
	"$runner"
rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "run-valgrind: timed out after ${VALGRIND_TIMEOUT}s; last tests that ended:" >&2
	tail -n 3 "$log" >&2
fi
[ -z "$own_log" ] || rm -f "$log"
exit "$rc"
