#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Builds the plugin and the unit tests with AddressSanitizer and
# UndefinedBehaviorSanitizer in a separate tree (build-asan/, see
# tests/build-tree.sh; the in-tree build is not touched) and runs
# "make check" there. Any sanitizer report fails the run: ASan and UBSan
# halt on the first error, LeakSanitizer checks every test at its exit
# (libcheck forks one process per test).
#
# Only our code is instrumented: strongSwan's libraries and plugins are the
# system's. Leaks inside them are suppressed in tests/unit/lsan.supp (each
# entry says why); their invalid accesses show only where our code passes
# them bad memory.
#
# Usage: tests/sanitize.sh
# Environment:
#   SANITIZE_DIR=DIR   build tree (default: build-asan in the checkout)
#   SANITIZE_CC=CC     compiler (default: gcc, the compiler of the normal
#                      build; clang works too)
#   CK_RUN_SUITE, CK_RUN_CASE, ...: as libcheck says, to run fewer tests
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SANITIZE_DIR:-$TOP/build-asan}
CC=${SANITIZE_CC:-gcc}
SAN="-fsanitize=address,undefined"
t0=$SECONDS

log() { echo "[sanitize] $*"; }

CFLAGS="-g -O1 $SAN -fno-omit-frame-pointer -fno-sanitize-recover=all"
bash "$TOP/tests/build-tree.sh" "$DIR" CC="$CC" --enable-werror \
	CFLAGS="$CFLAGS" LDFLAGS="$SAN" || exit 1
log "building with $CC $SAN"
make -C "$DIR/obj" -j2 >"$DIR/make.log" 2>&1 || {
	tail -n 40 "$DIR/make.log"
	log "FAIL: the build failed, see $DIR/make.log"
	exit 1
}

# halt_on_error: the first report ends the test, which fails it. Not
# strict_string_checks: it takes strndup() of an unterminated buffer (legal,
# done by strongSwan's vici_message.c and by us) for an overflow
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$TOP/tests/unit/lsan.supp:print_suppressions=0
log "make check (ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS)"
make -C "$DIR/obj" check >"$DIR/check.log" 2>&1
rc=$?
# the test output, then anything a sanitizer said (in a passed run too:
# a report from a process whose exit status nobody checks must not hide)
sed -n '/^Running suite/,/^[0-9]*%: Checks/p' "$DIR/check.log"
grep -E ':[EF]:' "$DIR/check.log"
reports=$(grep -cE '^==[0-9]+==ERROR|runtime error:' "$DIR/check.log")
if [ "$reports" -gt 0 ]; then
	grep -E -A30 '^==[0-9]+==ERROR|runtime error:' "$DIR/check.log" | head -n 200
	log "$reports sanitizer report(s), see $DIR/check.log"
	rc=1
fi
if [ "$rc" != 0 ]; then
	log "FAIL after $((SECONDS - t0))s, see $DIR/check.log and $DIR/obj/tests/test-suite.log"
	exit 1
fi
log "PASS in $((SECONDS - t0))s (unit tests with $CC $SAN)"
