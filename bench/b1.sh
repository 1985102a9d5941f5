#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# B1: SA pairs (IKE + CHILD) applied per second on a standby, in-process
# (bench/b1.c: real capture -> codec -> link over loopback TCP with its AEAD
# -> dispatch -> apply, charon's bus and IKE_SA manager, a stand-in kernel),
# and the same records through the two links alone (the limit).
#
#   bash bench/b1.sh        # after make; about 2 min on 2 CPUs, 2.3 GB RSS
#                           # at N = 100,000; root not needed
#
# Settings:
#   BENCH_B1_N     the N to run (default "1000 10000 100000")
#   BENCH_RUNS     runs per N (3); every figure is a median
#   BENCH_OUT      results directory (bench/results): b1.csv (run, phase,
#                  n, records, bytes, seconds, pairs_per_s, us_per_pair,
#                  cpu_us_per_pair) and b1.json (medians per N)
# Exit 1 if b1 fails (a record not applied, dropped or rejected), 2 if it
# can't be built.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
: "${BENCH_OUT:=$TOP/bench/results}"
: "${BENCH_RUNS:=3}"
: "${BENCH_B1_N:=1000 10000 100000}"

make -s -C "$TOP/bench" b1 || { echo "b1.sh: can't build bench/b1 (run configure and make first)"; exit 2; }
mkdir -p "$BENCH_OUT" || exit 2
csv=$BENCH_OUT/b1.csv
echo "run,phase,n,records,bytes,seconds,pairs_per_s,us_per_pair,cpu_us_per_pair" > "$csv"
tmp=$(mktemp) || exit 2
trap 'rm -f "$tmp"' EXIT
rc=0
for run in $(seq 1 "$BENCH_RUNS"); do
	for n in $BENCH_B1_N; do
		: > "$tmp"
		if ! "$TOP/bench/b1" "$n" "$tmp"; then
			echo "b1.sh: run $run at N = $n failed"
			rc=1
			continue
		fi
		sed "s/^/$run,/" "$tmp" >> "$csv"
	done
done

python3 - "$csv" "$BENCH_OUT/b1.json" <<'EOF'
import csv, json, platform, statistics, sys, time

rows = list(csv.DictReader(open(sys.argv[1])))
med = {}
for n in sorted({int(r["n"]) for r in rows}):
    med[n] = {}
    for phase in ("capture", "apply", "limit"):
        sel = [r for r in rows if int(r["n"]) == n and r["phase"] == phase]
        if sel:
            med[n][phase] = {k: statistics.median(float(r[k]) for r in sel)
                             for k in ("seconds", "pairs_per_s", "us_per_pair",
                                       "cpu_us_per_pair")}
            med[n][phase]["runs"] = len(sel)
model = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": "%s, %s" % (model, platform.machine()),
           "medians": {str(n): m for n, m in med.items()}},
          open(sys.argv[2], "w"), indent=1)
print("B1 medians (%s)" % sys.argv[1])
print("| N | applied pairs/s | us/pair (CPU) | limit pairs/s | apply / limit | capture us/pair |")
print("|---|---|---|---|---|---|")
for n, m in med.items():
    a, l, c = m.get("apply"), m.get("limit"), m.get("capture")
    if not a or not l:
        continue
    print("| %d | %.0f | %.1f (%.1f) | %.0f | %.1f %% | %.1f |" % (
        n, a["pairs_per_s"], a["us_per_pair"], a["cpu_us_per_pair"],
        l["pairs_per_s"], 100 * a["pairs_per_s"] / l["pairs_per_s"],
        c["us_per_pair"] if c else float("nan")))
EOF
exit $rc
