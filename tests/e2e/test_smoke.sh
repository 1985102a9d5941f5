#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Smoke test of the e2e harness (no sasync plugin): topology, a peer <-> A
# IKEv2 PSK tunnel with ESP through kernel-libipsec, pings both ways, and a
# second cluster charon (B) idling next to A without the VIP.
# Usage (as root, from anywhere): bash tests/e2e/test_smoke.sh
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# ---- checks (named functions keep e2e_check lines readable)

# kernel-libipsec must be the kernel-ipsec backend: loaded before
# kernel-netlink (the first backend to register wins; when it loses, charon
# logs that its kernel-ipsec feature "failed to load", yet it still creates
# the TUN device, so that alone proves nothing)
libipsec_first() {
	local log
	log=$(e2e_log "$1")
	grep -q 'created TUN device: ipsec0' "$log" &&
		grep 'loaded plugins:' "$log" | grep -q ' kernel-libipsec kernel-netlink ' &&
		! grep -q "kernel-ipsec in plugin 'kernel-libipsec' failed" "$log"
}

child_spis_mirrored() {
	local p_in p_out a_in a_out
	read -r p_in p_out <<<"$(e2e_child_spis peer)"
	read -r a_in a_out <<<"$(e2e_child_spis a)"
	[ -n "$p_in" ] && [ "$p_in" = "$a_out" ] && [ "$p_out" = "$a_in" ]
}

# STATS is "transmitted received lost"; SIGINT may cut the last request short
ping_ok() {
	local rx lost
	read -r _ rx lost <<<"$1"
	[ "${rx:-0}" -ge 10 ] && [ "${lost:-99}" -le 1 ]
}

child_counters_move() {
	[ "$(e2e_child_field a packets-in)" -gt 0 ] &&
		[ "$(e2e_child_field a packets-out)" -gt 0 ]
}

# ESP happens in userspace, so the kernel SAD must stay empty
no_kernel_sas() {
	[ -z "$(e2e_exec peer ip xfrm state)" ] && [ -z "$(e2e_exec a ip xfrm state)" ]
}

b_idles() {
	e2e_swanctl b --list-conns | grep -q "^$E2E_CONN:" &&
		e2e_sa_none b && [ "$(e2e_vip_holder)" = a ]
}

# ---- test

e2e_init
e2e_topo_up || e2e_fail "topology up"
e2e_check "VIPs on node a" [ "$(e2e_vip_holder)" = a ]

e2e_charon_start peer || e2e_fail "charon on peer"
e2e_charon_start a || e2e_fail "charon on a"
e2e_check "kernel-libipsec loaded before kernel-netlink (peer)" libipsec_first peer
e2e_check "kernel-libipsec loaded before kernel-netlink (a)" libipsec_first a

e2e_swanctl_load peer peer.conf || e2e_fail "load peer.conf"
e2e_swanctl_load a cluster.conf || e2e_fail "load cluster.conf on a"
e2e_initiate peer || e2e_fail "initiate from peer"
e2e_wait_for "SA up on peer" 10 e2e_sa_up peer || e2e_fail "SA up on peer"
e2e_wait_for "SA up on a" 10 e2e_sa_up a || e2e_fail "SA up on a"
e2e_check "IKE SPIs agree (peer/a)" [ "$(e2e_ike_spis peer)" = "$(e2e_ike_spis a)" ]
e2e_check "CHILD SPIs mirror each other" child_spis_mirrored

e2e_capture_start esp peer ext0 udp port 4500 || e2e_fail "capture on peer"
e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5 ||
	e2e_fail "ping lan -> peer host"
e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 5 ||
	e2e_fail "ping peer host -> lan"

e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_wait_ping_replies l2p 10 5 || e2e_fail "10 replies lan -> peer"
e2e_wait_ping_replies p2l 10 5 || e2e_fail "10 replies peer -> lan"
e2e_ping_stop l2p
e2e_ping_stop p2l
for name in l2p p2l; do
	stats=$(e2e_ping_stats "$name")
	echo "ping $name: transmitted/received/lost: $stats," \
		"longest gap $(e2e_ping_max_gap "$name") ms"
	e2e_check "ping $name through the tunnel" ping_ok "$stats"
done
e2e_capture_stop esp

esp=$(e2e_capture_esp_count esp)
echo "ESP-in-UDP packets seen on peer ext0: $esp"
e2e_check "ESP in UDP 4500 on the wire" [ "$esp" -ge 20 ]
e2e_check "CHILD SA packet counters on a" child_counters_move
e2e_check "no kernel XFRM states on peer and a" no_kernel_sas

e2e_charon_start b || e2e_fail "charon on b"
e2e_swanctl_load b cluster.conf || e2e_fail "load cluster.conf on b"
e2e_check "b idles: conn loaded, no SA, no VIP" b_idles
e2e_check "tunnel still up via a" e2e_ping_once lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"

echo "smoke runtime: $(e2e_elapsed)s"
e2e_summary
