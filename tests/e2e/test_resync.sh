#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Bulk resync: a standby that starts after the tunnel is up, or whose charon
# restarts, gets every SA from the primary when its sync link comes up, and
# can take over.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

e2e_init
e2e_topo_up || e2e_fail "topology up"
e2e_charon_start peer || e2e_fail "charon on peer"
e2e_swanctl_load peer peer.conf || e2e_fail "load peer.conf"
sasync_start a primary || e2e_fail "charon with sasync on a"
e2e_initiate peer || e2e_fail "initiate from peer"
e2e_wait_for "SA up on a" 10 e2e_sa_up a || e2e_fail "SA up on a"

sasync_start b standby || e2e_fail "charon with sasync on b (late)"
e2e_wait_for "late standby gets the SAs by bulk resync" 15 sasync_synced a b ||
	e2e_fail "bulk resync to a late standby"
e2e_check "b counted a completed resync" eval '[ "$(sasync_stat b resync)" -ge 1 ]'

e2e_charon_kill b KILL
sasync_start b standby || e2e_fail "charon restarted on b"
e2e_wait_for "restarted standby gets the SAs again" 15 sasync_synced a b ||
	e2e_fail "bulk resync after a standby restart"
e2e_check "exactly one IKE SA on b after the restart" \
	eval '[ "$(sasync_status b ike-sas-passive)" = 1 ] && [ "$(sasync_status b child-sas-passive)" = 1 ]'

sasync_failover
e2e_check "traffic flows through b after the failover" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10
e2e_check "and back" e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 10
e2e_summary
