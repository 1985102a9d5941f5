#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Three nodes: a (primary, priority 100), b (standby, 90) and c (standby,
# 80), every node a peer of the other two, election on, built-in cluster
# addresses. Both standbys hold a's SAs. kill -9 of a's charon: b (the
# better priority) promotes itself and takes the addresses, c stays standby
# and keeps the SAs current from b without a full resync. Then kill -9 of
# b's charon: c promotes itself, takes the addresses, resyncs message IDs
# with the peer (RFC 6311) and carries the traffic. The peer keeps its IKE
# SA throughout.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# lc_synced compares a node's SAs exactly
# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "$0")/lifecycle.sh"

e2e_init
sasync_election_on
declare -A prio=([a]=100 [b]=90 [c]=80)
for n in a b c; do
	declare "SASYNC_NODE_CONF_$n=		node_id = $n
		priority = ${prio[$n]}"
done

# status_has NODE ERE: a node line of NODE's sasyncctl status matches ERE
status_has() { sasync_ctl "$1" status | grep -qE "^  node $2"; }

# addrs_on NODE: NODE holds both cluster addresses
addrs_on() {
	ip -n "$(e2e_ns "$1")" -4 addr show dev ext0 | grep -q " $E2E_VIP_EXT/32" &&
		ip -n "$(e2e_ns "$1")" -4 addr show dev lan0 | grep -q " $E2E_VIP_LAN/32"
}

# failover_to DEAD NEW: kill -9 of DEAD's charon with pings running both
# ways; NEW promotes itself by the election; prints the time from the kill
# to the promotion (NEW's log) and the pings
failover_to() {
	local dead=$1 new=$2 t_kill t_promote
	e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
	e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
	e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer before killing $dead"
	e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan before killing $dead"
	t_kill=$(e2e_tod_ms)
	e2e_charon_kill "$dead" KILL
	e2e_wait_for "$new promotes itself" 10 \
		eval '[ "$(sasync_status $new role)" = primary ]' ||
		e2e_fail "$new promoted by the election"
	sasync_pings_resume
	t_promote=$(e2e_log_ms "$new" "sasync: role standby -> primary \(election: primary lost\)")
	echo "kill -9 of $dead's charon to $new's promotion: $((t_promote - t_kill)) ms" \
		"(heartbeat timeout 1000 ms)"
	e2e_check "$new holds both cluster addresses" addrs_on "$new"
	e2e_check "peer kept its IKE SA (same SPIs, no other)" \
		eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ] && [ "$(e2e_sa_count peer)" = 1 ]'
}

sasync_cluster_start primary standby standby
sasync_tunnel_up
sasync_wait_synced a b c
for n in b c; do
	e2e_check "$n holds exactly a's SAs (IKE and CHILD SPIs, identities)" \
		e2e_wait_for "$n holds exactly a's SAs" 5 lc_synced a $n
done
e2e_wait_for "c hears a as the living primary and b as a standby" 5 \
	eval 'status_has c "a: role primary, priority 100, epoch 0, alive$" &&
		  status_has c "b: role standby, priority 90, epoch 0, alive$"' ||
	{ sasync_ctl c status; e2e_fail "heartbeats of a and b on c"; }
e2e_check "b hears c as a living standby" \
	status_has b "c: role standby, priority 80, epoch 0, alive$"
# a's link to each standby came up once: a bulk resync for that one only
e2e_check "b and c each got one bulk resync from a" \
	eval '[ "$(sasync_stat b resync)" = 1 ] && [ "$(sasync_stat c resync)" = 1 ] &&
		  [ "$(sasync_stat a resync)" = 2 ]'
ike_before=$(e2e_ike_spis peer)
child_before=$(e2e_child_spis peer)
resync_c=$(sasync_stat c resync)
echo "peer IKE SPIs: $ike_before"

# 1. a dies: b, not c, takes over; c follows b
failover_to a b
e2e_check "c stays standby, elected nobody" \
	eval '[ "$(sasync_status c role)" = standby ] && [ "$(sasync_stat c elections)" = 0 ]'
e2e_check "c's status shows b as the primary (epoch 1)" \
	status_has c "b: role primary, priority 90, epoch 1, alive$"
e2e_check "c does not hold the cluster addresses" eval '! addrs_on c'
e2e_wait_for "b resynced message IDs with the peer (RFC 6311)" 10 \
	eval '[ "$(sasync_stat b mid-sync-rfc6311)" -ge 1 ]' ||
	e2e_fail "RFC 6311 on b"
LC_ACTIVE=b
e2e_wait_for "b's forced CHILD rekey synced to c" 15 \
	eval '[ "$(e2e_child_spis peer)" != "$child_before" ] && lc_synced b c' ||
	{ lc_show b "$LC_LIVE"; lc_show c PASSIVE; e2e_fail "c holds exactly b's SAs after b's rekey"; }
e2e_pass "c holds exactly b's SAs after b's forced CHILD rekey"
e2e_expect "c kept the SAs current without a full resync (resync $resync_c)" \
	eval '[ "$(sasync_stat c resync)" = "$resync_c" ]' ||
	echo "c's resync counter: $(sasync_stat c resync)"

# 2. b dies as well: c takes over
failover_to b c
e2e_wait_for "c resynced message IDs with the peer (RFC 6311)" 10 \
	eval '[ "$(sasync_stat c mid-sync-rfc6311)" -ge 1 ]' ||
	e2e_fail "RFC 6311 on c"
e2e_check "c's election counted" eval '[ "$(sasync_stat c elections)" = 1 ]'
e2e_check "tunnel carries traffic through c" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5

e2e_summary
