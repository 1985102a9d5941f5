#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# IKEv1 Aggressive Mode: a PSK tunnel with an FQDN identity on the peer and
# an email identity on the cluster survives kill -9 of the active node:
# pings flow both ways afterwards, the peer keeps its ISAKMP SA (one
# Aggressive Mode only), the first outbound packet forces a Quick Mode rekey
# and DPD from the peer is answered. Aggressive Mode has no encrypted phase 1
# message, so its phase 1 IV differs from Main Mode's (hash of the public
# values): the Quick Mode and DPD exchanges with b show that b has it right.
# Checks after the failover do not stop the test; the exit status is 1 if
# any failed.
# checks run through eval in single quotes, which also reads the variables
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/ikev1.sh
. "$(dirname "$0")/ikev1.sh"

E2E_AGGRESSIVE=yes
E2E_PEER_ID=peer.test        # FQDN
E2E_CLUSTER_ID=cluster@test  # RFC 822 email address
E2E_DPD_DELAY=2s
IKEV1_CLUSTER_DPD_DELAY=0s
# charon refuses to answer Aggressive Mode with PSK unless told otherwise
IKEV1_CLUSTER_SNIPPET="i_dont_care_about_security_and_use_aggressive_mode_psk = yes"

e2e_init
ikev1_cluster_up
e2e_check "the tunnel is IKEv1 Aggressive Mode with FQDN/email identities" \
	eval '[ "$(ikev1_version peer)" = 1 ] && [ "$(e2e_count_in_log peer "initiating Aggressive Mode")" -eq 1 ] &&
		  [ "$(e2e_ike_field peer local-id)" = peer.test ] && [ "$(e2e_ike_field peer remote-id)" = cluster@test ]'
e2e_wait_for "b has the same ISAKMP SA cookies and IPsec SA SPIs" 10 sasync_synced a b ||
	ikev1_fail "ISAKMP and IPsec SAs synced to b" b:"sasync" a:"sasync"
e2e_check "b shows the ISAKMP SA as PASSIVE with the same identities" \
	eval '[ "$(e2e_ike_field b state)" = PASSIVE ] && [ "$(e2e_ike_field b remote-id)" = peer.test ] &&
		  [ "$(e2e_ike_field b local-id)" = cluster@test ]'
echo "NAT conditions of the ISAKMP SA: a: $(ikev1_nat_flags a); b: $(ikev1_nat_flags b)"
ikev1_check "b's ISAKMP SA has the same NAT conditions as a's (UDP encapsulation)" \
	eval '[ "$(ikev1_nat_flags b)" = "$(ikev1_nat_flags a)" ]'
ike_before=$(e2e_ike_spis peer)
child_before=$(e2e_child_spis peer)
echo "peer ISAKMP SA cookies: $ike_before, IPsec SA SPIs (in out): $child_before"

e2e_capture_start esp peer ext0 udp port 4500 || e2e_fail "capture on peer"
e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer before failover"
e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan before failover"
e2e_wait_for "a's sync frames all accepted by b" 10 sasync_sync_idle ||
	e2e_fail "sync link idle before the failover"

mark_peer=$(ikev1_mark peer)
sasync_failover
e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
ikev1_check "pings peer -> lan resume after the failover" \
	e2e_wait_ping_replies p2l 20 10
ikev1_check "pings lan -> peer resume after the failover" \
	e2e_wait_ping_replies l2p 20 10
e2e_ping_stop l2p
e2e_ping_stop p2l
e2e_ping_report l2p p2l
ikev1_check "peer has a new IPsec SA from b's forced Quick Mode rekey" \
	e2e_wait_for "new CHILD SA on the peer" 10 ikev1_has_new_child peer "$child_before" ||
	{ ikev1_log_excerpt b "sasync|QUICK_MODE|CHILD_SA"
	  ikev1_log_excerpt peer "QUICK_MODE|CHILD_SA|decrypt|HASH"; }
ikev1_check "peer kept its ISAKMP SA (same cookies), one Aggressive Mode only" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ] && [ "$(e2e_ike_field peer state)" = ESTABLISHED ] &&
		  [ "$(ikev1_phase1_count peer)" -eq 1 ]' ||
	ikev1_log_excerpt peer "IKE_SA|Aggressive Mode|DELETE"
e2e_capture_stop esp
reuse=$(sasync_esp_reuse "$(_e2e_pcap esp)" "$E2E_VIP_EXT")
echo "ESP packets from the VIP with a reused (SPI, sequence): ${reuse:-none}"
ikev1_check "no ESP (SPI, sequence) from the VIP reaches the peer twice" [ -z "$reuse" ]

acks=$(ikev1_dpd_acks peer)
ikev1_check "peer's DPD is answered by b (R_U_THERE_ACK received)" \
	e2e_wait_for "DPD ack on the peer" 15 eval '[ "$(ikev1_dpd_acks peer)" -gt "$acks" ]' ||
	ikev1_log_excerpt peer "DPD|INFORMATIONAL_V1|decrypt|HASH"
trouble=$(ikev1_dpd_trouble peer "$mark_peer")
ikev1_check "peer: no DPD timeout, invalid DPD sequence or retransmit since the failover" [ -z "$trouble" ] ||
	echo "$trouble" | sed 's/^/  /'
ikev1_check "tunnel still carries traffic both ways" \
	eval 'e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5 && e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 5'

echo "runtime $(e2e_elapsed)s"
ikev1_finish
