#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# IKEv2 failover: the peer's tunnel to the cluster VIP survives kill -9 of the
# active node. The standby has the same SAs beforehand; after promotion
# traffic flows both ways, the peer keeps its IKE SA, the first outbound
# packet forces a CHILD rekey without reusing a sequence number, and DPD
# and an IKE rekey started by the peer both succeed.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

E2E_DPD_DELAY=2s
e2e_init
sasync_cluster_synced
e2e_check "b shows the IKE SA as PASSIVE" \
	eval '[ "$(e2e_sa_field b state)" = PASSIVE ]'
ike_before=$(e2e_ike_spis peer)
child_before=$(e2e_child_spis peer)
echo "peer IKE SPIs: $ike_before, CHILD SPIs: $child_before"

e2e_capture_start esp peer ext0 udp port 4500 || e2e_fail "capture on peer"
e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer before failover"
e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan before failover"

sasync_failover
e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
sasync_pings_resume

e2e_wait_for "b resynced message IDs with the peer (RFC 6311)" 10 \
	eval '[ "$(sasync_stat b mid-sync-rfc6311)" -ge 1 ] && [ "$(e2e_count_in_log peer "responder requested MID sync")" -ge 1 ]' ||
	e2e_fail "RFC 6311 message ID sync"
e2e_check "peer kept its IKE SA (same SPIs)" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ]'
e2e_check "peer sent IKE_SA_INIT only once" \
	eval '[ "$(e2e_count_in_log peer "sending packet.*\[IKE_SA_INIT|generating IKE_SA_INIT request")" -le 2 ] &&
		  [ "$(e2e_count_in_log peer "initiating IKE_SA")" -eq 1 ]'
e2e_check "b forced a CHILD rekey on first outbound traffic" \
	eval '[ "$(e2e_count_in_log b "first outbound packet on restored CHILD_SA")" -ge 1 ] &&
		  [ "$(sasync_stat b forced-rekeys)" -ge 1 ]'
e2e_wait_for "CHILD SA rekeyed on the peer" 10 \
	eval '[ -n "$(e2e_child_spis peer)" ] && [ "$(e2e_child_spis peer)" != "$child_before" ]' ||
	e2e_fail "CHILD SA rekeyed"

e2e_capture_stop esp
reuse=$(sasync_esp_reuse "$(_e2e_pcap esp)" "$E2E_VIP_EXT")
echo "ESP packets from the VIP with a reused (SPI, sequence): ${reuse:-none}"
e2e_check "no ESP sequence number reaches the peer twice" [ -z "$reuse" ]

# DPD from the peer: once the pings stop, an empty INFORMATIONAL after 2s
# of silence, which b must answer with the right message ID
dpd_sent=$(e2e_count_in_log peer "sending DPD request")
info_rx=$(e2e_count_in_log peer "parsed INFORMATIONAL response")
e2e_wait_for "peer sends a DPD request" 15 \
	eval '[ "$(e2e_count_in_log peer "sending DPD request")" -gt "$dpd_sent" ]' ||
	e2e_fail "DPD request from the peer"
e2e_wait_for "b answers the DPD" 10 \
	eval '[ "$(e2e_count_in_log peer "parsed INFORMATIONAL response")" -gt "$info_rx" ]' ||
	e2e_fail "DPD answered by b"
e2e_check "peer never retransmitted a request to b" \
	eval '[ "$(e2e_count_in_log peer "retransmit [0-9]+ of request")" -eq 0 ]'
# a rekey (swanctl's --reauth is a flag: with it, this would reauthenticate)
e2e_check "rekey of the IKE SA started by the peer succeeds" \
	e2e_swanctl peer --rekey --ike "$E2E_CONN"
e2e_wait_for "peer has a new IKE SA with b" 10 \
	eval '[ -n "$(e2e_ike_spis peer)" ] && [ "$(e2e_ike_spis peer)" != "$ike_before" ] && [ "$(e2e_sa_field peer state)" = ESTABLISHED ]' ||
	e2e_fail "IKE rekey by the peer"
e2e_check "b has the rekeyed IKE SA" \
	eval '[ "$(e2e_ike_spis b)" = "$(e2e_ike_spis peer)" ]'
e2e_check "tunnel carries traffic after the IKE rekey" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5

e2e_summary
