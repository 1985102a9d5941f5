#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# MOBIKE: peer and cluster negotiate MOBIKE (mobike = yes on both sides).
# The peer's address moves (198.18.0.2 -> 198.18.0.3) before the failover;
# the peer's MOBIKE UPDATE_SA_ADDRESSES moves the SA on the active node, and
# the standby must learn the new address, so after the failover the tunnel
# carries on towards the new address (same IKE SA, pings both ways). The
# cluster's endpoint must stay the VIP throughout: the capture on the peer
# must show no IKE or ESP packet from a node address (198.18.0.11/.12), and
# the cluster must not offer the peer other addresses as MOBIKE alternatives.
# checks are eval'd strings; variables they use look unused to shellcheck
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

E2E_MOBIKE=yes

excerpt() {
	echo "    --- $1 charon log /$2/:"
	grep -E -- "$2" "$(e2e_log "$1")" 2>/dev/null | tail -n "${3:-8}" | sed 's/^/    /'
}

pings_both_ways() {
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10 &&
		e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 10
}

# ike_from PCAP ADDR: IKE/ESP packets (UDP 500/4500) from ADDR in PCAP
ike_from() {
	tcpdump -n -r "$1" "udp and (port 500 or port 4500) and src host $2" 2>/dev/null | grep -c .
}

e2e_init
e2e_topo_up || e2e_fail "topology up"
# capture everything IKE/ESP the peer sees, from the first IKE_SA_INIT on
e2e_capture_start peer peer ext0 udp port 500 or udp port 4500 ||
	e2e_fail "capture on the peer"
e2e_charon_start peer || e2e_fail "charon on peer"
# the peer's address changes: neither side pins it
E2E_PEER_EXT=%any e2e_swanctl_load peer peer.conf || e2e_fail "load peer.conf"
E2E_PEER_EXT=%any sasync_start a primary || e2e_fail "charon with sasync on a"
E2E_PEER_EXT=%any sasync_start b standby || e2e_fail "charon with sasync on b"
e2e_initiate peer || e2e_fail "initiate from peer"
e2e_wait_for "SA up on peer" 10 e2e_sa_up peer || e2e_fail "SA up on peer"
e2e_wait_for "SA up on a" 10 e2e_sa_up a || e2e_fail "SA up on a"
e2e_check "MOBIKE negotiated (N(MOBIKE_SUP) in the IKE_AUTH response)" \
	eval '[ "$(e2e_count_in_log peer "parsed IKE_AUTH response .*N\(MOBIKE_SUP\)")" -ge 1 ]'
e2e_wait_for "b has the same IKE and CHILD SPIs" 10 sasync_synced a b ||
	e2e_fail "SAs synced to b"
e2e_pass "SAs synced to b"
pings_both_ways || e2e_fail "pings lan <-> peer before the move"
e2e_pass "pings lan <-> peer before the move"

# ---- the peer moves
old=$(e2e_addr_move peer "$E2E_PEER_EXT2") || e2e_fail "peer address moved"
echo "peer moved from $old to $E2E_PEER_EXT2"
e2e_wait_for "a has the peer's new address" 10 \
	eval '[ "$(e2e_ike_field a remote-host)" = "$E2E_PEER_EXT2" ]' ||
	e2e_fail "a follows the peer's MOBIKE update (a: $(e2e_ike_field a remote-host))"
e2e_pass "a follows the peer's MOBIKE update to $E2E_PEER_EXT2"
e2e_check "traffic lan <-> peer through a after the move" pings_both_ways
e2e_wait_for "b has the peer's new address" 10 \
	eval '[ "$(e2e_ike_field b remote-host)" = "$E2E_PEER_EXT2" ]'
e2e_expect "b has the peer's new address $E2E_PEER_EXT2 before the failover" \
	eval '[ "$(e2e_ike_field b remote-host)" = "$E2E_PEER_EXT2" ]' || {
	echo "    b: remote-host=$(e2e_ike_field b remote-host)"
	excerpt a "UPDATE_SA_ADDRESSES|endpoint changed|sasync: "
	excerpt b "sasync: (restored|updated)"
}
ike_before=$(e2e_ike_spis peer)

# ---- failover
e2e_capture_start after peer ext0 udp port 500 or udp port 4500 ||
	e2e_fail "capture on the peer for the failover"
sasync_failover
e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
e2e_expect "right after the failover b has the peer at $E2E_PEER_EXT2" \
	eval '[ "$(e2e_ike_field b remote-host)" = "$E2E_PEER_EXT2" ]' ||
	echo "    b: remote-host=$(e2e_ike_field b remote-host)"
e2e_expect "pings lan -> peer flow through b" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10
e2e_expect "pings peer -> lan flow through b" \
	e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 10
e2e_expect "peer kept its IKE SA (same SPIs)" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ]'
e2e_expect "peer sent IKE_SA_INIT only once" \
	eval '[ "$(e2e_count_in_log peer "initiating IKE_SA")" -eq 1 ]'
e2e_expect "peer still talks to the VIP" \
	eval '[ "$(e2e_ike_field peer remote-host)" = "$E2E_VIP_EXT" ]' ||
	echo "    peer: remote-host=$(e2e_ike_field peer remote-host)"

# ---- the cluster's endpoint stayed the VIP
e2e_capture_stop peer
e2e_capture_stop after
pcap=$(_e2e_pcap peer)
from_a=$(ike_from "$pcap" "$E2E_A_EXT")
from_b=$(ike_from "$pcap" "$E2E_B_EXT")
from_vip=$(ike_from "$pcap" "$E2E_VIP_EXT")
vip_to_new=$(tcpdump -n -r "$(_e2e_pcap after)" "udp and src host $E2E_VIP_EXT and dst host $E2E_PEER_EXT2" 2>/dev/null | grep -c .)
echo "IKE/ESP packets to the peer: from the VIP $from_vip," \
	"from a's address $from_a, from b's address $from_b;" \
	"after the failover $vip_to_new from the VIP to $E2E_PEER_EXT2"
e2e_expect "no IKE/ESP packet to the peer from a node address ($E2E_A_EXT, $E2E_B_EXT)" \
	[ "$((from_a + from_b))" -eq 0 ] || {
	tcpdump -n -r "$pcap" "udp and (src host $E2E_A_EXT or src host $E2E_B_EXT)" 2>/dev/null |
		head -n 5 | sed 's/^/    /'
	excerpt peer "ADDITIONAL|ADD_4_ADDR|UPDATE_SA_ADDR|path|endpoint changed"
}
e2e_expect "after the failover the VIP sent to the peer's new address" [ "$vip_to_new" -gt 0 ]
# The capture only catches a node address when the peer's probe to it wins
# the race against the one to the VIP. The cause is deterministic: MOBIKE
# address lists (ADDITIONAL_IP4_ADDRESS) from the cluster name the other
# addresses of the node that sent them, i.e. node addresses, and a peer that
# has to look for a new path probes all of them.
add_addr=$(grep -E "parsed .*(response|request)" "$(e2e_log peer)" | grep -o 'N(ADD_4_ADDR)' | grep -c .)
e2e_expect "the cluster offers the peer no address besides the VIP (no ADDITIONAL_IP4_ADDRESS)" \
	[ "$add_addr" -eq 0 ] || {
	echo "    the peer got $add_addr ADDITIONAL_IP4_ADDRESS notifies"
	excerpt peer "ADD_4_ADDR|checking path"
}

echo "runtime: $(e2e_elapsed)s"
[ "$E2E_FAILED" -gt 0 ] && _e2e_dump_logs >&2
e2e_summary
