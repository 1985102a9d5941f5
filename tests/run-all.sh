#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs every test of strongswan-sasync: the single entry point for CI
# (.ci/run) and for developers. As root on a fresh Debian 12 it
#   1. installs packages and prepares the strongSwan headers (scripts/setup.sh)
#   2. autoreconf -fi (when configure is missing or older than its inputs)
#   3. ./configure
#   4. make -j2              (-Werror when building from git)
#   5. make lint             (shellcheck on every script), beside 6.
#   6. make check            (unit tests, libcheck)
#   7. tests/fuzz/run.sh     (libFuzzer targets of the decoders, FUZZ_SECONDS
#                            each, built with clang in build-fuzz/), beside 8.
#   8. make check-valgrind   (unit tests under valgrind, CK_FORK=no)
#   9. tests/sanitize.sh     (unit tests built with ASan+UBSan, in build-asan/)
#  10. bash tests/e2e/test_*.sh, each with a timeout
# and ends with exactly one line "N passed, N failed" (", N skipped" when
# something was skipped); exits non-zero if anything failed.
#
# Environment:
#   SASYNC_SKIP_SETUP=1     don't run scripts/setup.sh
#   SASYNC_SKIP_E2E=1       don't run the end-to-end tests
#   SASYNC_CONFIGURE_ARGS   extra ./configure arguments
#   E2E_FILTER=GLOB         only tests/e2e/test_GLOB.sh (default: *)
#   SASYNC_LONG=1           long modes: the long tests of E2E_LONG_TESTS
#                           (skipped and listed otherwise), the churn soak
#                           runs 20 failovers instead of 8
#   E2E_TIMEOUT=S           limit for one e2e script (default 420 s, 1800 s
#                           with SASYNC_LONG=1)
#   E2E_BUDGET=S            limit for all e2e scripts together (default 2400 s);
#                           scripts not started within it count as failed
#   UNIT_TIMEOUT=S          limit for make check (default 600 s)
#   VALGRIND_TIMEOUT=S      limit for the valgrind run (default 300 s)
#   SANITIZE_TIMEOUT=S      limit for tests/sanitize.sh (default 450 s)
#   FUZZ_SECONDS=S          run time of each fuzz target (default 15 s)
#   FUZZ_TIMEOUT=S          limit for tests/fuzz/run.sh (default 300 s)
# shellcheck disable=SC2317  # functions run through step(); finish() exits
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1

export SASYNC_LONG=${SASYNC_LONG:-0}
if [ "$SASYNC_LONG" = 1 ]; then
	E2E_TIMEOUT=${E2E_TIMEOUT:-1800}
else
	E2E_TIMEOUT=${E2E_TIMEOUT:-420}
fi
E2E_BUDGET=${E2E_BUDGET:-2400}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-600}
SANITIZE_TIMEOUT=${SANITIZE_TIMEOUT:-450}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-300}
# 15 s each: the fuzz stage then takes no longer than valgrind beside it
export FUZZ_SECONDS=${FUZZ_SECONDS:-15}
export VALGRIND_TIMEOUT=${VALGRIND_TIMEOUT:-300}
E2E_FILTER=${E2E_FILTER:-*}
# long tests, not in a default run (none at present: the churn soak runs
# its bounded mode, 8 failovers, in every run and 20 with SASYNC_LONG=1)
E2E_LONG_TESTS=""

passed=0
failed=0
skipped=0
failures=()
t_start=$SECONDS

banner() { printf '\n===== %s =====\n' "$*"; }

record() { # record NAME RC SECONDS
	if [ "$2" = 0 ]; then
		passed=$((passed + 1))
		echo "----- PASS: $1 (${3}s)"
	else
		failed=$((failed + 1))
		failures+=("$1")
		echo "----- FAIL: $1 (exit $2, ${3}s)"
	fi
}

# step NAME CMD...: run one stage, record its outcome; returns its status
step() {
	local name=$1 rc t0=$SECONDS
	shift
	banner "$name"
	"$@"
	rc=$?
	record "$name" "$rc" $((SECONDS - t0))
	return "$rc"
}

# beside NAME CMD...: start a stage in the background, its output kept
# until joined() waits for it and records it
beside() {
	beside_name=$1
	shift
	beside_log=$(mktemp)
	beside_t0=$SECONDS
	"$@" >"$beside_log" 2>&1 &
	beside_pid=$!
}

joined() {
	local rc
	wait "$beside_pid"
	rc=$?
	banner "$beside_name"
	cat "$beside_log"
	rm -f "$beside_log"
	record "$beside_name" "$rc" $((SECONDS - beside_t0))
}

skip() {
	skipped=$((skipped + 1))
	echo "----- SKIP: $*"
}

finish() {
	banner "summary ($((SECONDS - t_start))s)"
	local f
	for f in "${failures[@]+"${failures[@]}"}"; do
		echo "failed: $f"
	done
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
	[ "$failed" = 0 ]
	exit $?
}

needs_autoreconf() {
	local f
	[ -x configure ] || return 0
	[ -f Makefile.in ] || return 0
	for f in configure.ac m4/strongswan.m4; do
		[ "$f" -nt configure ] && return 0
	done
	for f in Makefile.am */Makefile.am; do
		[ "$f" -nt "${f%.am}.in" ] && return 0
	done
	return 1
}

do_autoreconf() {
	if needs_autoreconf; then
		autoreconf -fi
	else
		echo "configure is up to date"
	fi
}

# ------------------------------------------------------------ build + unit
if [ "${SASYNC_SKIP_SETUP:-0}" = 1 ]; then
	skip "scripts/setup.sh (SASYNC_SKIP_SETUP=1)"
elif [ "$(id -u)" != 0 ]; then
	skip "scripts/setup.sh (needs root)"
else
	step "setup" bash scripts/setup.sh || finish
fi

step "autoreconf" do_autoreconf || finish
# shellcheck disable=SC2086
step "configure" ./configure ${SASYNC_CONFIGURE_ARGS:-} || finish
step "make" make -j2 || finish
# Two pairs of stages run side by side, each taking about the time of the
# longer one: shellcheck keeps both CPUs busy while the unit tests mostly
# wait (link timeouts, jobs); the fuzz targets and valgrind take one CPU
# each. The stage beside prints its output after the other's.
beside "make lint (shellcheck)" make lint
step "make check (unit tests)" timeout -k 10 "$UNIT_TIMEOUT" make check
joined
beside "fuzz targets (${FUZZ_SECONDS}s each)" \
	timeout -k 10 "$FUZZ_TIMEOUT" bash tests/fuzz/run.sh
step "unit tests under valgrind" make check-valgrind
joined
step "unit tests under ASan+UBSan" \
	timeout -k 10 "$SANITIZE_TIMEOUT" bash tests/sanitize.sh

# ------------------------------------------------------------ end to end
if [ "${SASYNC_SKIP_E2E:-0}" = 1 ]; then
	skip "end-to-end tests (SASYNC_SKIP_E2E=1)"
	finish
fi

E2E_PRELOAD=$TOP/plugin/.libs/libstrongswan-sasync.so
export E2E_PRELOAD

shopt -s nullglob
# shellcheck disable=SC2206  # the glob is meant
e2e_tests=(tests/e2e/test_$E2E_FILTER.sh)
shopt -u nullglob
if [ ${#e2e_tests[@]} = 0 ]; then
	skip "end-to-end tests (none match tests/e2e/test_$E2E_FILTER.sh)"
fi

e2e_t0=$SECONDS
for t in "${e2e_tests[@]}"; do
	name="e2e $(basename "$t" .sh)"
	if [ "$SASYNC_LONG" != 1 ] && [[ " $E2E_LONG_TESTS " == *" $(basename "$t" .sh) "* ]]; then
		skip "$name (long test: SASYNC_LONG=1 runs it)"
		continue
	fi
	if [ $((SECONDS - e2e_t0)) -ge "$E2E_BUDGET" ]; then
		banner "$name"
		echo "not started: the e2e budget of ${E2E_BUDGET}s is used up"
		record "$name" budget 0
		continue
	fi
	# SIGTERM lets lib.sh tear the namespaces down; SIGKILL 20 s later
	step "$name" timeout -k 20 "$E2E_TIMEOUT" bash "$t" </dev/null
	rc=$?
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "$name: timed out after ${E2E_TIMEOUT}s"
	fi
done

finish
