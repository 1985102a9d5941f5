#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Failover in the middle of an exchange: a starts a CHILD rekey, the peer
# answers (and installs the new CHILD SA), but a dies before the answer
# reaches it (a drops everything the peer sends from then on). b knows the
# SPI a proposed (CHILD_PENDING), so once promoted it deletes that CHILD SA
# at the peer: the peer is left with no orphan, only the CHILD SA b rekeys
# the restored one into. The IKE SA recovers through RFC 6311 (message ID
# of the unanswered request), traffic flows both ways.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

# peer_children: "spi_in spi_out" of every CHILD SA the peer holds
peer_children() { e2e_child_list peer | awk '{ print $3, $4 }' | sort; }

# peer_has_out SPI: the peer holds a CHILD SA whose outbound SPI is SPI
peer_has_out() { e2e_child_list peer | awk -v s="$1" '$4 == s { f = 1 } END { exit !f }'; }

# peer_and_b_share_one: the peer holds exactly one CHILD SA, and b the same
peer_and_b_share_one() {
	local in out
	[ "$(e2e_child_list peer | wc -l)" = 1 ] || return 1
	read -r in out <<<"$(peer_children)"
	e2e_child_list b | awk -v i="$in" -v o="$out" \
		'$2 == "INSTALLED" && $3 == o && $4 == i { f = 1 } END { exit !f }'
}

E2E_DPD_DELAY=0s
e2e_init
sasync_cluster_synced
ike_before=$(e2e_ike_spis peer)
child_before=$(peer_children)
echo "peer IKE SPIs: $ike_before, CHILD SPIs: $child_before"

# from now on a hears nothing from the peer: its rekey stays unanswered
e2e_exec a nft -f - <<EOF2 || e2e_fail "nftables on a"
table inet inflight {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr $E2E_PEER_EXT udp dport 4500 drop
	}
}
EOF2
e2e_swanctl a --rekey --child "$E2E_CHILD" >/dev/null 2>&1
e2e_wait_for "the peer answered a's rekey (two CHILD SAs)" 10 \
	eval '[ "$(e2e_child_list peer | wc -l)" = 2 ]' ||
	e2e_fail "peer installs the CHILD SA a proposed"
orphan_out=$(e2e_child_list peer | awk -v o="$child_before" \
	'($3 " " $4) != o { print $4 }')
echo "CHILD SA a proposed, outbound SPI at the peer: $orphan_out"
e2e_check "a never saw the answer (its CHILD SA is still rekeying)" \
	eval '[ "$(e2e_child_list a | wc -l)" = 1 ]'
e2e_wait_for "a's records all reached b" 10 sasync_sync_idle ||
	e2e_fail "sync idle before the failover"

e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
sasync_failover
e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
sasync_pings_resume

e2e_wait_for "the peer holds no orphan CHILD SA" 10 \
	eval '! peer_has_out "$orphan_out"' ||
	e2e_fail "orphan CHILD SA gone at the peer"
e2e_pass "the peer holds no orphan CHILD SA"
e2e_wait_for "b deleted the CHILD SA a had proposed" 10 \
	eval '[ "$(e2e_count_in_log b "deleting ESP CHILD_SA with SPI $orphan_out the failed node")" -ge 1 ]' ||
	e2e_fail "b deletes the half-made CHILD SA"
e2e_pass "b deleted the CHILD SA a had proposed"
e2e_wait_for "the peer and b share exactly one CHILD SA" 15 \
	peer_and_b_share_one || {
	echo "peer:"; e2e_child_list peer; echo "b:"; e2e_child_list b
	e2e_fail "the peer and b share exactly one CHILD SA"
}
e2e_pass "the peer and b share exactly one CHILD SA"
e2e_check "peer kept its IKE SA (same SPIs)" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ]'
e2e_check "b resynced message IDs with the peer (RFC 6311)" \
	eval '[ "$(sasync_stat b mid-sync-rfc6311)" -ge 1 ]'
e2e_check "peer never retransmitted a request to b" \
	eval '[ "$(e2e_count_in_log peer "retransmit [0-9]+ of request")" -eq 0 ]'
e2e_check "traffic both ways" \
	eval 'e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5 &&
		  e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 5'
e2e_summary
