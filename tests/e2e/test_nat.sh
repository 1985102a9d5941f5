#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# NAT-T: a peer behind a NAT router (nftables masquerade, UDP mapped to
# ports 30000-30999) brings up an IKEv2 tunnel to the VIP.
#  1. The standby has the SA with the peer's NATed address and port, and
#     after a failover the tunnel carries on (same IKE SA, pings both ways).
#  2. The NAT mapping changes before a failover (the NAT's outside address
#     moves, so every flow gets a new address and port). The peer's next IKE
#     request (a CHILD rekey it starts) reaches the active node through the
#     new mapping and the active node moves the SA there. The standby must
#     learn that too: right after the failover it must send to the new
#     mapping, since nothing else would tell it (kernel-libipsec reports no
#     NAT mapping changes of ESP, the peer runs no DPD, and NAT keepalives
#     never update an SA in charon).
# checks are eval'd strings; variables they use look unused to shellcheck
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

# endpoint NODE: "host:port" of the peer as NODE's (first) IKE SA has it
endpoint() { echo "$(e2e_ike_field "$1" remote-host):$(e2e_ike_field "$1" remote-port)"; }

# natted HOST:PORT: the NAT's outside address and a port of its range
natted() {
	local host=${1%:*} port=${1#*:}
	[ "$host" = "$(e2e_nat_outside)" ] &&
		[ "$port" -ge "${E2E_NAT_PORTS%-*}" ] && [ "$port" -le "${E2E_NAT_PORTS#*-}" ]
}

excerpt() {
	echo "    --- $1 charon log /$2/:"
	grep -E -- "$2" "$(e2e_log "$1")" 2>/dev/null | tail -n "${3:-8}" | sed 's/^/    /'
}

# nat_up: topology with the NAT router, natpeer, a (primary), b (standby),
# tunnel natpeer <-> VIP up and synced to b. Both sides accept any address
# (remote_addrs %any on the cluster), the natpeer's net is 198.18.5.0/24.
nat_up() {
	e2e_topo_up || e2e_fail "topology up"
	e2e_nat_up || e2e_fail "NAT router and natpeer up"
	e2e_charon_start natpeer || e2e_fail "charon on natpeer"
	E2E_PEER_EXT=%any E2E_PEER_NET=$E2E_NATPEER_NET \
		e2e_swanctl_load natpeer peer.conf || e2e_fail "load peer.conf on natpeer"
	E2E_PEER_EXT=%any E2E_PEER_NET=$E2E_NATPEER_NET \
		sasync_start a primary || e2e_fail "charon with sasync on a"
	E2E_PEER_EXT=%any E2E_PEER_NET=$E2E_NATPEER_NET \
		sasync_start b standby || e2e_fail "charon with sasync on b"
	e2e_initiate natpeer || e2e_fail "initiate from natpeer"
	e2e_wait_for "SA up on natpeer" 10 e2e_sa_up natpeer || e2e_fail "SA up on natpeer"
	e2e_wait_for "SA up on a" 10 e2e_sa_up a || e2e_fail "SA up on a"
	e2e_wait_for "b has the same IKE and CHILD SPIs" 10 sasync_synced a b ||
		e2e_fail "SAs synced to b"
	e2e_pass "tunnel natpeer <-> VIP up through the NAT, SAs synced to b"
}

pings_both_ways() {
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_NATPEER_HOST" 10 &&
		e2e_wait_ping natpeer "$E2E_NATPEER_HOST" "$E2E_LAN_HOST" 10
}

e2e_init

# ------------------------------------------------------------ 1. NAT-T
echo "--- 1. peer behind NAT, failover"
nat_up
ep_a=$(endpoint a)
echo "a sees the peer at $ep_a (NAT outside $(e2e_nat_outside))"
e2e_check "a sees the peer's NATed address and port" natted "$ep_a"
e2e_expect "b has the peer at the same NATed address and port as a ($ep_a)" \
	eval '[ "$(endpoint b)" = "$ep_a" ]' || echo "    b: $(endpoint b)"
e2e_expect "b knows the peer is behind a NAT (nat-remote as on a)" \
	eval '[ "$(e2e_ike_field b nat-remote)" = "$(e2e_ike_field a nat-remote)" ]' ||
	echo "    a: nat-remote=$(e2e_ike_field a nat-remote) b: nat-remote=$(e2e_ike_field b nat-remote)"
pings_both_ways || e2e_fail "pings lan <-> natpeer before the failover"
e2e_pass "pings lan <-> natpeer before the failover"
ike_before=$(e2e_ike_spis natpeer)

e2e_ping_start l2n lan "$E2E_LAN_HOST" "$E2E_NATPEER_HOST"
e2e_ping_start n2l natpeer "$E2E_NATPEER_HOST" "$E2E_LAN_HOST"
e2e_wait_ping_replies l2n 10 5 || e2e_fail "background ping lan -> natpeer"
e2e_wait_ping_replies n2l 10 5 || e2e_fail "background ping natpeer -> lan"
sasync_failover
e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
e2e_expect "pings natpeer -> lan resume through b" e2e_wait_ping_replies n2l 10 10
e2e_expect "pings lan -> natpeer resume through b" e2e_wait_ping_replies l2n 10 10
e2e_ping_stop l2n
e2e_ping_stop n2l
e2e_ping_report l2n n2l
e2e_expect "natpeer kept its IKE SA (same SPIs)" \
	eval '[ "$(e2e_ike_spis natpeer)" = "$ike_before" ]'
e2e_expect "natpeer sent IKE_SA_INIT only once" \
	eval '[ "$(e2e_count_in_log natpeer "initiating IKE_SA")" -eq 1 ]'
e2e_expect "b still sends to the NATed address and port $ep_a" \
	eval '[ "$(endpoint b)" = "$ep_a" ]' || echo "    b: $(endpoint b)"

# ---------------------------------------- 2. NAT mapping changes, failover
echo "--- 2. NAT mapping changes before the failover"
sasync_reset
nat_up
ep_old=$(endpoint a)
e2e_check "a sees the peer's NATed address and port" natted "$ep_old"
pings_both_ways || e2e_fail "pings lan <-> natpeer before the NAT change"

e2e_nat_remap || e2e_fail "NAT outside address changed"
echo "NAT outside address now $(e2e_nat_outside) (was ${ep_old%:*})"
# the peer's next IKE request goes out through the new mapping
e2e_swanctl natpeer --rekey --child "$E2E_CHILD" >>"$E2E_DIR/natpeer/rekey.out" 2>&1
e2e_wait_for "a moved the SA to the new mapping" 10 \
	eval 'natted "$(endpoint a)" && [ "$(endpoint a)" != "$ep_old" ]' ||
	e2e_fail "a updates the SA to the peer's new NAT mapping (still $(endpoint a))"
ep_new=$(endpoint a)
e2e_pass "a moved the SA from $ep_old to the new mapping $ep_new"
e2e_check "traffic lan <-> natpeer through a after the NAT change" pings_both_ways
e2e_wait_for "b has the new mapping" 10 eval '[ "$(endpoint b)" = "$ep_new" ]'
e2e_expect "b has the peer's new mapping $ep_new before the failover" \
	eval '[ "$(endpoint b)" = "$ep_new" ]' || {
	echo "    b: $(endpoint b)"
	excerpt a "endpoint changed|sasync"
	excerpt b "sasync: (restored|updated|.*endpoint)"
}
ike_before=$(e2e_ike_spis natpeer)

e2e_capture_start natout nat ext0 arp or udp || e2e_fail "capture on the NAT's outside"
sasync_failover
e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
# nothing from the peer could have told b since: check what it has now
e2e_expect "right after the failover b sends to the new mapping $ep_new" \
	eval '[ "$(endpoint b)" = "$ep_new" ]' || echo "    b: $(endpoint b)"
e2e_expect "pings lan -> natpeer flow through b (to the new mapping)" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_NATPEER_HOST" 10
e2e_expect "pings natpeer -> lan flow through b" \
	e2e_wait_ping natpeer "$E2E_NATPEER_HOST" "$E2E_LAN_HOST" 10
e2e_capture_stop natout
old_arp=$(tcpdump -n -r "$(_e2e_pcap natout)" "arp and src host $E2E_VIP_EXT" 2>/dev/null |
	grep -c "who-has ${ep_old%:*} ")
to_new=$(tcpdump -n -r "$(_e2e_pcap natout)" "udp and src host $E2E_VIP_EXT and dst host ${ep_new%:*} and dst port ${ep_new#*:}" 2>/dev/null | grep -c .)
echo "after the failover: $to_new packets from the VIP to $ep_new," \
	"$old_arp ARP requests from the VIP for the old address ${ep_old%:*}"
e2e_expect "b sent to the new mapping after the failover" [ "$to_new" -gt 0 ]
e2e_expect "natpeer kept its IKE SA (same SPIs)" \
	eval '[ "$(e2e_ike_spis natpeer)" = "$ike_before" ]'

echo "runtime: $(e2e_elapsed)s"
[ "$E2E_FAILED" -gt 0 ] && _e2e_dump_logs >&2
e2e_summary
