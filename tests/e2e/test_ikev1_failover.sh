#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# IKEv1 failover: a Main Mode PSK site tunnel from the peer to the cluster
# VIP survives kill -9 of the active node. The standby has the same ISAKMP SA
# (cookies) and IPsec SA SPIs beforehand. After promotion inbound ESP is
# accepted at once, the first outbound packet forces a Quick Mode rekey (no
# ESP sequence number reaches the peer twice), the peer keeps its ISAKMP SA
# (one Main Mode only), and DPD (R_U_THERE / R_U_THERE_ACK) works:
#   phase 1: the peer runs DPD against the promoted node;
#   phase 2: the cluster runs DPD, a before the failover and b after it, and
#            b's R_U_THERE sequence numbers continue a's (the peer's log is at
#            enc = 3 so the sequence numbers can be read from it).
# Checks after the failover do not stop the test, so one run lists every
# check that fails; the exit status is 1 if any did.
# checks run through eval in single quotes, which also reads the variables
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/ikev1.sh
. "$(dirname "$0")/ikev1.sh"

# libipsec logs each ESP header it parses: evidence of inbound ESP on the
# restored SA even when b rekeys it away before a poll sees its counters
E2E_LOG_EXTRA="			esp = 2"

# b_took_inbound: the peer's ESP on the restored SA was accepted by b
b_took_inbound() { ikev1_took_inbound b "${child_before#* }"; }

# failover_traffic: 10 pps pings both ways, capture, failover, the checks
# on traffic, rekey and the ISAKMP SA; sets ike_before/child_before
failover_traffic() {
	e2e_capture_start esp peer ext0 udp port 4500 || e2e_fail "capture on peer"
	e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
	e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
	e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer before failover"
	e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan before failover"
	e2e_wait_for "a's sync frames all accepted by b" 10 sasync_sync_idle ||
		e2e_fail "sync link idle before the failover"

	mark_peer=$(ikev1_mark peer)
	mark_b=$(ikev1_mark b)
	# only the peer sends across the failover, so the first packet b sees is
	# inbound ESP on the restored SA (otherwise a LAN packet may force the
	# rekey first and the peer never uses the restored SA again); the
	# round-trip pings peer -> lan measure the outage of both directions
	e2e_ping_stop l2p
	# R_U_THEREs from a so far (phase 2): counted here, as b may send its
	# first one before failover_traffic returns on a slow machine
	n_before=$(ikev1_dpd_seqs_rx peer | wc -l)
	sasync_failover
	e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
	# inbound: the peer's ESP on the synced SA is accepted by b (packets-in
	# of b's restored SA, whose inbound SPI is the peer's outbound one)
	ikev1_check "b accepts inbound ESP on the restored IPsec SA" \
		e2e_wait_for "inbound ESP accepted on b's restored SA" 10 \
		b_took_inbound ||
		ikev1_log_excerpt b "sasync|CHILD_SA|QUICK_MODE"
	ikev1_check "pings peer -> lan resume after the failover" \
		e2e_wait_ping_replies p2l 20 10
	e2e_ping_start l2p2 lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
	ikev1_check "pings lan -> peer flow after the failover" \
		e2e_wait_ping_replies l2p2 20 10
	e2e_ping_stop l2p2
	e2e_ping_stop p2l
	e2e_ping_report l2p l2p2 p2l

	ikev1_check "b forced a Quick Mode rekey on the first outbound packet" \
		eval '[ "$(e2e_count_in_log b "first outbound packet on restored CHILD_SA")" -ge 1 ] &&
			  [ "$(sasync_stat b forced-rekeys)" -ge 1 ]' ||
		ikev1_log_excerpt b "sasync|QUICK_MODE|CHILD_SA"
	ikev1_check "peer has a new IPsec SA (new SPIs) from a Quick Mode with b" \
		e2e_wait_for "new CHILD SA on the peer" 10 ikev1_has_new_child peer "$child_before" ||
		ikev1_log_excerpt peer "QUICK_MODE|CHILD_SA|INFORMATIONAL_V1|retransmit"
	echo "peer CHILD SAs now (in out): $(ikev1_child_spis_all peer | paste -sd,)"
	ikev1_check "peer kept its ISAKMP SA (same cookies)" \
		eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ] && [ "$(e2e_ike_field peer state)" = ESTABLISHED ]' ||
		ikev1_log_excerpt peer "IKE_SA|Main Mode|DELETE"
	ikev1_check "peer ran only one Main Mode" \
		eval '[ "$(e2e_count_in_log peer "initiating Main Mode")" -eq 1 ] && [ "$(ikev1_phase1_count peer)" -eq 1 ]' ||
		ikev1_log_excerpt peer "initiating (Main|Aggressive) Mode"

	e2e_capture_stop esp
	reuse=$(sasync_esp_reuse "$(_e2e_pcap esp)" "$E2E_VIP_EXT")
	echo "ESP packets from the VIP with a reused (SPI, sequence): ${reuse:-none}"
	ikev1_check "no ESP (SPI, sequence) from the VIP reaches the peer twice" [ -z "$reuse" ]
}

# synced_setup: tunnel up, SAs on b, before-values
synced_setup() {
	ikev1_cluster_up
	e2e_check "the tunnel is IKEv1 (Main Mode)" \
		eval '[ "$(ikev1_version peer)" = 1 ] && [ "$(e2e_count_in_log peer "initiating Main Mode")" -eq 1 ]'
	e2e_wait_for "b has the same ISAKMP SA cookies and IPsec SA SPIs" 10 sasync_synced a b ||
		ikev1_fail "ISAKMP and IPsec SAs synced to b" b:"sasync" a:"sasync"
	e2e_check "b shows the ISAKMP SA as PASSIVE" \
		eval '[ "$(e2e_ike_field b state)" = PASSIVE ]'
	echo "NAT conditions of the ISAKMP SA: a: $(ikev1_nat_flags a); b: $(ikev1_nat_flags b)"
ikev1_check "b's ISAKMP SA has the same NAT conditions as a's (UDP encapsulation)" \
	eval '[ "$(ikev1_nat_flags b)" = "$(ikev1_nat_flags a)" ]'
ike_before=$(e2e_ike_spis peer)
	child_before=$(e2e_child_spis peer)
	echo "peer ISAKMP SA cookies: $ike_before, IPsec SA SPIs (in out): $child_before"
}

e2e_init

# ---------------------------------------------------------------- phase 1
echo "== phase 1: DPD from the peer"
E2E_DPD_DELAY=2s
IKEV1_CLUSTER_DPD_DELAY=0s
synced_setup
failover_traffic

# DPD from the peer (2s without inbound traffic now that the pings stopped)
sent=$(ikev1_dpd_sent peer)
acks=$(ikev1_dpd_acks peer)
ikev1_check "peer sends R_U_THERE to b" \
	e2e_wait_for "peer sends a DPD" 15 eval '[ "$(ikev1_dpd_sent peer)" -gt "$sent" ]'
ikev1_check "peer receives R_U_THERE_ACK from b, twice (sequence advances)" \
	e2e_wait_for "2 DPD acks on the peer" 15 eval '[ "$(ikev1_dpd_acks peer)" -ge $((acks + 2)) ]' ||
	{ ikev1_log_excerpt peer "DPD|INFORMATIONAL_V1|decrypt|HASH|invalid"
	  ikev1_log_excerpt b "DPD|INFORMATIONAL_V1|decrypt|HASH|invalid"; }
trouble=$(ikev1_dpd_trouble peer "$mark_peer")
ikev1_check "peer: no DPD timeout, invalid DPD sequence or retransmit since the failover" [ -z "$trouble" ] ||
	echo "$trouble" | sed 's/^/  /'
ikev1_check "peer still has the same ISAKMP SA after DPD" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ]'
ikev1_check "tunnel carries traffic after DPD (lan -> peer)" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5

# ---------------------------------------------------------------- phase 2
echo "== phase 2: DPD from the cluster (a before, b after the failover)"
sasync_reset
E2E_DPD_DELAY=0s
IKEV1_CLUSTER_DPD_DELAY=2s
IKEV1_PEER_SNIPPET=$IKEV1_ENC3
synced_setup
# a runs DPD while the tunnel is idle; b must learn a's sequence numbers
e2e_wait_for "a gets 2 R_U_THERE_ACKs from the peer" 15 \
	eval '[ "$(ikev1_dpd_acks a)" -ge 2 ]' ||
	ikev1_fail "DPD from a before the failover" a:"DPD|INFORMATIONAL_V1"
a_seqs=$(ikev1_dpd_seqs_rx peer | paste -sd' ')
echo "R_U_THERE sequence numbers from a seen by the peer: $a_seqs"
failover_traffic
ikev1_check "b sends R_U_THERE after the promotion" \
	e2e_wait_for "b sends a DPD" 15 eval '[ "$(ikev1_dpd_sent b)" -ge 1 ]'
ikev1_check "b receives R_U_THERE_ACK from the peer, twice" \
	e2e_wait_for "2 DPD acks on b" 15 eval '[ "$(ikev1_dpd_acks b)" -ge 2 ]' ||
	{ ikev1_log_excerpt b "DPD|INFORMATIONAL_V1|decrypt|HASH|invalid"
	  ikev1_log_excerpt peer "INFORMATIONAL_V1|decrypt|HASH|invalid|verification"; }
all_seqs=$(ikev1_dpd_seqs_rx peer | paste -sd' ')
echo "R_U_THERE sequence numbers seen by the peer (a, then b): $all_seqs"
last_a=$(ikev1_dpd_seqs_rx peer | sed -n "${n_before}p")
first_b=$(ikev1_dpd_seqs_rx peer | sed -n "$((n_before + 1))p")
ikev1_check "b's first R_U_THERE continues a's sequence (0x$last_a + 1 = 0x${first_b:-none})" \
	eval '[ -n "$first_b" ] && [ "$first_b" != "?" ] && [ $((16#$first_b)) -eq $((16#$last_a + 1)) ]'
for n in b peer; do
	[ "$n" = b ] && from=$mark_b || from=$mark_peer
	trouble=$(ikev1_dpd_trouble "$n" "$from")
	ikev1_check "$n: no DPD timeout, invalid DPD sequence or retransmit since the failover" [ -z "$trouble" ] ||
		echo "$trouble" | sed 's/^/  /'
done
ikev1_check "peer still has the same ISAKMP SA after b's DPD" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ] && [ "$(ikev1_phase1_count peer)" -eq 1 ]'
ikev1_check "tunnel carries traffic after DPD (peer -> lan)" \
	e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 5

echo "runtime $(e2e_elapsed)s"
ikev1_finish
