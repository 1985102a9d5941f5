#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# RFC 6311 unanswered: the peer announced support, but b's message ID sync
# request (INFORMATIONAL, message ID 0) never reaches it (the peer's
# nftables drop it). b must not wait for it until charon gives the IKE SA
# up: after its timeout it uses the synced message IDs, and the forced CHILD
# rekey queued behind it goes through. The peer keeps its IKE SA.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

E2E_DPD_DELAY=0s
e2e_init
sasync_cluster_synced
ike_before=$(e2e_ike_spis peer)
child_before=$(e2e_child_spis peer)

# IKE requests from the VIP (UDP 4500: non-ESP marker, then the IKE header)
# of exchange INFORMATIONAL (37) with message ID 0: b's RFC 6311 request
e2e_exec peer nft -f - <<EOF2 || e2e_fail "nftables on the peer"
table inet nomidsync {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr $E2E_VIP_EXT udp sport 4500 @th,64,32 0 @th,240,8 37 @th,248,8 & 0x20 == 0 @th,256,32 0 counter drop
	}
}
EOF2

e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_wait_ping_replies l2p 10 10 || e2e_fail "pings lan -> peer before failover"
sasync_failover
e2e_wait_for "b sent its RFC 6311 request (dropped at the peer)" 10 \
	eval '[ "$(e2e_count_in_log b "generating INFORMATIONAL request 0 \[ N\(MSG_ID_SYN\) \]")" -ge 1 ]' ||
	e2e_fail "b starts the RFC 6311 exchange"
e2e_wait_for "CHILD SA rekeyed on the peer" 20 \
	eval '[ -n "$(e2e_child_spis peer)" ] && [ "$(e2e_child_spis peer)" != "$child_before" ]' ||
	e2e_fail "the forced CHILD rekey goes through after the fallback"
e2e_pass "CHILD SA rekeyed on the peer"
e2e_wait_for "b gave the unanswered RFC 6311 request up" 15 \
	eval '[ "$(e2e_count_in_log b "no answer to the RFC 6311 message ID sync")" -ge 1 ]' ||
	e2e_fail "b falls back to the synced message IDs"
e2e_pass "b gave the unanswered RFC 6311 request up"
sasync_pings_resume
e2e_check "the peer dropped b's request" \
	eval 'e2e_exec peer nft list table inet nomidsync | grep -qE "counter packets [1-9]"'
e2e_check "no RFC 6311 resync counted" \
	eval '[ "$(sasync_stat b mid-sync-rfc6311)" = 0 ]'
e2e_check "peer kept its IKE SA (same SPIs)" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ] && [ "$(e2e_sa_count peer)" = 1 ]'
e2e_check "rekey of the IKE SA started by b afterwards" \
	e2e_swanctl b --rekey --ike "$E2E_CONN"
e2e_wait_for "peer has the IKE SA b rekeyed" 10 \
	eval '[ -n "$(e2e_ike_spis peer)" ] && [ "$(e2e_ike_spis peer)" != "$ike_before" ]' ||
	e2e_fail "IKE rekey by b"
e2e_check "traffic both ways" \
	eval 'e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5 &&
		  e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 5'
e2e_summary
