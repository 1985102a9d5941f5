#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan and UBSan
# too) in a separate tree (build-fuzz/, see tests/build-tree.sh; the
# in-tree build is not touched), writes their seed corpora with the real
# encoders (tests/fuzz/seeds.c), and runs each target for a bounded time.
# Fails on any crash, sanitizer report, leak, timeout or failed assertion;
# the input that did it is kept in build-fuzz/artifacts/. Prints the
# executions of each target.
#
# Usage: tests/fuzz/run.sh
# Environment:
#   FUZZ_SECONDS=S     run time of each target (default 30)
#   FUZZ_TARGETS="..." targets to run (default: record frame vici)
#   FUZZ_DIR=DIR       build tree (default: build-fuzz in the checkout); its
#                      corpus/ grows from run to run, the rest is rebuilt
#   FUZZ_ARGS="..."    more libFuzzer options (e.g. -jobs=2 -workers=2)
# Reproduce a crash: build-fuzz/obj/tests/fuzz/fuzz_TARGET ARTIFACT
set -uo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${FUZZ_DIR:-$TOP/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
TARGETS=${FUZZ_TARGETS:-record frame vici}
t0=$SECONDS

log() { echo "[fuzz] $*"; }
die() { log "FAIL: $*"; exit 1; }

command -v clang >/dev/null 2>&1 ||
	die "clang not found: scripts/setup.sh installs it (Debian packages clang libclang-rt-14-dev)"

# -fsanitize=fuzzer-no-link: coverage for libFuzzer in all of our code, not
# only in the targets.
SAN="-fsanitize=fuzzer-no-link,address,undefined"
bash "$TOP/tests/build-tree.sh" "$DIR" CC=clang --enable-werror \
	CFLAGS="-g -O1 $SAN -fno-sanitize-recover=all -fno-omit-frame-pointer" ||
	exit 1
log "building the targets with clang $SAN"
{ make -C "$DIR/obj/plugin" -j2 libsasync.la &&
  make -C "$DIR/obj/tests" -j2 fuzz; } >"$DIR/make.log" 2>&1 || {
	tail -n 40 "$DIR/make.log"
	die "the build failed, see $DIR/make.log"
}
bin=$DIR/obj/tests/fuzz

rm -rf "$DIR/seeds"
"$bin/seeds" "$DIR/seeds" || die "writing the seeds failed"

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir -p "$DIR/artifacts"
failed=0
for t in $TARGETS; do
	[ -x "$bin/fuzz_$t" ] || die "no target fuzz_$t (targets: record frame vici)"
	mkdir -p "$DIR/corpus/$t"
	log "fuzz_$t for ${SECONDS_EACH}s"
	# the corpus directory first: libFuzzer adds what it finds there
	# shellcheck disable=SC2086  # FUZZ_ARGS are words
	"$bin/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$DIR/artifacts/$t-" ${FUZZ_ARGS:-} \
		"$DIR/corpus/$t" "$DIR/seeds/$t" >"$DIR/$t.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$DIR/$t.log" | tail -n 1)
	secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$DIR/$t.log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' "$DIR/$t.log" | tail -n 1)
	if [ "$rc" != 0 ]; then
		grep -E -B2 -A40 '^==[0-9]+==ERROR|runtime error:|fuzz assertion|deadly signal|ERROR: libFuzzer' \
			"$DIR/$t.log" | head -n 80
		grep -E '^artifact_prefix|Test unit written to' "$DIR/$t.log"
		log "FAIL: fuzz_$t (exit $rc, ${execs:-?} executions), see $DIR/$t.log"
		failed=$((failed + 1))
		continue
	fi
	rate=
	if [ -n "$execs" ] && [ -n "$secs" ] && [ "$secs" -gt 0 ]; then
		rate=", $((execs / secs))/s"
	fi
	log "fuzz_$t: ${execs:-?} executions in ${secs:-?}s$rate (${cov:-no coverage line})"
done
if [ "$failed" != 0 ]; then
	die "$failed target(s) failed after $((SECONDS - t0))s; reproduce with $bin/fuzz_TARGET $DIR/artifacts/FILE"
fi
log "PASS in $((SECONDS - t0))s"
