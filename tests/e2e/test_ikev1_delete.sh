#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# IKEv1 deletes, with both nodes up:
#   (a) the peer deletes only the IPsec SA (swanctl --terminate --child):
#       the standby drops it at once (SA, route, policy) and keeps the ISAKMP
#       SA;
#   (b) the peer deletes the whole ISAKMP SA: the standby drops everything.
# The delay from the peer's terminate until b no longer lists the SA is
# measured and reported (b never waits for the SA's expiry: lifetimes are
# hours). Checks after each delete do not stop the test; the exit status is
# 1 if any failed.
# checks run through eval in single quotes, which also reads the variables
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/ikev1.sh
. "$(dirname "$0")/ikev1.sh"

E2E_DPD_DELAY=0s
IKEV1_CLUSTER_DPD_DELAY=0s

# b_child_count: CHILD SAs b lists
b_child_count() { ikev1_child_spis_all b | grep -c .; }

# no_tunnel_state NODE: no route into the tunnel and no XFRM state/policy
no_tunnel_state() {
	[ -z "$(ikev1_peer_routes "$1")" ] && [ -z "$(e2e_exec "$1" ip xfrm state)" ] &&
		! e2e_exec "$1" ip xfrm policy | grep -qF "${E2E_PEER_NET%/*}"
}

e2e_init
ikev1_cluster_up
e2e_wait_for "b has the same ISAKMP SA cookies and IPsec SA SPIs" 10 sasync_synced a b ||
	ikev1_fail "ISAKMP and IPsec SAs synced to b" b:"sasync" a:"sasync"
e2e_check "b has a route into the tunnel" eval '[ -n "$(ikev1_peer_routes b)" ]'
e2e_check "b counts one synced ISAKMP SA and IPsec SA" \
	eval '[ "$(sasync_status b ike-sas-passive)" = 1 ] && [ "$(sasync_status b child-sas-passive)" = 1 ]'
ike_before=$(e2e_ike_spis peer)
child_before=$(e2e_child_spis peer)
echo "peer ISAKMP SA cookies: $ike_before, IPsec SA SPIs (in out): $child_before"

# ------------------------------------------------- (a) IPsec SA only
echo "== (a) the peer deletes the IPsec SA only"
deletes_before=$(sasync_stat b delete-sync)
mark_b=$(ikev1_mark b)
mark_peer=$(ikev1_mark peer)
start=$(date +%s%N)
e2e_swanctl peer --terminate --child "$E2E_CHILD" >/dev/null ||
	e2e_fail "peer terminates the IPsec SA"
e2e_wait_for "a has no IPsec SA" 10 eval '[ -z "$(ikev1_child_spis_all a)" ]' ||
	ikev1_fail "IPsec SA gone on a" a:"DELETE|CHILD_SA"
if e2e_wait_for "b has no IPsec SA" 10 eval '[ "$(b_child_count)" = 0 ]'; then
	echo "IPsec SA delete applied on b $(ikev1_ms_since "$start")ms after the peer's terminate (polled);" \
		"in the logs $(ikev1_log_delay peer "sending DELETE for ESP CHILD_SA" b "CHILD_SA $E2E_CHILD\{[0-9]+\} state change: .* => DESTROYING" "$mark_peer" "$mark_b")ms" \
		"from the peer's DELETE to b destroying the IPsec SA"
	e2e_pass "IPsec SA gone from b without waiting for expiry"
else
	E2E_FAILED=$((E2E_FAILED + 1))
	echo "FAIL: IPsec SA gone from b without waiting for expiry (still listed 10 s after the peer's terminate)"
	echo "  b still lists: $(ikev1_child_spis_all b | paste -sd,)"
	ikev1_log_excerpt a "DELETE|CHILD_SA|sasync"
	echo "  --- b after the terminate:"
	tail -n "+$mark_b" "$(e2e_log b)" | grep -E "sasync|CHILD_SA|DELETE" | grep -v "vici client" | tail -n 15 | sed 's/^/  /'
fi
ikev1_check "b keeps the ISAKMP SA (same cookies, PASSIVE)" \
	eval '[ "$(e2e_ike_spis b)" = "$ike_before" ] && [ "$(e2e_ike_field b state)" = PASSIVE ]'
ikev1_check "no route into the tunnel left on b" eval '[ -z "$(ikev1_peer_routes b)" ]' ||
	ikev1_peer_routes b | sed 's/^/  /'
ikev1_check "no kernel XFRM state or policy for the tunnel on b" \
	eval '[ -z "$(e2e_exec b ip xfrm state)" ] && ! e2e_exec b ip xfrm policy | grep -qF "${E2E_PEER_NET%/*}"'
ikev1_check "ha-status on b: 1 ISAKMP SA, no IPsec SA, no pending forced rekey" \
	eval '[ "$(sasync_status b ike-sas-passive)" = 1 ] && [ "$(sasync_status b child-sas-passive)" = 0 ] &&
		  [ "$(sasync_status b forced-rekeys-pending)" = 0 ]' ||
	sasync_ctl b --raw status | sed 's/^/  /'
ikev1_check "b counted the delete" eval '[ "$(sasync_stat b delete-sync)" -gt "${deletes_before:-0}" ]'

# ------------------------------------------------- (b) whole ISAKMP SA
echo "== (b) the peer deletes the ISAKMP SA"
# a new IPsec SA in the same ISAKMP SA (Quick Mode), synced to b
e2e_initiate peer || e2e_fail "peer initiates a new IPsec SA"
e2e_wait_for "new IPsec SA synced to b" 10 sasync_synced a b ||
	ikev1_fail "new IPsec SA synced to b" b:"sasync" a:"sasync|QUICK_MODE"
e2e_check "the new IPsec SA runs in the same ISAKMP SA" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ] && [ "$(ikev1_phase1_count peer)" -eq 1 ]'
e2e_check "b has a route into the tunnel again" eval '[ -n "$(ikev1_peer_routes b)" ]'
deletes_before=$(sasync_stat b delete-sync)
mark_b=$(ikev1_mark b)
mark_peer=$(ikev1_mark peer)
start=$(date +%s%N)
e2e_swanctl peer --terminate --ike "$E2E_CONN" >/dev/null ||
	e2e_fail "peer terminates the ISAKMP SA"
e2e_wait_for "a has no SA" 10 e2e_sa_none a || ikev1_fail "SAs gone on a" a:"DELETE|IKE_SA"
if e2e_wait_for "b has no SA" 10 e2e_sa_none b; then
	echo "ISAKMP SA delete applied on b $(ikev1_ms_since "$start")ms after the peer's terminate (polled);" \
		"in the logs $(ikev1_log_delay peer "sending DELETE for IKE_SA" b "IKE_SA .* state change: .* => DESTROYING|sasync: deleting synced IKE_SA" "$mark_peer" "$mark_b")ms" \
		"from the peer's DELETE to b destroying the ISAKMP SA"
	e2e_pass "ISAKMP SA and IPsec SA gone from b without waiting for expiry"
else
	E2E_FAILED=$((E2E_FAILED + 1))
	echo "FAIL: ISAKMP SA and IPsec SA gone from b without waiting for expiry (still listed 10 s after)"
	e2e_sas_raw b | sed 's/^/  /'
	ikev1_log_excerpt a "DELETE|IKE_SA|CHILD_SA|sasync"
	echo "  --- b after the terminate:"
	tail -n "+$mark_b" "$(e2e_log b)" | grep -E "sasync|SA|DELETE" | grep -v "vici client" | tail -n 15 | sed 's/^/  /'
fi
ikev1_check "no route, XFRM state or policy for the tunnel left on b" no_tunnel_state b
ikev1_check "ha-status on b counts no SAs" \
	eval '[ "$(sasync_status b ike-sas-passive)" = 0 ] && [ "$(sasync_status b child-sas-passive)" = 0 ] &&
		  [ "$(sasync_status b forced-rekeys-pending)" = 0 ]' ||
	sasync_ctl b --raw status | sed 's/^/  /'
ikev1_check "b counted the delete" eval '[ "$(sasync_stat b delete-sync)" -gt "${deletes_before:-0}" ]'

# and the cluster still works: a new tunnel syncs again
e2e_initiate peer || e2e_fail "initiate again from peer"
ikev1_check "a new ISAKMP SA and IPsec SA sync to b" \
	e2e_wait_for "new SAs synced to b" 10 sasync_synced a b
echo "runtime $(e2e_elapsed)s"
ikev1_finish
