#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Hand-over (issue 11, the churn soak's switchover race): an IKE SA the
# primary is negotiating when it is demoted completes afterwards, on the
# demoted node. nftables on a holds back the peer's IKE_AUTH request (the
# exchange type in the IKE header, ports 500 and 4500) while b is promoted
# and a demoted, then lets the retransmit through: a answers it as the
# responder of a half-open SA it held as primary, and must hand the SA over
# (records marked HANDOVER): b holds it active, with its CHILD SA, a holds
# it passive, and after the VIPs move to b the pings go through b on that
# tunnel (the peer keeps its IKE SA). Before the hand-over, the SA was on
# neither node once a got b's resync: the peer's tunnel was lost.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "$0")/lifecycle.sh"

IKEV1_PEER_TPL=peer.conf
IKEV1_CLUSTER_TPL=lifecycle-cluster.conf

# handover_states NODE: the states of NODE's IKE SAs, one per line
handover_states() {
	e2e_sas_raw "$1" | awk "$_LC_AWK_KV"'/^list-sa event \{/ { split_sa(); print kv(ike, "state") }'
}

e2e_init
ikev1_cluster_up
lc_wait_synced "first tunnel up" || e2e_fail "b has the first tunnel"
e2e_swanctl peer --terminate --ike "$E2E_CONN" >/dev/null 2>&1
e2e_wait_for "the first tunnel gone on a and b" 10 \
	eval '[ "$(e2e_sa_count a)" = 0 ] && [ "$(e2e_sa_count b)" = 0 ]' ||
	e2e_fail "the peer's delete reached a and b"

sasync_ike_hold a 35 dport on || e2e_fail "nftables on a"
e2e_swanctl peer --initiate --child "$E2E_CHILD" --timeout 60 \
	>>"$E2E_DIR/peer/initiate.out" 2>&1 &
initiate=$!
e2e_wait_for "a holds the new IKE SA half-open, its IKE_AUTH held back" 10 \
	eval '[ "$(handover_states a)" = CONNECTING ] && [ "$(sasync_ike_held a)" -ge 1 ]' ||
	e2e_fail "IKE_AUTH held back at a"

sasync_ctl b promote >/dev/null || e2e_fail "promote b"
sasync_ctl a demote --reason switchover >/dev/null || e2e_fail "demote a"
e2e_check "a still holds the IKE SA half-open after the demotion" \
	[ "$(handover_states a)" = CONNECTING ]
e2e_check "b does not know it" [ "$(e2e_sa_count b)" = 0 ]
sasync_ike_hold a 35 dport off
wait "$initiate"
e2e_check "the peer's tunnel came up (IKE_AUTH answered by the demoted a)" \
	e2e_sa_up peer

e2e_check "a sent the IKE SA and its CHILD SA as a hand-over" \
	e2e_wait_for "a's hand-over" 10 eval '[ "$(sasync_stat a handover-sent)" -ge 2 ]'
e2e_check "b applied them" \
	e2e_wait_for "b's hand-over" 10 eval '[ "$(sasync_stat b handover-applied)" -ge 2 ]'
e2e_check "b holds the peer's IKE SA and CHILD SA active" \
	e2e_wait_for "b holds the SA" 10 eval '[ -n "$(lc_summary b)" ] && [ "$(lc_summary b)" = "$(lc_summary peer ESTABLISHED mirror)" ]'
e2e_check "a holds it passive, the same SPIs" \
	e2e_wait_for "a passive" 10 eval '[ "$(lc_summary a PASSIVE)" = "$(lc_summary b)" ]'
e2e_check "a logged the hand-over" \
	[ "$(e2e_count_in_log a "handed over to the new primary, passive here")" = 1 ]

peer_ike=$(e2e_ike_spis peer)
e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_vip_move a b
sasync_pings_resume
e2e_check "the peer kept its IKE SA" \
	eval '[ "$(e2e_ike_spis peer)" = "$peer_ike" ] && [ "$(e2e_sa_count peer)" = 1 ]'
e2e_check "b rekeyed the handed-over CHILD SA on its first outbound packet" \
	[ "$(sasync_stat b forced-rekeys)" -ge 1 ]
e2e_summary
