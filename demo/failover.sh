#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The failover demo: a peer with an IKEv2 tunnel to a two-node cluster's
# virtual IP, node a active and b standby with the SAs synced; pings both
# ways; a's charon killed with SIGKILL, the VIP moved to b and b promoted.
# Prints what happens and the counts.
# Usage: bash demo/failover.sh (as root, after a build)
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
: "${E2E_PRELOAD:=$TOP/plugin/.libs/libstrongswan-sasync.so}"
: "${SASYNC_CTL:=$TOP/tools/sasyncctl}"
: "${E2E_PREFIX:=demo}"
export E2E_PRELOAD SASYNC_CTL E2E_PREFIX

# shellcheck source=tests/e2e/sasync.sh
. "$TOP/tests/e2e/sasync.sh"

say() { printf '\n== %s\n' "$*"; }

e2e_init
say "cluster up: peer 198.18.0.2 -> VIP 198.18.0.100 (a primary, b standby)"
sasync_cluster_up
e2e_wait_for "b has the same SAs" 10 sasync_synced a b || e2e_fail "sync to b"
echo "peer  IKE SPIs $(e2e_ike_spis peer), CHILD SPIs $(e2e_child_spis peer)"
echo "a     IKE SPIs $(e2e_ike_spis a), CHILD SPIs $(e2e_child_spis a)"
echo "b     IKE SPIs $(e2e_ike_spis b), CHILD SPIs $(e2e_child_spis b) ($(e2e_sa_field b state))"

say "pings at 10 pps both ways: LAN 198.18.2.10 <-> peer subnet 198.18.1.1"
e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings before failover"
e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings before failover"
echo "$(e2e_ping_replies l2p) and $(e2e_ping_replies p2l) replies so far"

say "failover: kill -9 a's charon, move the VIP to b, sasyncctl promote on b"
sasync_failover
sasync_ctl b status

e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan after failover"
e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer after failover"
e2e_ping_stop l2p
e2e_ping_stop p2l

say "traffic carried on"
for name in l2p p2l; do
	read -r tx rx lost <<<"$(e2e_ping_stats "$name")"
	echo "ping $name: sent $tx, received $rx, lost $lost, longest gap $(e2e_ping_max_gap "$name") ms"
done
child_after=$(e2e_sas_raw peer | e2e_line_newest_child | awk '{print $3, $4}')
echo "peer IKE SPIs now $(e2e_ike_spis peer) (the same IKE SA)"
echo "peer's newest CHILD SA: SPIs $child_after (b rekeyed it on its first outbound packet)"
echo "IKE_SA_INIT exchanges started by the peer: $(e2e_count_in_log peer "initiating IKE_SA")"

say "counters on b (sasyncctl stats, over the plugin's vici socket)"
sasync_ctl b stats
say "done: the peer never re-authenticated"
