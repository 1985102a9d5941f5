#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Demotion is real: a planned switchover from a to b after the SAs lived a
# while. One IKE SA from the peer with two CHILD SAs (net and host), a CHILD
# rekey and an IKE rekey by the peer, each synced to b. Then a is demoted
# (sasyncctl demote): its IKE SA must become PASSIVE at once, with the same
# SPIs, and a must send nothing more (it runs DPD every second while it is
# active, so a quiet window proves there is none; no rekey, no DELETE). The
# peer must keep exactly what it had: same IKE SA, same CHILD SAs with the
# same SPIs, no DELETE received. Then the VIPs move to b, b is promoted and
# the pings through b resume; a stays passive and silent throughout, and
# follows b as its standby.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "$0")/lifecycle.sh"

E2E_DPD_DELAY=2s                     # the peer's
IKEV1_CLUSTER_DPD_DELAY=1s           # a's own DPD, which demotion must stop
IKEV1_PEER_TPL=peer.conf
IKEV1_CLUSTER_TPL=lifecycle-cluster.conf
QUIET_S=3                            # window after the demotion (3 x a's DPD)

e2e_init
ikev1_cluster_up
e2e_initiate peer host || e2e_fail "initiate CHILD SA host from the peer"
e2e_wait_for "peer's two CHILD SAs on a" 10 lc_side_on_active peer ||
	e2e_fail "two CHILD SAs up on peer and a"
lc_wait_synced "tunnel up" || e2e_fail "b has the first generation"
lc_rekey_child peer
lc_rekey_ike peer

peer_before=$(lc_summary peer ESTABLISHED mirror)
a_before=$(lc_summary a "$LC_LIVE")
mark_a=$(lc_mark a)
mark_peer=$(lc_mark peer)
demoted=$(sasync_ctl a demote --reason switchover 2>&1)
# a's own DPD every second may go out between the mark above and the
# demotion: the quiet window starts once the demotion returned
mark_quiet=$(lc_mark a)
e2e_check "a demoted: 1 IKE SA made passive ($demoted)" \
	[ "$demoted" = "demoted, 1 IKE SAs made passive" ]
e2e_check "a counts the demotion" [ "$(sasync_stat a demotions)" = 1 ]
e2e_check "a's log: one line with the number of SAs made passive" \
	[ "$(lc_count_since a "$mark_a" "sasync: demoted, 1 IKE_SAs made passive")" = 1 ]
e2e_check "a lists its SAs PASSIVE, with the same SPIs" \
	eval '[ -n "$a_before" ] && [ "$(lc_summary a PASSIVE)" = "$a_before" ] && [ -z "$(lc_summary a "$LC_LIVE")" ]'
sleep "$QUIET_S"
e2e_check "a sent nothing in ${QUIET_S}s after the demotion (no DPD, rekey or DELETE)" \
	[ "$(lc_count_since a "$mark_quiet" "sending packet")" = 0 ]
e2e_check "the peer kept its IKE SA and CHILD SAs with the same SPIs" \
	eval '[ "$(lc_summary peer ESTABLISHED mirror)" = "$peer_before" ] && [ "$(e2e_sa_count peer)" = 1 ]'
e2e_check "the peer received no DELETE" \
	[ "$(lc_count_since peer "$mark_peer" "received DELETE|INFORMATIONAL request .*D\b|closing CHILD_SA|deleting IKE_SA")" = 0 ]

e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_vip_move a b
sasync_ctl b promote >/dev/null || e2e_fail "promote b"
sasync_pings_resume
e2e_check "the peer kept its IKE SA through the switchover" \
	eval '[ "$(e2e_ike_spis peer)" = "$(awk "/^ike /{print \$3, \$4}" <<<"$peer_before")" ] && [ "$(e2e_sa_count peer)" = 1 ]'
e2e_check "the peer received no DELETE for its IKE SA" \
	[ "$(lc_count_since peer "$mark_peer" "received DELETE for IKE_SA|deleting IKE_SA")" = 0 ]
e2e_check "a is still passive and silent" \
	eval '[ -z "$(lc_summary a "$LC_LIVE")" ] && [ "$(lc_count_since a "$mark_quiet" "sending packet")" = 0 ]'
e2e_check "a, a standby now, holds b's SAs (b's forced rekeys synced to a)" \
	e2e_wait_for "a follows b" 10 eval '[ -n "$(lc_summary b)" ] && [ "$(lc_summary a PASSIVE)" = "$(lc_summary b)" ]'
e2e_check "a asked b, primary now, for a full resync, and b sent it" \
	e2e_wait_for "a resynced by b" 10 eval '[ "$(e2e_count_in_log a "sasync: demoted, asking the primary for a full resync")" = 1 ] &&
		[ "$(e2e_count_in_log b "sasync: bulk resync sent")" -ge 1 ]'
e2e_summary
