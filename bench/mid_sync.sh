#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# B6: sync records per DPD exchange. One IKEv2 tunnel from the peer (which
# supports RFC 6311) to the cluster, the peer running DPD every second for
# BENCH_DPD_S seconds (default 20); counted on the active node a:
#   sasync, mid_sync = every-exchange  message ID records (counter mid-sync)
#   sasync, mid_sync = coalesced       the same (mid-sync-coalesced: held back)
#   ha                                 HA_IKE_MID_* messages on its UDP port
#                                      (a capture; no ha secret, so readable)
# per DPD exchange the peer started, and the ratio coalesced / every-exchange
# and ha / every-exchange. Results in bench/results/mid_sync.csv.
# As root, after make; about 2 minutes. BENCH_KEEP=1 keeps logs and pcaps.
# the e2e helpers read the variables set here; polled conditions
# shellcheck disable=SC2034,SC2016
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
: "${BENCH_DPD_S:=20}"
: "${BENCH_KEEP:=0}"
E2E_KEEP=$BENCH_KEEP
BENCH_SASYNC_SO=${E2E_PRELOAD:-$TOP/plugin/.libs/libstrongswan-sasync.so}
# shellcheck source=tests/e2e/sasync.sh
. "$TOP/tests/e2e/sasync.sh"
# ha's messages must be readable in the capture
BENCH_HA_SECRET=
# shellcheck source=bench/ha.sh
. "$TOP/bench/ha.sh"

RESULTS=$TOP/bench/results
mkdir -p "$RESULTS"
E2E_DPD_DELAY=1s

# dpd_window: let the peer run DPD for BENCH_DPD_S seconds; prints the
# number of DPD exchanges it started
dpd_window() {
	local d0
	d0=$(e2e_count_in_log peer "sending DPD request")
	sleep "$BENCH_DPD_S"
	echo $(($(e2e_count_in_log peer "sending DPD request") - d0))
}

# run_sasync MODE: records per DPD exchange with mid_sync = MODE
run_sasync() {
	local m0 dpds
	E2E_PRELOAD=$BENCH_SASYNC_SO
	SASYNC_EXTRA_CONF="		mid_sync = $1"
	sasync_cluster_synced
	m0=$(sasync_stat a mid-sync)
	dpds=$(dpd_window)
	echo "$1 $dpds $(($(sasync_stat a mid-sync) - m0))"
	sasync_reset
}

# ha_mid_count PCAP: HA_IKE_MID_INITIATOR/RESPONDER messages in a capture
ha_mid_count() {
	python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
pos, count = 24, 0
while pos + 16 <= len(data):
    incl = struct.unpack("<I", data[pos + 8:pos + 12])[0]
    pkt = data[pos + 16:pos + 16 + incl]
    pos += 16 + incl
    # Ethernet, IPv4 (IHL), UDP: the ha message is version, type, ...
    ihl = (pkt[14] & 0x0f) * 4
    payload = pkt[14 + ihl + 8:]
    if len(payload) >= 2 and payload[1] in (3, 4):
        count += 1
print(count)
PY
}

run_ha() {
	local dpds
	E2E_PRELOAD=
	ha_cluster_up
	e2e_wait_for "b has a's SAs (ha)" 10 ha_synced || e2e_fail "ha synced"
	e2e_capture_start ha a lan0 --immediate-mode udp port 4510 ||
		e2e_fail "capture on a"
	dpds=$(dpd_window)
	e2e_capture_stop ha
	echo "ha $dpds $(ha_mid_count "$(_e2e_pcap ha)")"
	sasync_reset
}

e2e_init
[ -f "$BENCH_SASYNC_SO" ] || e2e_fail "$BENCH_SASYNC_SO missing (make)"
{
	run_sasync every-exchange
	run_sasync coalesced
	run_ha
} >"$RESULTS/mid_sync.raw"
echo "scenario,dpd_exchanges,records,records_per_dpd" >"$RESULTS/mid_sync.csv"
awk '{ printf "%s,%d,%d,%.3f\n", $1, $2, $3, $2 ? $3 / $2 : 0 }' \
	"$RESULTS/mid_sync.raw" >>"$RESULTS/mid_sync.csv"
echo "B6: sync records per DPD exchange (peer DPD every 1 s for ${BENCH_DPD_S} s)"
awk -F, 'NR > 1 { r[$1] = $4; printf "  %-15s %3d DPD exchanges, %3d records, %.3f per DPD\n", $1, $2, $3, $4 }
	END { if (r["every-exchange"] > 0)
		printf "  ratio coalesced / every-exchange: %.3f, ha / every-exchange: %.2f (target: coalesced <= 0.1 per DPD)\n",
			r["coalesced"] / r["every-exchange"], r["ha"] / r["every-exchange"] }' \
	"$RESULTS/mid_sync.csv"
e2e_summary >/dev/null
