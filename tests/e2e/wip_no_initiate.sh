#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# WORK IN PROGRESS, not run by tests/run-all.sh (not test_*.sh): kernel-libipsec
# raises no acquire for the trap policy ("could not find an outbound IPsec SA
# for reqid"), so the trap connection never comes up on a; see the report.
#
# A standby never initiates. a (primary) and b (standby) load the same
# connections (conf/initiate-cluster.conf): "site" with start_action =
# start, "trapped" with start_action = trap. Only a brings them up (site
# at load, trapped by the first ping): the peer sees exactly one IKE SA
# each, b refused its own start (initiate-refused) and sent no packet. b
# restores both passive. Then a's charon is killed (kill -9) and b
# promoted: b holds both tunnels without initiating anything (no
# start action run, no IKE_SA_INIT), the peer keeps its two IKE SAs, and
# traffic flows through b over both.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "$0")/lifecycle.sh"

IKEV1_CLUSTER_TPL=initiate-cluster.conf
NET_LAN=198.18.2.200                 # upper halves: site's CHILD SA only
NET_PEER=198.18.1.200

# peer_ikes: the peer's IKE SAs (SPIs), sorted, one a line
peer_ikes() { lc_summary peer ESTABLISHED mirror | awk '/^ike /{ print $3, $4 }'; }

e2e_init
e2e_topo_up || e2e_fail "topology up"
# site's CHILD SA needs an address of its own on each side (kernel-libipsec
# routes from one): the hosts pinged over it, and one on each cluster node
lc_add_host peer "$NET_PEER" || e2e_fail "$NET_PEER on the peer"
lc_add_host lan "$NET_LAN" || e2e_fail "$NET_LAN on the LAN host"
ip -n "$(e2e_ns a)" addr add 198.18.2.131/32 dev lan0 || e2e_fail "address on a"
ip -n "$(e2e_ns b)" addr add 198.18.2.132/32 dev lan0 || e2e_fail "address on b"
e2e_charon_start peer || e2e_fail "charon on peer"
e2e_swanctl_load peer peer.conf || e2e_fail "load peer.conf on peer"
ikev1_start b standby || e2e_fail "charon with sasync on b (standby)"
ikev1_start a primary || e2e_fail "charon with sasync on a (primary)"

e2e_wait_for "a initiated site (start_action = start)" 10 \
	eval '[ "$(lc_summary a | grep -c "^ike site ")" = 1 ]' || e2e_fail "site up on a"
e2e_check "the first packet brings trapped up through a's trap" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10
e2e_wait_for "a holds trapped" 10 \
	eval '[ "$(lc_summary a | grep -c "^ike trapped ")" = 1 ]' || e2e_fail "trapped up on a"
e2e_check "the peer has exactly 2 IKE SAs, one per connection" \
	eval '[ "$(peer_ikes | wc -l)" = 2 ] && [ "$(e2e_sa_count peer)" = 2 ]'
e2e_check "b refused to initiate site" \
	eval '[ "$(sasync_stat b initiate-refused)" -ge 1 ] && [ "$(e2e_count_in_log b "sasync: standby, not initiating IKE_SA site")" -ge 1 ]'
e2e_check "b sent no IKE packet" [ "$(e2e_count_in_log b "sending packet")" = 0 ]
e2e_check "the peer got no IKE_SA_INIT but a's two" \
	[ "$(e2e_count_in_log peer "received packet: .*IKE_SA_INIT|parsed IKE_SA_INIT request")" -le 2 ]
e2e_wait_for "b holds both IKE SAs passive" 10 \
	eval '[ "$(sasync_status b ike-sas-passive)" = 2 ] && [ "$(sasync_status b child-sas-passive)" = 2 ]' ||
	e2e_fail "both IKE SAs synced to b"
ikes_before=$(peer_ikes)
e2e_check "traffic through a over site" e2e_wait_ping lan "$NET_LAN" "$NET_PEER" 10

e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
mark_b=$(lc_mark b)
sasync_failover
sasync_pings_resume
e2e_check "traffic through b over site too" \
	e2e_wait_ping lan "$NET_LAN" "$NET_PEER" 10
e2e_check "b ran no start action: it held both tunnels" \
	[ "$(sasync_stat b start-actions)" = 0 ]
e2e_check "b initiated no IKE SA after its promotion" \
	[ "$(lc_count_since b "$mark_b" "initiating IKE_SA")" = 0 ]
e2e_check "the peer still has the same 2 IKE SAs, no duplicate" \
	eval '[ "$(peer_ikes)" = "$ikes_before" ] && [ "$(e2e_sa_count peer)" = 2 ]'
e2e_summary
