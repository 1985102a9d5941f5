#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Per-tunnel interface ids (if_id_in/out = %unique): b keeps the restored
# CHILD SA's ids exactly, and after the promotion a new CHILD SA gets ids
# that no restored tunnel holds.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

# if_ids NODE [CHILD]: "in out" interface ids of every CHILD SA (named
# CHILD), one per line
if_ids() {
	e2e_sas_raw "$1" | grep -oE "name=${2:-[a-z]+} [^}]*" |
		grep -oE "if-id-in=[0-9a-f]+ if-id-out=[0-9a-f]+" |
		sed -E 's/if-id-in=([0-9a-f]+) if-id-out=([0-9a-f]+)/\1 \2/'
}

e2e_init
e2e_topo_up || e2e_fail "topology up"
e2e_charon_start peer || e2e_fail "charon on peer"
e2e_swanctl_load peer peer.conf || e2e_fail "load peer.conf"
for node in a b; do
	role=standby
	[ "$node" = a ] && role=primary
	e2e_charon_start "$node" "$(sasync_conf "$node" "$role")" ||
		e2e_fail "charon on $node"
	E2E_DPD_DELAY=0s e2e_swanctl_load "$node" cluster-unique.conf ||
		e2e_fail "load cluster-unique.conf on $node"
done
e2e_initiate peer || e2e_fail "initiate from peer"
e2e_wait_for "b has the same SAs" 10 sasync_synced a b || e2e_fail "sync to b"
restored=$(if_ids a net)
echo "interface ids on a: $restored, on b: $(if_ids b)"
e2e_check "a allocated unique interface ids" eval '[ -n "$restored" ] && [ "$restored" != "0 0" ]'
e2e_check "b holds exactly the same interface ids" eval '[ "$(if_ids b net)" = "$restored" ]'

sasync_failover
e2e_check "traffic through b" e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10
e2e_initiate peer host || e2e_fail "second CHILD SA from the peer"
e2e_wait_for "b has a second CHILD SA" 10 \
	eval '[ -n "$(if_ids b host)" ]' || e2e_fail "second CHILD SA on b"
echo "interface ids on b after the new CHILD SA: $(if_ids b | tr '\n' ',')"
read -r r_in r_out <<<"$restored"
read -r n_in n_out <<<"$(if_ids b host)"
echo "new CHILD SA 'host' on b: if_ids $n_in $n_out (restored: $r_in $r_out)"
e2e_check "the new CHILD SA reuses no restored interface id" \
	eval '[ -n "$n_in" ] && [ "$n_in" != "$r_in" ] && [ "$n_in" != "$r_out" ] && [ "$n_out" != "$r_in" ] && [ "$n_out" != "$r_out" ]'
e2e_summary
