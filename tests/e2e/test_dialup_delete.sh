#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Deletes of dialup tunnels (IKEv2 EAP road warrior with a pool address):
# when the road warrior disconnects while both nodes are up, the standby
# drops its IKE and CHILD SA, routes and the lease at once.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016
set -uo pipefail

# shellcheck source=tests/e2e/dialup.sh
. "$(dirname "$0")/dialup.sh"

e2e_init
e2e_topo_up || e2e_fail "topology up"
e2e_rw_up 1 || e2e_fail "road warrior namespace"
dialup_cluster_start a primary || e2e_fail "charon on a"
dialup_cluster_start b standby || e2e_fail "charon on b"
e2e_wait_for "sync link up" 10 \
	eval '[ "$(sasync_status b sync)" = enabled ] && [ "$(sasync_stat b resync)" -ge 1 ]' ||
	e2e_fail "sync link"
dialup_rw_connect 1 || e2e_fail "rw1 connects"
rw_vip=$(e2e_rw_vip 1)
e2e_wait_for "b has rw1's SA and lease" 10 \
	dialup_lease b "$rw_vip" "${DIALUP_ID_PREFIX}1" || e2e_fail "lease on b"

start=$(date +%s%N)
e2e_swanctl rw1 --terminate --ike "$E2E_CONN" >/dev/null || e2e_fail "rw1 disconnects"
e2e_wait_for "b has no SA" 10 e2e_sa_none b || e2e_fail "SA gone on b"
e2e_wait_for "b's lease is released" 10 \
	eval '! dialup_lease b "$rw_vip" "${DIALUP_ID_PREFIX}1"' || e2e_fail "lease released on b"
echo "dialup delete applied on b (SA and lease) $(( ($(date +%s%N) - start) / 1000000 ))ms after the terminate (polled)"
e2e_check "no route to rw1's address left on b" \
	eval '! e2e_exec b ip route show table all | grep -qF "$rw_vip"'
e2e_check "ha-status on b counts no SAs" \
	eval '[ "$(sasync_status b ike-sas-passive)" = 0 ] && [ "$(sasync_status b child-sas-passive)" = 0 ]'
e2e_summary
