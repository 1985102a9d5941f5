#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A standby never initiates. a (primary) and b (standby) load the same
# connections (conf/initiate-cluster.conf): "site" (CHILD net) with
# start_action = start, "trapped" (CHILD host) with start_action = trap.
#
# 1. b loads them first: it refuses to initiate site (initiate-refused, the
#    refusal line, no packet sent), a initiates it. The trap of host is
#    installed on both nodes (swanctl --list-pols).
# 2. The trap itself: kernel-libipsec raises no acquire, for forwarded and
#    for locally generated packets alike (libipsec/ipsec_processor.c: "TODO-
#    IPSEC: send an acquire to upper layer"; it logs "could not find an
#    outbound IPsec SA for reqid" and drops the packet). So no packet can
#    bring "trapped" up here. The test shows that a packet from a itself
#    hits a's trap policy and is dropped without an acquire, then initiates
#    host's CHILD config by hand (swanctl --initiate, what the acquire would
#    do): on b first, which refuses it, then on a, which brings it up.
#    The peer sees exactly one IKE SA per connection and exactly the two
#    IKE_SA_INITs a sent; b sent nothing. b restores both passive.
# 3. b's trap is uninstalled (a node that lost it), then a's charon is
#    killed (kill -9) and b promoted: b holds both tunnels, so its start
#    actions initiate nothing; they re-install the missing trap only
#    (start-actions = 1). The peer keeps the same two IKE SAs, and traffic
#    flows through b over both CHILD SAs.
# With kernel-netlink the acquire of step 2 would come from the kernel; the
# refusal does not depend on what started the IKE SA (see
# plugin/sasync_standby.h and tests/unit/test_standby.c).
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "$0")/lifecycle.sh"

IKEV1_CLUSTER_TPL=initiate-cluster.conf
NET_LAN=198.18.2.200                 # upper halves: site's CHILD SA only
NET_PEER=198.18.1.200
REFUSED_RE="sasync: standby, not initiating IKE_SA"

# peer_ikes: the peer's IKE SAs (SPIs), sorted, one a line
peer_ikes() { lc_summary peer ESTABLISHED mirror | awk '/^ike /{ print $3, $4 }'; }

# ike_count NODE NAME [STATES]: NODE's live IKE SAs of connection NAME
ike_count() { lc_summary "$1" "${3:-}" | grep -c "^ike $2 "; }

# trap_installed NODE IKE/CHILD: NODE lists CHILD of connection IKE among its trap policies
trap_installed() { e2e_swanctl "$1" --list-pols --raw 2>/dev/null | grep -q "^list-policy event {$2 {"; }

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

# ---- 1. start_action = start: b refuses, a initiates
ikev1_start b standby || e2e_fail "charon with sasync on b (standby)"
e2e_check "b refused to initiate site (log line, initiate-refused 1)" \
	e2e_wait_for "b refuses site" 5 eval '[ "$(e2e_count_in_log b "$REFUSED_RE site")" = 1 ] && [ "$(sasync_stat b initiate-refused)" = 1 ]'
ikev1_start a primary || e2e_fail "charon with sasync on a (primary)"
e2e_wait_for "a initiated site (start_action = start)" 10 \
	eval '[ "$(ike_count a site)" = 1 ]' || e2e_fail "site up on a"
e2e_check "a refused nothing" [ "$(sasync_stat a initiate-refused)" = 0 ]
for n in a b; do
	e2e_check "host's trap installed on $n" trap_installed "$n" trapped/host
done

# ---- 2. the trap under kernel-libipsec, then host's CHILD config by hand
mark_a=$(lc_mark a)
ip netns exec "$(e2e_ns a)" ping -n -q -c 2 -W 1 -I "$E2E_A_LAN" "$E2E_PEER_HOST" >/dev/null 2>&1
e2e_check "a's trap policy caught a packet from a itself (dropped, no SA for its reqid)" \
	e2e_wait_for "drop on a" 3 eval '[ "$(lc_count_since a "$mark_a" "could not find an outbound IPsec SA for reqid")" -ge 1 ]'
e2e_check "kernel-libipsec raised no acquire: trapped not initiated by the packet" \
	eval '[ "$(lc_count_since a "$mark_a" "initiating IKE_SA trapped")" = 0 ] && [ "$(ike_count a trapped)" = 0 ]'
e2e_initiate b host
e2e_check "b refused to initiate trapped (log line, initiate-refused 2)" \
	eval '[ "$(e2e_count_in_log b "$REFUSED_RE trapped")" = 1 ] && [ "$(sasync_stat b initiate-refused)" = 2 ]'
e2e_initiate a host || e2e_fail "initiate host on a"
e2e_wait_for "a holds trapped" 10 \
	eval '[ "$(ike_count a trapped)" = 1 ]' || e2e_fail "trapped up on a"
e2e_check "the peer has exactly 2 IKE SAs, one per connection" \
	eval '[ "$(peer_ikes | wc -l)" = 2 ] && [ "$(e2e_sa_count peer)" = 2 ]'
e2e_check "b sent no packet at all" [ "$(e2e_count_in_log b "sending packet")" = 0 ]
e2e_check "the peer parsed exactly 2 IKE_SA_INIT requests (a's)" \
	[ "$(e2e_count_in_log peer "parsed IKE_SA_INIT request")" = 2 ]
e2e_check "the peer got no packet from a node address" \
	[ "$(e2e_count_in_log peer "received packet: from ($E2E_A_EXT|$E2E_B_EXT)\[")" = 0 ]
e2e_wait_for "b holds both IKE SAs passive" 10 \
	eval '[ "$(sasync_status b ike-sas-passive)" = 2 ] && [ "$(sasync_status b child-sas-passive)" = 2 ]' ||
	e2e_fail "both IKE SAs synced to b"
ikes_before=$(peer_ikes)
e2e_check "traffic through a over host" e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10
e2e_check "traffic through a over net (site)" e2e_wait_ping lan "$NET_LAN" "$NET_PEER" 10

# ---- 3. failover: b holds both, re-installs only its missing trap
e2e_swanctl b --uninstall --child host >/dev/null 2>&1
e2e_check "host's trap gone from b" eval '! trap_installed b trapped/host'
e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_wait_for "sync idle" 5 sasync_sync_idle || e2e_fail "sync idle before the failover"
mark_b=$(lc_mark b)
sasync_failover
sasync_pings_resume
e2e_check "traffic through b over net (site) too" \
	e2e_wait_ping lan "$NET_LAN" "$NET_PEER" 10
e2e_check "b's start actions re-installed the missing trap only (start-actions 1)" \
	eval '[ "$(sasync_stat b start-actions)" = 1 ] && [ "$(lc_count_since b "$mark_b" "sasync: promoted, (installing|initiating) ")" = 1 ] && [ "$(lc_count_since b "$mark_b" "sasync: promoted, installing .host.")" = 1 ]'
e2e_check "host's trap installed on b again" trap_installed b trapped/host
e2e_check "b initiated no IKE SA after its promotion" \
	[ "$(lc_count_since b "$mark_b" "initiating IKE_SA")" = 0 ]
e2e_check "b holds one IKE SA per connection" \
	eval '[ "$(ike_count b site)" = 1 ] && [ "$(ike_count b trapped)" = 1 ]'
e2e_check "the peer still has the same 2 IKE SAs, no duplicate" \
	eval '[ "$(peer_ikes)" = "$ikes_before" ] && [ "$(e2e_sa_count peer)" = 2 ]'
e2e_check "the peer parsed no IKE_SA_INIT since" \
	[ "$(e2e_count_in_log peer "parsed IKE_SA_INIT request")" = 2 ]
e2e_summary
