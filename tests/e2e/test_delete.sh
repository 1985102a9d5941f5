#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Deletes: when the peer closes the tunnel while both nodes are up, the
# standby drops the IKE and CHILD SA at once, with their routes, and keeps
# nothing stale.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

# routes kernel-libipsec installed for the peer's subnet on NODE
peer_routes() {
	e2e_exec "$1" ip route show table all | grep -F "${E2E_PEER_NET%/*}"
}

e2e_init
sasync_cluster_synced
e2e_check "b has a route into the tunnel" eval '[ -n "$(peer_routes b)" ]'
e2e_check "b counts one synced IKE and CHILD SA" \
	eval '[ "$(sasync_status b ike-sas-passive)" = 1 ] && [ "$(sasync_status b child-sas-passive)" = 1 ]'

# the CHILD SA alone: b drops it with its route, keeps the IKE SA
start=$(date +%s%N)
e2e_swanctl peer --terminate --child "$E2E_CHILD" >/dev/null ||
	e2e_fail "peer terminates the CHILD SA"
e2e_wait_for "b has no CHILD SA" 10 \
	eval '[ "$(sasync_status b child-sas-passive)" = 0 ]' || e2e_fail "CHILD SA gone on b"
echo "CHILD SA delete applied on b $(( ($(date +%s%N) - start) / 1000000 ))ms after the peer's terminate (polled)"
e2e_check "b keeps the IKE SA" eval '[ "$(sasync_status b ike-sas-passive)" = 1 ]'
e2e_check "no route into the tunnel left on b after the CHILD delete" \
	eval '[ -z "$(peer_routes b)" ]'
e2e_initiate peer || e2e_fail "CHILD SA again"
e2e_wait_for "b has the new CHILD SA" 10 \
	eval '[ "$(sasync_status b child-sas-passive)" = 1 ] && [ -n "$(peer_routes b)" ]' ||
	e2e_fail "new CHILD SA on b"

start=$(date +%s%N)
e2e_swanctl peer --terminate --ike "$E2E_CONN" >/dev/null ||
	e2e_fail "peer terminates the tunnel"
e2e_wait_for "a has no SA" 10 e2e_sa_none a || e2e_fail "SA gone on a"
e2e_wait_for "b has no SA" 10 e2e_sa_none b || e2e_fail "SA gone on b"
echo "delete applied on b $(( ($(date +%s%N) - start) / 1000000 ))ms after the peer's terminate"

e2e_check "no route into the tunnel left on b" eval '[ -z "$(peer_routes b)" ]'
e2e_check "ha-status on b counts no SAs" \
	eval '[ "$(sasync_status b ike-sas-passive)" = 0 ] && [ "$(sasync_status b child-sas-passive)" = 0 ] && [ "$(sasync_status b forced-rekeys-pending)" = 0 ]'
e2e_check "b counted the delete" eval '[ "$(sasync_stat b delete-sync)" -ge 1 ]'
e2e_check "no kernel XFRM state or policy for the tunnel on b" \
	eval '[ -z "$(e2e_exec b ip xfrm state)" ] && ! e2e_exec b ip xfrm policy | grep -qF "${E2E_PEER_NET%/*}"'

# and the cluster still works: a new tunnel syncs again
e2e_initiate peer || e2e_fail "initiate again from peer"
e2e_wait_for "new SAs synced to b" 10 sasync_synced a b ||
	e2e_fail "new SAs synced to b"
e2e_summary
