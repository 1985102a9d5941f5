#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Failback: after a failover to b, a's charon comes back as standby, gets
# the SAs from b (including the ones b restored and rekeyed), and can take
# over again when b dies: the peer keeps its IKE SA through both failovers.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

e2e_init
sasync_cluster_up
e2e_wait_for "b has the same SAs" 10 sasync_synced a b || e2e_fail "sync to b"
ike_before=$(e2e_ike_spis peer)

sasync_failover
e2e_check "traffic through b" e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10
e2e_wait_for "b rekeyed the CHILD SA" 10 \
	eval '[ "$(sasync_status b forced-rekeys-pending)" = 0 ]' ||
	e2e_fail "forced rekey on b"

sasync_start a standby || e2e_fail "charon on a restarted as standby"
e2e_wait_for "a gets b's SAs by bulk resync" 15 sasync_synced b a ||
	e2e_fail "resync from the promoted node"
e2e_check "a holds the peer's original IKE SA" \
	eval '[ "$(e2e_ike_spis a)" = "$ike_before" ]'

# fail back: b dies, a takes over
e2e_charon_kill b KILL
e2e_vip_move b a
sasync_ctl a promote >/dev/null
e2e_check "traffic lan -> peer through a again" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10
e2e_check "traffic peer -> lan through a again" \
	e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 10
e2e_check "the peer kept its IKE SA through both failovers" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ] && [ "$(e2e_count_in_log peer "initiating IKE_SA")" -eq 1 ]'
e2e_summary
