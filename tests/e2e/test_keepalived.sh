#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# keepalived: real keepalived (VRRPv3, unicast over the ext segment) on a
# and b owns both VIPs and drives the plugin through the shipped notify
# script (conf/examples/sasync-keepalived-notify.sh); the test moves no
# address and promotes nobody. Both plugins start as standby, so a becomes
# primary only when its keepalived promotes it.
#   1. crash: kill -9 of a's charon; a's track script fails, a goes FAULT,
#      b becomes MASTER, takes the VIPs and its notify script promotes b.
#   2. clean stop (fresh cluster): SIGTERM to a's keepalived; b becomes
#      MASTER and is promoted, a's notify script demotes a (STOP).
# Each case: the peer keeps its IKE SA, pings at 10 pps both ways resume;
# pings lost, longest gap and the time to b's promotion are printed.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

: "${KA_ADVERT:=0.5}"           # VRRP advert interval (s)

KA_EXAMPLE=$(cd "$E2E_LIB_DIR/../../conf/examples" && pwd)/keepalived.conf
KA_NOTIFY=${KA_EXAMPLE%/*}/sasync-keepalived-notify.sh

# ka_conf NODE: the shipped conf/examples/keepalived.conf with the test's
# interfaces, addresses and advert interval, node B's priority and unicast
# addresses for b, and the notify script of the source tree with the test's
# sasyncctl and socket
ka_conf() {
	local self=$E2E_A_EXT other=$E2E_B_EXT prio=150
	[ "$1" = b ] && { self=$E2E_B_EXT; other=$E2E_A_EXT; prio=100; }
	sed -E -e "s|/etc/keepalived/sasync-keepalived-notify.sh|$KA_NOTIFY --ctl $SASYNC_CTL --uri $SASYNC_URI|" \
		-e "s/(interface|dev) eth0/\1 ext0/; s/dev eth1/dev lan0/" \
		-e "s|198\.51\.100\.100/32|$E2E_VIP_EXT/32|; s|192\.0\.2\.1/32|$E2E_VIP_LAN/32|" \
		-e "s/198\.51\.100\.11( |\$)/$self\1/; s/198\.51\.100\.12( |\$)/$other\1/" \
		-e "s/^(\s*priority) 150/\1 $prio/; s/^(\s*advert_int) 1 /\1 $KA_ADVERT /" \
		-e 's/\s*#.*//; /^\s*$/d' "$KA_EXAMPLE"
}

# ka_start NODE: keepalived (VRRP only, in the foreground) in the
# namespaces of NODE's charon: its notify script sees the plugin's socket
# in charon's private /run, and it stays there when charon dies
ka_start() {
	local node=$1 dir=$E2E_DIR/$1 pid
	ka_conf "$node" >"$dir/keepalived.conf"
	if grep -nE '198\.51\.100|192\.0\.2\.|eth[0-9]|/etc/keepalived' "$dir/keepalived.conf"; then
		echo "ka_start: values of the example left in the config (above)" >&2
		return 1
	fi
	pid=$(e2e_charon_pid "$node") || return 1
	_e2e_bg "keepalived-$node" nsenter -t "$pid" -n -m \
		keepalived --dont-fork --vrrp --log-console --log-detail --no-syslog \
		-f "$dir/keepalived.conf" -p "$dir/keepalived.pid" -r "$dir/vrrp.pid" \
		>"$dir/keepalived.log" 2>&1
}

# ka_state NODE: the VRRP state NODE's keepalived last entered
ka_state() {
	sed -nE 's/.*\(vpn\) Entering ([A-Z]+) STATE.*/\1/p' "$E2E_DIR/$1/keepalived.log" |
		tail -n 1
}

# ka_wait_state NODE STATE TIMEOUT_S
ka_wait_state() {
	e2e_wait_for "keepalived on $1 in $2 state" "$3" eval '[ "$(ka_state '"$1"')" = '"$2"' ]'
}

# ka_role_by_keepalived NODE ROLE STATE: NODE's plugin has ROLE, and its
# charon logged the change with the reason the notify script gives for
# keepalived's STATE (so the role changed through keepalived)
ka_role_by_keepalived() {
	[ "$(sasync_status "$1" role)" = "$2" ] &&
		[ "$(e2e_count_in_log "$1" "sasync: role .* -> $2 \(ha-(pro|de)mote command: keepalived INSTANCE vpn $3\)")" -ge 1 ]
}

# ka_cluster_up: both plugins standby, keepalived on a makes it MASTER and
# primary, keepalived on b stays BACKUP; then the tunnel, synced to b, and
# pings both ways
ka_cluster_up() {
	sasync_cluster_start standby standby
	e2e_vip_drop a
	ka_start a || e2e_fail "keepalived on a"
	ka_wait_state a MASTER 10 || e2e_fail "keepalived on a becomes MASTER"
	e2e_wait_for "keepalived promoted a" 5 ka_role_by_keepalived a primary MASTER ||
		e2e_fail "keepalived's notify promotes a"
	ka_start b || e2e_fail "keepalived on b"
	ka_wait_state b BACKUP 10 || e2e_fail "keepalived on b is BACKUP"
	e2e_check "a holds both VIPs" \
		eval '[ "$(e2e_vip_holder)" = a ] && ip -n "$(e2e_ns a)" -4 -o addr show dev lan0 | grep -q " $E2E_VIP_LAN/"'
	e2e_check "b is standby" eval '[ "$(sasync_status b role)" = standby ]'
	sasync_tunnel_up
	sasync_wait_synced
	ike_before=$(e2e_ike_spis peer)
	e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
	e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
	e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer before failover"
	e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan before failover"
}

# ka_takeover CASE T0: b became MASTER, holds the VIPs and was promoted by
# its notify script (T0: e2e_tod_ms of the crash or stop); the pings resume
# and the peer kept its IKE SA
ka_takeover() {
	local t1
	ka_wait_state b MASTER 10 || e2e_fail "$1: keepalived on b becomes MASTER"
	e2e_wait_for "keepalived promoted b" 5 ka_role_by_keepalived b primary MASTER ||
		e2e_fail "$1: keepalived's notify promotes b"
	t1=$(e2e_log_ms b "sasync: role standby -> primary \(ha-promote command: keepalived")
	echo "$1: b promoted by keepalived $((t1 - $2)) ms after the event (charon log)"
	e2e_pass "$1: b is MASTER and primary (through keepalived)"
	e2e_check "$1: b holds both VIPs, a none" \
		eval '[ "$(e2e_vip_holder)" = b ] && ip -n "$(e2e_ns b)" -4 -o addr show dev lan0 | grep -q " $E2E_VIP_LAN/" &&
			! ip -n "$(e2e_ns a)" -4 -o addr show dev lan0 | grep -q " $E2E_VIP_LAN/"'
	sasync_pings_resume
	e2e_check "$1: peer kept its IKE SA (same SPIs)" \
		eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ]'
}

e2e_init

echo "--- case 1: crash (kill -9 of a's charon)"
ka_cluster_up
t0=$(e2e_tod_ms)
e2e_charon_kill a KILL
ka_wait_state a FAULT 5 || e2e_fail "crash: a's track script puts it into FAULT"
e2e_pass "crash: keepalived on a noticed the dead charon (FAULT)"
ka_takeover crash "$t0"

echo "--- case 2: clean stop (SIGTERM to a's keepalived)"
sasync_reset
ka_cluster_up
t0=$(e2e_tod_ms)
_e2e_untrack keepalived-a TERM 10
ka_takeover stop "$t0"
e2e_check "stop: a's notify demoted a (STOP)" ka_role_by_keepalived a standby STOP

e2e_summary
