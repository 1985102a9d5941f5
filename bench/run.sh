#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The benchmark suite in one command (root, after `make`):
#
#   bash bench/run.sh            # about 12 min on 2 CPUs
#   BENCH_LONG=1 bash bench/run.sh   # plus N = 10,000 (one run each of
#                                    # plain and sasync: about 25 min more)
#
# Runs bench/b1.sh (B1 in-process at N = 1,000, 10,000, 100,000: about
# 2 min and 2.3 GB of memory; BENCH_SKIP_B1=1 leaves it out), bench/scale.sh
# at N = 1 (ha, sasync: B3's first point) and N = 1,000 (plain, ha, sasync:
# B2 to B5), with BENCH_LONG=1 also at N = 10,000, bench/mid_sync.sh (B6)
# and bench/failover_vs_ha.sh (B7); then prints the summary table of
# bench/summary.py: each target of issue 10, the measured medians, met or
# not, and draws bench/plot.py's PNGs (b1.png; scale.png with BENCH_LONG=1).
# Results (CSV, JSON, the failover_vs_ha output, summary.md, the PNGs) go to
# BENCH_OUT (bench/results). BENCH_RUNS (3) runs per scenario; BENCH_SKIP_B7=1
# leaves failover_vs_ha.sh out.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
: "${BENCH_OUT:=$TOP/bench/results}"
: "${BENCH_RUNS:=3}"
: "${BENCH_LONG:=0}"
: "${BENCH_SKIP_B7:=0}"
: "${BENCH_SKIP_B1:=0}"
export BENCH_OUT BENCH_RUNS
mkdir -p "$BENCH_OUT" || exit 2
rm -f "$BENCH_OUT"/scale-N*.json "$BENCH_OUT/failover_vs_ha.txt" "$BENCH_OUT/b1.json"
t0=$SECONDS
rc=0

if [ "$BENCH_SKIP_B1" != 1 ]; then
	echo "== B1: b1.sh (in-process, N = 1000 10000 100000)"
	bash "$TOP/bench/b1.sh" || rc=1
fi
echo "== B3 at N = 1"
BENCH_TUNNELS=1 BENCH_SCENARIOS="ha sasync" bash "$TOP/bench/scale.sh" || rc=1
echo "== B2 to B5 at N = 1000"
BENCH_TUNNELS=1000 BENCH_SCENARIOS="plain ha sasync" bash "$TOP/bench/scale.sh" || rc=1
if [ "$BENCH_LONG" = 1 ]; then
	echo "== long mode: N = 10000"
	BENCH_TUNNELS=10000 BENCH_RUNS=1 BENCH_SCENARIOS="plain sasync" bash "$TOP/bench/scale.sh" || rc=1
fi
echo "== B6: mid_sync.sh"
bash "$TOP/bench/mid_sync.sh" || rc=1
if [ "$BENCH_SKIP_B7" != 1 ]; then
	echo "== B7: failover_vs_ha.sh"
	bash "$TOP/bench/failover_vs_ha.sh" | tee "$BENCH_OUT/failover_vs_ha.txt"
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi
echo
python3 "$TOP/bench/summary.py" "$BENCH_OUT" | tee "$BENCH_OUT/summary.md"
# the plots: gnuplot from Debian's archive, installed if missing
command -v gnuplot >/dev/null || apt-get install -y -qq gnuplot-nox >/dev/null ||
	echo "bench/run.sh: gnuplot not installed, no plots"
command -v gnuplot >/dev/null && { python3 "$TOP/bench/plot.py" "$BENCH_OUT" || rc=1; }
echo
echo "bench/run.sh: done in $((SECONDS - t0)) s, results in $BENCH_OUT"
exit $rc
