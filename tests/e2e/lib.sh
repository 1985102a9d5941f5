# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# The settings below are read through ${!name} (e2e_render) and by the test
# scripts that source this file, which shellcheck cannot see:
# shellcheck disable=SC2034
#
# End-to-end test library for strongswan-sasync. Source it from a test
# script, call e2e_init, then e2e_topo_up. See tests/e2e/README.md.
#
# Every node (peer, a, b, lan) lives in its own network namespace; peer, a
# and b each run a private charon (own mount namespace with a tmpfs /run, so
# pid file and vici socket do not collide) that does ESP in userspace via
# kernel-libipsec, because the test kernels have no in-kernel ESP.

# ---------------------------------------------------------------- settings
# All of these may be overridden by the environment before sourcing.
: "${E2E_PREFIX:=ss}"
: "${E2E_CHARON:=/usr/lib/ipsec/charon}"
: "${E2E_SWANCTL_BIN:=swanctl}"
: "${E2E_PRELOAD:=}"            # .so LD_PRELOADed into the cluster charons
: "${E2E_PRELOAD_PLUGIN:=sasync}" # plugin name enabled when E2E_PRELOAD is set
: "${E2E_PLUGIN_CONF:=}"        # appended under charon.plugins on a and b
: "${E2E_CHARON_CONF:=}"        # appended under charon on every node
: "${E2E_LOG_EXTRA:=}"          # appended to the charon filelog section
: "${E2E_KEEP:=0}"              # 1: keep $E2E_DIR after the run (debugging)
: "${E2E_VERBOSE:=0}"           # 1: echo e2e_note messages
: "${E2E_EXTRA_PLUGINS:=}"      # plugins loaded on every node (e.g. EAP)
# plugins road warriors load on top of the common list (clients of EAP,
# XAuth and Mode Config); a cluster serving them loads the same set through
# E2E_EXTRA_PLUGINS
: "${E2E_RW_PLUGINS:=md5 eap-identity eap-md5 xauth-generic}"

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${E2E_CONF_DIR:=$E2E_LIB_DIR/conf}"

# Addresses: RFC 2544 benchmarking range only.
E2E_PEER_EXT=198.18.0.2
E2E_A_EXT=198.18.0.11
E2E_B_EXT=198.18.0.12
E2E_VIP_EXT=198.18.0.100
E2E_PEER_NET=198.18.1.0/24
E2E_PEER_HOST=198.18.1.1
E2E_LAN_NET=198.18.2.0/24
E2E_LAN_HOST=198.18.2.10
E2E_A_LAN=198.18.2.11
E2E_B_LAN=198.18.2.12
E2E_VIP_LAN=198.18.2.1
# optional nodes (created on request, see e2e_node_c_up, e2e_rw_up and
# e2e_nat_up)
E2E_C_EXT=198.18.0.13           # third cluster node c
E2E_C_LAN=198.18.2.13
E2E_RW_MAX=9                    # road warriors rw1..rw9 on ext, .21 to .29
E2E_RW_POOL=198.18.3.0/24       # virtual IP pool of the dialup connections
E2E_PEER_EXT2=198.18.0.3        # the peer's address after it roams (MOBIKE)
E2E_NAT_EXT=198.18.0.30         # NAT router's outside address
E2E_NAT_EXT2=198.18.0.31        # ... after e2e_nat_remap (and back)
E2E_NAT_IN=198.18.4.1           # NAT router on the inside segment
E2E_NATPEER_EXT=198.18.4.2      # the peer behind the NAT
E2E_NATPEER_NET=198.18.5.0/24   # its protected net
E2E_NATPEER_HOST=198.18.5.1     # on its lo
: "${E2E_NAT_PORTS:=30000-30999}" # UDP source ports the NAT maps to

# swanctl template values (@NAME@ in conf/*.conf -> $E2E_NAME)
: "${E2E_CONN:=site}"
: "${E2E_CHILD:=net}"
: "${E2E_PEER_ID:=peer@test}"
: "${E2E_CLUSTER_ID:=cluster@test}"
: "${E2E_PSK:=sasync-e2e-not-a-secret}"
: "${E2E_IKE_PROPOSAL:=aes256-sha256-x25519}"
: "${E2E_ESP_PROPOSAL:=aes256-sha256}"
: "${E2E_IKE_REKEY:=24h}"
: "${E2E_CHILD_REKEY:=24h}"
: "${E2E_DPD_DELAY:=0s}"
: "${E2E_MOBIKE:=no}"
: "${E2E_RW_EAP:=eap-md5}"     # EAP method of the dialup templates
# per road warrior values (@RW_ID@ ...) are set by e2e_rw_load

E2E_NODES="peer a b lan"
# created only on request; teardown (and the purge of a crashed run) looks
# for all of them
E2E_OPT_NODES="c $(seq -f 'rw%g' -s ' ' 1 $E2E_RW_MAX) nat natpeer"
# the cluster nodes up: e2e_node_c_up adds c
E2E_CLUSTER_NODES="a b"
E2E_DIR=""
E2E_PASSED=0
E2E_FAILED=0
_E2E_T0=""
_E2E_LOCK_FD=""

# ------------------------------------------------------------ basic helpers

# e2e_ns NODE: namespace name of a node (sw is the switch namespace)
e2e_ns() { echo "$E2E_PREFIX-$1"; }

# milliseconds since the epoch from bash's clock (no fork); the decimal
# separator of EPOCHREALTIME follows the locale, so strip any non-digit
_e2e_now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }

# e2e_elapsed: seconds (with ms) since e2e_init
e2e_elapsed() {
	local ms=$(($(_e2e_now_ms) - _E2E_T0))
	printf '%d.%03d\n' $((ms / 1000)) $((ms % 1000))
}

e2e_note() { [ "$E2E_VERBOSE" = 1 ] && echo "[$(e2e_elapsed)] $*"; return 0; }

e2e_pass() {
	E2E_PASSED=$((E2E_PASSED + 1))
	echo "PASS: $*"
}

# e2e_fail MSG: report, dump log tails for diagnosis, exit (teardown via trap)
e2e_fail() {
	E2E_FAILED=$((E2E_FAILED + 1))
	echo "FAIL: $*"
	_e2e_dump_logs >&2
	e2e_summary
	exit 1
}

# e2e_check MSG cmd...: PASS or FAIL (and exit) depending on cmd's status
e2e_check() {
	local msg=$1
	shift
	if "$@"; then e2e_pass "$msg"; else e2e_fail "$msg"; fi
}

# e2e_expect MSG cmd...: like e2e_check, but a failure is only counted and
# the test goes on (for checks whose failure does not spoil the next steps);
# returns cmd's status
e2e_expect() {
	local msg=$1
	shift
	if "$@"; then
		e2e_pass "$msg"
	else
		E2E_FAILED=$((E2E_FAILED + 1))
		echo "FAIL: $msg"
		return 1
	fi
}

# e2e_summary: closing line in the "N passed, N failed" form CI recognises;
# fails if anything failed, so a test ending with it exits non-zero then
e2e_summary() {
	echo "$(basename "$0" .sh): $E2E_PASSED passed, $E2E_FAILED failed"
	[ "$E2E_FAILED" = 0 ]
}

_e2e_dump_logs() {
	local node log
	[ -n "$E2E_DIR" ] || return 0
	for node in peer a b $E2E_OPT_NODES; do
		log=$E2E_DIR/$node/charon.log
		[ -s "$log" ] || continue
		echo "----- last lines of $node charon log ($log)"
		tail -n 25 "$log"
	done
}

# _e2e_to_ms SECONDS: "2", "1.5" or "0.25" -> milliseconds
_e2e_to_ms() {
	local s=${1%%.*} f=000
	[[ $1 == *.* ]] && f=${1#*.}000
	echo $((10#${s:-0} * 1000 + 10#${f:0:3}))
}

# e2e_wait_for DESC TIMEOUT_S cmd...: poll cmd every 0.1 s until it succeeds;
# returns 1 (with a message) on timeout. Never use fixed sleeps instead.
# TIMEOUT_S may have decimals (1.5).
e2e_wait_for() {
	local desc=$1 timeout=$2 deadline
	shift 2
	deadline=$(($(_e2e_now_ms) + $(_e2e_to_ms "$timeout")))
	until "$@" >/dev/null 2>&1; do
		if [ "$(_e2e_now_ms)" -ge "$deadline" ]; then
			echo "timeout (${timeout}s) waiting for: $desc" >&2
			return 1
		fi
		sleep 0.1
	done
	e2e_note "ok: $desc"
}

# ------------------------------------------------------- process bookkeeping
# Every background process gets a pid file "PID STARTTIME" in $E2E_DIR/pids
# so teardown ends exactly the processes this run started; the start time
# guards against signalling a recycled pid.

_e2e_pidfile() { echo "$E2E_DIR/pids/$1.pid"; }

# _e2e_starttime PID: start time in clock ticks (field 22 of /proc/PID/stat)
_e2e_starttime() {
	local stat f
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	# comm (field 2) may contain blanks; the fields after it start at 3
	read -ra f <<<"${stat##*) }"
	echo "${f[19]}"
}

# _e2e_track NAME PID: remember a background process
_e2e_track() {
	echo "$2 $(_e2e_starttime "$2")" >"$(_e2e_pidfile "$1")"
}

# _e2e_bg NAME cmd...: start cmd in the background and track it
_e2e_bg() {
	local name=$1
	shift
	"$@" </dev/null {_E2E_LOCK_FD}>&- &
	_e2e_track "$name" $!
}

# _e2e_pid NAME: pid of tracked process NAME if it is still that process
_e2e_pid() {
	local f pid start
	f=$(_e2e_pidfile "$1")
	[ -f "$f" ] || return 1
	read -r pid start <"$f"
	# an empty start time means the process had already gone when tracked
	[ -n "$start" ] && [ "$(_e2e_starttime "$pid")" = "$start" ] && echo "$pid"
}

# true while PID exists and is not a zombie
_e2e_alive() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# _e2e_stop_pid PID SIGNAL TIMEOUT_S: signal, wait for exit, reap if child
_e2e_stop_pid() {
	local pid=$1 sig=$2 timeout=$3
	kill "-$sig" "$pid" 2>/dev/null
	if ! e2e_wait_for "pid $pid to exit" "$timeout" eval "! _e2e_alive $pid"; then
		kill -KILL "$pid" 2>/dev/null
		e2e_wait_for "pid $pid to die" 5 eval "! _e2e_alive $pid"
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# _e2e_untrack NAME SIGNAL TIMEOUT_S: stop a tracked process, drop pid file
_e2e_untrack() {
	local pid
	if pid=$(_e2e_pid "$1"); then
		_e2e_stop_pid "$pid" "$2" "$3"
	fi
	rm -f "$(_e2e_pidfile "$1")"
}

# ------------------------------------------------------------- init/teardown

# e2e_init: temp dir, traps, sanity checks. Call once, first.
e2e_init() {
	[ "$(id -u)" = 0 ] || { echo "e2e tests must run as root" >&2; exit 1; }
	_E2E_T0=$(_e2e_now_ms)
	_e2e_lock || exit 1
	E2E_DIR=$(mktemp -d /tmp/sasync-e2e.XXXXXX)
	mkdir -p "$E2E_DIR/pids"
	trap e2e_teardown EXIT
	# exiting from the signal trap runs the EXIT trap (teardown) once
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# One run per prefix at a time: the lock makes it safe for e2e_topo_up to
# purge namespaces left behind by a crashed run with the same prefix while
# runs with other prefixes go on untouched. Children do not inherit the lock
# fd (see _e2e_bg), so it dies with the test script.
_e2e_lock() {
	local f=/run/lock/sasync-e2e-$E2E_PREFIX.lock
	exec {_E2E_LOCK_FD}>"$f"
	flock -n "$_E2E_LOCK_FD" && return 0
	echo "e2e: prefix '$E2E_PREFIX' is in use by another run ($f);" \
		"set E2E_PREFIX to run in parallel" >&2
	return 1
}

# e2e_teardown: idempotent cleanup of processes, namespaces and temp dir
e2e_teardown() {
	local f name
	if [ -n "$E2E_DIR" ] && [ -d "$E2E_DIR/pids" ]; then
		for f in "$E2E_DIR"/pids/*.pid; do
			[ -f "$f" ] || continue
			name=$(basename "$f" .pid)
			_e2e_untrack "$name" TERM 3
		done
	fi
	_e2e_purge_netns
	if [ -n "$E2E_DIR" ] && [ -d "$E2E_DIR" ]; then
		if [ "$E2E_KEEP" = 1 ]; then
			echo "e2e: kept $E2E_DIR"
		else
			rm -rf "$E2E_DIR"
		fi
	fi
	return 0
}

# Deletes this prefix's namespaces. Anything still running inside them was
# started by this harness (or a crashed earlier run with the same prefix), so
# ending those pids is safe; an emptied namespace frees its veths at once.
_e2e_purge_netns() {
	local node ns pid
	for node in $E2E_NODES $E2E_OPT_NODES sw; do
		ns=$(e2e_ns "$node")
		[ -e "/run/netns/$ns" ] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			_e2e_stop_pid "$pid" KILL 5
		done
		ip netns del "$ns" 2>/dev/null
	done
}

# ------------------------------------------------------------------ topology

# _e2e_port NODE SEG IFNAME ADDR: veth IFNAME in NODE, other end bridged on SEG
_e2e_port() {
	local node=$1 seg=$2 ifname=$3 addr=$4 ns sw
	ns=$(e2e_ns "$node")
	sw=$(e2e_ns sw)
	ip -n "$ns" link add "$ifname" type veth peer name "$node-$seg" netns "$sw" || return 1
	ip -n "$sw" link set "$node-$seg" master "$seg" up || return 1
	ip -n "$ns" addr add "$addr/24" dev "$ifname" || return 1
	ip -n "$ns" link set "$ifname" up
}

# _e2e_sysctls NS: settings every namespace gets
_e2e_sysctls() {
	# IPv6 is unused; disabling it keeps captures free of RS/MLD noise
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1
	# decrypted packets arrive on the TUN device (ipsec0) whose routes live in
	# table 220 and vanish with charon; strict reverse path filtering would
	# drop them around failovers, so turn it off explicitly
	ip netns exec "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0
}

_e2e_switch_up() {
	local sw seg
	sw=$(e2e_ns sw)
	ip netns add "$sw" || return 1
	_e2e_sysctls "$sw"
	for seg in ext lan; do
		# STP off: ports forward right away instead of after forward_delay
		ip -n "$sw" link add "$seg" type bridge stp_state 0 forward_delay 0 || return 1
		ip -n "$sw" link set "$seg" up
	done
}

_e2e_node_up() {
	local ns
	ns=$(e2e_ns "$1")
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up
	_e2e_sysctls "$ns"
}

# e2e_topo_up: build switch, nodes, addresses and routes; VIPs on node a
e2e_topo_up() {
	local node
	_e2e_purge_netns
	_e2e_switch_up || return 1
	for node in $E2E_NODES; do _e2e_node_up "$node" || return 1; done
	E2E_CLUSTER_NODES="a b"
	_e2e_port peer ext ext0 "$E2E_PEER_EXT" || return 1
	_e2e_port lan lan lan0 "$E2E_LAN_HOST" || return 1
	for node in $E2E_CLUSTER_NODES; do _e2e_cluster_ports "$node" || return 1; done
	# the kernel here has no dummy driver, so the protected host sits on lo
	ip -n "$(e2e_ns peer)" addr add "$E2E_PEER_HOST/32" dev lo || return 1
	ip -n "$(e2e_ns peer)" route add default via "$E2E_VIP_EXT" dev ext0 || return 1
	ip -n "$(e2e_ns lan)" route add "$E2E_PEER_NET" via "$E2E_VIP_LAN" dev lan0 || return 1
	e2e_vip_move - a
}

# e2e_node_ext NODE, e2e_node_lan NODE: a cluster node's own addresses
e2e_node_ext() { local v="E2E_${1^^}_EXT"; echo "${!v}"; }
e2e_node_lan() { local v="E2E_${1^^}_LAN"; echo "${!v}"; }

# _e2e_cluster_ports NODE: a cluster node's ports on ext and lan, forwarding
_e2e_cluster_ports() {
	_e2e_port "$1" ext ext0 "$(e2e_node_ext "$1")" || return 1
	_e2e_port "$1" lan lan0 "$(e2e_node_lan "$1")" || return 1
	ip netns exec "$(e2e_ns "$1")" sysctl -qw net.ipv4.ip_forward=1
}

# ------------------------------------------------ optional nodes (on request)

# e2e_node_c_up: a third cluster node c (ext0 $E2E_C_EXT, lan0 $E2E_C_LAN),
# built like a and b; from then on a cluster node (LD_PRELOAD, VIP holder,
# sasync_conf's peers). Call after e2e_topo_up.
e2e_node_c_up() {
	_e2e_node_up c || return 1
	_e2e_cluster_ports c || return 1
	E2E_CLUSTER_NODES="a b c"
}

# e2e_rw_ext N: ext address of road warrior N (198.18.0.2N)
e2e_rw_ext() { echo "198.18.0.$((20 + $1))"; }

# e2e_rw_up N: road warriors rw1..rwN (those not up yet) on the ext segment,
# default route via the VIP like the peer; the LAN host routes the virtual
# IP pool through the LAN VIP. Call after e2e_topo_up.
e2e_rw_up() {
	local n=$1 i ns
	if [ "$n" -lt 1 ] || [ "$n" -gt "$E2E_RW_MAX" ]; then
		echo "e2e_rw_up: 1..$E2E_RW_MAX road warriors" >&2
		return 1
	fi
	for ((i = 1; i <= n; i++)); do
		ns=$(e2e_ns "rw$i")
		[ -e "/run/netns/$ns" ] && continue
		_e2e_node_up "rw$i" || return 1
		_e2e_port "rw$i" ext ext0 "$(e2e_rw_ext "$i")" || return 1
		ip -n "$ns" route add default via "$E2E_VIP_EXT" dev ext0 || return 1
	done
	ip -n "$(e2e_ns lan)" route replace "$E2E_RW_POOL" via "$E2E_VIP_LAN" dev lan0
}

# e2e_rw_load N TEMPLATE: render TEMPLATE for road warrior N and load it on
# rwN. Sets the per road warrior placeholders: @RW_EXT@ (its address),
# @RW_ID@ (IKE identity rwN@test), @RW_EAP_ID@ (eap-rwN), @RW_XAUTH_ID@
# (xauth-rwN) and @RW_SECRET@ (the EAP/XAuth password rwN-not-a-secret,
# which the cluster templates list for rw1..rw3).
e2e_rw_load() {
	local E2E_RW_EXT E2E_RW_ID E2E_RW_EAP_ID E2E_RW_XAUTH_ID E2E_RW_SECRET
	E2E_RW_EXT=$(e2e_rw_ext "$1")
	E2E_RW_ID=rw$1@test
	E2E_RW_EAP_ID=eap-rw$1
	E2E_RW_XAUTH_ID=xauth-rw$1
	E2E_RW_SECRET=rw$1-not-a-secret
	e2e_swanctl_load "rw$1" "$2"
}

# e2e_rw_vip N: virtual IP road warrior N got (local-vips of its IKE SA)
e2e_rw_vip() { e2e_ike_field "rw$1" local-vips | tr -d '[]'; }

# e2e_nat_up: NAT router "nat" (outside ext0 $E2E_NAT_EXT on the ext
# segment, inside in0 $E2E_NAT_IN) and "natpeer" behind it (ext0
# $E2E_NATPEER_EXT, default route via the NAT, protected host
# $E2E_NATPEER_HOST on lo). nftables masquerades everything leaving ext0,
# UDP to source ports $E2E_NAT_PORTS, so the cluster sees IKE and
# ESP-in-UDP from a port that is neither 500 nor 4500. The LAN host routes
# $E2E_NATPEER_NET through the LAN VIP. Call after e2e_topo_up.
e2e_nat_up() {
	local nat peer
	nat=$(e2e_ns nat)
	peer=$(e2e_ns natpeer)
	_e2e_node_up nat || return 1
	_e2e_node_up natpeer || return 1
	_e2e_port nat ext ext0 "$E2E_NAT_EXT" || return 1
	# the inside is a plain veth pair, no switch port
	ip -n "$nat" link add in0 type veth peer name ext0 netns "$peer" || return 1
	ip -n "$nat" addr add "$E2E_NAT_IN/24" dev in0 || return 1
	ip -n "$nat" link set in0 up || return 1
	ip -n "$peer" addr add "$E2E_NATPEER_EXT/24" dev ext0 || return 1
	ip -n "$peer" link set ext0 up || return 1
	ip -n "$peer" addr add "$E2E_NATPEER_HOST/32" dev lo || return 1
	ip -n "$peer" route add default via "$E2E_NAT_IN" dev ext0 || return 1
	ip netns exec "$nat" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$nat" nft -f - <<EOF || return 1
table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "ext0" meta l4proto udp masquerade to :$E2E_NAT_PORTS
		oifname "ext0" masquerade
	}
}
EOF
	ip -n "$(e2e_ns lan)" route replace "$E2E_NATPEER_NET" via "$E2E_VIP_LAN" dev lan0
}

# e2e_nat_outside: the NAT router's current outside address
e2e_nat_outside() {
	ip -n "$(e2e_ns nat)" -4 -o addr show dev ext0 | awk '{print $4}' |
		cut -d/ -f1 | head -n 1
}

# e2e_nat_remap: new NAT mappings for everything behind the NAT: the
# outside address switches between $E2E_NAT_EXT and $E2E_NAT_EXT2. Removing
# the old address makes the kernel drop the masquerade conntrack entries
# that use it (there is no conntrack tool here), so the next packet of every
# flow gets a new mapping, and nothing answers on the old address any more.
e2e_nat_remap() {
	local ns old new
	ns=$(e2e_ns nat)
	old=$(e2e_nat_outside)
	new=$E2E_NAT_EXT2
	[ "$old" = "$E2E_NAT_EXT2" ] && new=$E2E_NAT_EXT
	_e2e_addr_swap "$ns" "$old" "$new" || return 1
	e2e_note "NAT outside address $old -> $new"
}

# e2e_addr_move NODE NEW: replace NODE's address on ext0 by NEW/24 (a host
# that roams, e.g. for MOBIKE). The new address is added first, so routes
# via the segment stay. Prints the old address.
e2e_addr_move() {
	local ns old
	ns=$(e2e_ns "$1")
	old=$(ip -n "$ns" -4 -o addr show dev ext0 | awk '{print $4}' | cut -d/ -f1 | head -n 1)
	_e2e_addr_swap "$ns" "$old" "$2" || return 1
	echo "$old"
}

# _e2e_addr_swap NS OLD NEW: NEW/24 on ext0 in place of OLD/24. NEW is added
# first (a secondary address then), and with promote_secondaries it stays
# when the primary OLD goes (by default the kernel would drop it too).
_e2e_addr_swap() {
	ip netns exec "$1" sysctl -qw net.ipv4.conf.ext0.promote_secondaries=1 || return 1
	ip -n "$1" addr add "$3/24" dev ext0 || return 1
	ip -n "$1" addr del "$2/24" dev ext0 || return 1
	ip -n "$1" -4 -o addr show dev ext0 | grep -q " $3/24 "
}

# e2e_link NODE SEG up|down: switch port state, i.e. pull/plug NODE's cable
e2e_link() {
	ip -n "$(e2e_ns sw)" link set "$1-$2" "$3"
}

# e2e_vip_holder: prints the node(s) currently holding the ext VIP
e2e_vip_holder() {
	local node
	for node in $E2E_CLUSTER_NODES; do
		ip -n "$(e2e_ns "$node")" -4 -o addr show dev ext0 2>/dev/null |
			grep -q " $E2E_VIP_EXT/" && echo "$node"
	done
	return 0
}

# e2e_vip_drop NODE: NODE gives up both VIPs (nothing if its namespace is
# gone), e.g. to leave them to keepalived
e2e_vip_drop() {
	local ns
	ns=$(e2e_ns "$1")
	[ -e "/run/netns/$ns" ] || return 0
	ip -n "$ns" addr del "$E2E_VIP_EXT/32" dev ext0 2>/dev/null
	ip -n "$ns" addr del "$E2E_VIP_LAN/32" dev lan0 2>/dev/null
	return 0
}

# e2e_vip_move FROM TO: move both VIPs (FROM "-" = nobody), then announce
# them from TO with gratuitous ARP and flush the stale neighbour entries
e2e_vip_move() {
	local from=$1 to=$2 tns node
	tns=$(e2e_ns "$to")
	[ "$from" != - ] && e2e_vip_drop "$from"
	ip -n "$tns" addr replace "$E2E_VIP_EXT/32" dev ext0 || return 1
	ip -n "$tns" addr replace "$E2E_VIP_LAN/32" dev lan0 || return 1
	ip -n "$(e2e_ns peer)" neigh flush to "$E2E_VIP_EXT" dev ext0 2>/dev/null
	ip -n "$(e2e_ns lan)" neigh flush to "$E2E_VIP_LAN" dev lan0 2>/dev/null
	for node in $E2E_OPT_NODES; do
		# road warriors and the NAT router, if up, sit on ext as well
		[ -e "/run/netns/$(e2e_ns "$node")" ] &&
			ip -n "$(e2e_ns "$node")" neigh flush to "$E2E_VIP_EXT" dev ext0 2>/dev/null
	done
	_e2e_garp "$tns" ext0 "$E2E_VIP_EXT"
	_e2e_garp "$tns" lan0 "$E2E_VIP_LAN"
}

# Unsolicited ARP request (-U) and reply (-A): hosts differ in which of the
# two they accept to update an existing entry; the bridge learns the new
# port from them too. arping sends at once but then lingers for a second
# (it accepts neither sub-second -w nor -i), so it runs in the background
# rather than delaying the failover being measured.
_e2e_garp() {
	local mode
	for mode in U A; do
		_e2e_untrack "garp-$2-$mode" TERM 1
		_e2e_bg "garp-$2-$mode" ip netns exec "$1" \
			arping -q -c 1 "-$mode" -I "$2" "$3" >/dev/null 2>&1
	done
}

# ------------------------------------------------------------------- charon

# e2e_log NODE: path of NODE's charon log
e2e_log() { echo "$E2E_DIR/$1/charon.log"; }

# e2e_count_in_log NODE ERE: number of charon log lines matching ERE
e2e_count_in_log() {
	local n
	n=$(grep -cE -- "$2" "$(e2e_log "$1")" 2>/dev/null)
	echo "${n:-0}"
}

# _e2e_tod_ms: "HH:MM:SS.mmm ..." on stdin (first line) -> ms since midnight
_e2e_tod_ms() {
	awk '{ split($1, t, /[:.]/); print ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4]; f = 1; exit }
	     END { exit !f }'
}

# e2e_log_ms NODE ERE [FROM_LINE]: time of day in ms of the first line
# matching ERE (from FROM_LINE on) in NODE's charon log (all charons log
# the same clock, with ms)
e2e_log_ms() {
	tail -n "+${3:-1}" "$(e2e_log "$1")" 2>/dev/null | grep -E -m 1 -- "$2" | _e2e_tod_ms
}

# e2e_tod_ms: time of day in ms now, the clock of e2e_log_ms
e2e_tod_ms() { date +%H:%M:%S.%3N | _e2e_tod_ms; }

# e2e_charon_pid NODE: pid of NODE's running charon (fails if none)
e2e_charon_pid() {
	local pid
	pid=$(_e2e_pid "charon-$1") || return 1
	_e2e_alive "$pid" && echo "$pid"
}

_e2e_is_cluster() { [[ " $E2E_CLUSTER_NODES " == *" $1 "* ]]; }
_e2e_is_rw() { [[ $1 == rw[1-9] ]]; }

# The plugin list. kernel-libipsec gets the highest priority so its
# kernel-ipsec backend registers first (first one wins, kernel-netlink's then
# fails to register, which is expected); kernel-netlink still provides
# kernel-net (addresses, routes). Unprioritised plugins ("yes") load after.
_e2e_plugins_conf() {
	local p
	echo "		kernel-libipsec { load = 30 }"
	echo "		kernel-netlink { load = 20 }"
	for p in random nonce aes sha1 sha2 hmac kdf gcm chapoly gmp curve25519 \
		x509 pubkey pkcs1 pem attr socket-default vici $E2E_EXTRA_PLUGINS; do
		echo "		$p { load = yes }"
	done
	if _e2e_is_rw "$1"; then
		for p in $E2E_RW_PLUGINS; do
			[[ " $E2E_EXTRA_PLUGINS " == *" $p "* ]] || echo "		$p { load = yes }"
		done
	fi
	_e2e_is_cluster "$1" || return 0
	[ -n "$E2E_PRELOAD" ] && echo "		$E2E_PRELOAD_PLUGIN { load = yes }"
	[ -n "$E2E_PLUGIN_CONF" ] && echo "$E2E_PLUGIN_CONF"
	return 0
}

# _e2e_strongswan_conf NODE [SNIPPET]: complete strongswan.conf on stdout;
# deliberately no include of Debian's strongswan.d (it disables libipsec)
_e2e_strongswan_conf() {
	cat <<EOF
# generated by tests/e2e/lib.sh for node $1
charon {
	load_modular = yes
	# each "swanctl --initiate" blocks a thread until its SA is up: with 16
	# (the default), ten at once left the peer no thread to process the
	# answers until they timed out (test_lifecycle_many)
	threads = 32
	filelog {
		e2e {
			path = $(e2e_log "$1")
			time_format = %H:%M:%S
			time_add_ms = yes
			ike_name = yes
			append = no
			flush_line = yes
			default = 1
			ike = 2
			chd = 2
			knl = 2
			cfg = 2
			app = 2
$E2E_LOG_EXTRA
		}
	}
	plugins {
$(_e2e_plugins_conf "$1")
	}
$E2E_CHARON_CONF
${2:-}
}
EOF
}

# e2e_charon_start NODE [SNIPPET]: start charon in NODE's namespaces and wait
# for its vici socket. SNIPPET is appended inside the charon { } section
# (sections merge, so "plugins { sasync { ... } }" works there).
e2e_charon_start() {
	local node=$1 dir pid envs
	dir=$E2E_DIR/$node
	mkdir -p "$dir"
	_e2e_strongswan_conf "$node" "${2:-}" >"$dir/strongswan.conf"
	envs=("STRONGSWAN_CONF=$dir/strongswan.conf")
	if _e2e_is_cluster "$node" && [ -n "$E2E_PRELOAD" ]; then
		envs+=("LD_PRELOAD=$E2E_PRELOAD")
	fi
	# ip netns exec, unshare, sh and env all exec, so $! ends up as charon
	# shellcheck disable=SC2016 # $@ is for the inner sh
	ip netns exec "$(e2e_ns "$node")" unshare -m --propagation private \
		sh -c 'mount -t tmpfs -o mode=0755 e2e-run /run && exec "$@"' \
		e2e-charon env "${envs[@]}" "$E2E_CHARON" \
		>"$dir/charon.out" 2>&1 </dev/null {_E2E_LOCK_FD}>&- &
	pid=$!
	_e2e_track "charon-$node" "$pid"
	# also stop waiting early if charon died (bad config, missing plugin)
	e2e_wait_for "charon on $node (vici socket)" 15 \
		eval "_e2e_charon_ready $pid || ! _e2e_alive $pid"
	_e2e_charon_ready "$pid" || { cat "$dir/charon.out" >&2; return 1; }
}

# ready once the exec chain reached charon and vici listens in its /run
_e2e_charon_ready() {
	[ "$(cat "/proc/$1/comm" 2>/dev/null)" = charon ] &&
		[ -S "/proc/$1/root/run/charon.vici" ]
}

# e2e_charon_kill NODE [SIGNAL]: default TERM; KILL simulates a crash
e2e_charon_kill() {
	_e2e_untrack "charon-$1" "${2:-TERM}" 10
}

# e2e_exec NODE cmd...: run cmd in NODE's charon namespaces (net + mount, so
# /run/charon.vici and any plugin sockets there are visible), or just in its
# network namespace when no charon runs there
e2e_exec() {
	local node=$1 pid
	shift
	if pid=$(e2e_charon_pid "$node"); then
		nsenter -t "$pid" -n -m "$@"
	else
		ip netns exec "$(e2e_ns "$node")" "$@"
	fi
}

# e2e_swanctl NODE args...: swanctl against NODE's charon
e2e_swanctl() {
	local node=$1
	shift
	e2e_charon_pid "$node" >/dev/null || { echo "no charon on $node" >&2; return 1; }
	e2e_exec "$node" env STRONGSWAN_CONF="$E2E_DIR/$node/strongswan.conf" \
		"$E2E_SWANCTL_BIN" "$@"
}

# e2e_render TEMPLATE: template on stdout, @NAME@ replaced by $E2E_NAME
e2e_render() {
	local tpl=$1 out var val
	out=$(cat "$tpl") || return 1
	for var in $(grep -o '@[A-Z0-9_]*@' "$tpl" | sort -u | tr -d @); do
		val="E2E_$var"
		[ -n "${!val+x}" ] || { echo "$tpl: \$$val is not set" >&2; return 1; }
		out=${out//@$var@/${!val}}
	done
	echo "$out"
}

# e2e_swanctl_load NODE TEMPLATE: render conf/TEMPLATE (or a path) into
# NODE's dir and load connections and secrets from it
e2e_swanctl_load() {
	local node=$1 tpl=$2 file
	[ -f "$tpl" ] || tpl=$E2E_CONF_DIR/$tpl
	file=$E2E_DIR/$node/swanctl.conf
	e2e_render "$tpl" >"$file" || return 1
	e2e_swanctl "$node" --load-all --noprompt --file "$file" >"$E2E_DIR/$node/load.out" 2>&1 ||
		{ cat "$E2E_DIR/$node/load.out" >&2; return 1; }
}

# e2e_initiate NODE [CHILD]: initiate CHILD (default $E2E_CHILD) from NODE
# (up to 30 s: a loaded machine)
e2e_initiate() {
	e2e_swanctl "$1" --initiate --child "${2:-$E2E_CHILD}" --timeout 30 \
		>>"$E2E_DIR/$1/initiate.out" 2>&1
}

# ------------------------------------------------------------- SA inspection

# e2e_sas_raw NODE: swanctl --list-sas --raw (one line per IKE SA)
e2e_sas_raw() { e2e_swanctl "$1" --list-sas --raw 2>/dev/null; }

# _e2e_kv KEY: value of the first KEY=value on stdin
_e2e_kv() { grep -oE "(^|[ {])$1=[^ }]*" | head -n 1 | sed 's/^[ {]//; s/^[^=]*=//'; }

# e2e_sa_field NODE KEY: value of the first KEY=value anywhere in NODE's
# listing (first IKE SA); prefer the two scoped variants below
e2e_sa_field() { e2e_sas_raw "$1" | _e2e_kv "$2"; }

# e2e_ike_field NODE KEY: KEY of the first IKE SA itself (state,
# initiator-spi, responder-spi, local-host, remote-port, uniqueid, ...)
e2e_ike_field() { e2e_sas_raw "$1" | head -n 1 | sed 's/ child-sas .*//' | _e2e_kv "$2"; }

# e2e_child_field NODE KEY: KEY of its first CHILD SA (state, spi-in,
# spi-out, packets-in, bytes-out, reqid, ...)
e2e_child_field() { e2e_sas_raw "$1" | head -n 1 | sed -n 's/.* child-sas //p' | _e2e_kv "$2"; }

# e2e_sa_count NODE: number of IKE SAs NODE's charon knows
e2e_sa_count() { e2e_sas_raw "$1" | grep -c '^list-sa event'; }

# e2e_ike_spis NODE: "initiator_spi responder_spi" of the first IKE SA
e2e_ike_spis() {
	local i r
	i=$(e2e_ike_field "$1" initiator-spi)
	r=$(e2e_ike_field "$1" responder-spi)
	[ -n "$i" ] && [ -n "$r" ] && echo "$i $r"
}

# e2e_child_spis NODE: "spi_in spi_out" of the first CHILD SA
e2e_child_spis() {
	local i o
	i=$(e2e_child_field "$1" spi-in)
	o=$(e2e_child_field "$1" spi-out)
	[ -n "$i" ] && [ -n "$o" ] && echo "$i $o"
}

# e2e_sa_up NODE: some IKE SA is ESTABLISHED with an INSTALLED CHILD SA
# (any of them: during a failover a node may list more than one)
e2e_sa_up() {
	local line
	while read -r line; do
		[ "$(_e2e_kv state <<<"${line%% child-sas *}")" = ESTABLISHED ] &&
			[[ $line == *" child-sas "* ]] &&
			[ "$(_e2e_kv state <<<"${line#* child-sas }")" = INSTALLED ] &&
			return 0
	done < <(e2e_sas_raw "$1")
	return 1
}

# e2e_sa_none NODE: NODE's charon answers and has no IKE SA at all
e2e_sa_none() {
	local raw
	raw=$(e2e_sas_raw "$1") || return 1
	[[ $raw != *"list-sa event"* ]]
}

# e2e_sa_find NODE KEY VALUE: the raw line of the first IKE SA whose own
# KEY (not a CHILD SA's) is VALUE, e.g. initiator-spi, remote-host or
# remote-eap-id; fails if there is none. For nodes with several IKE SAs.
e2e_sa_find() {
	local line
	while read -r line; do
		[ "$(_e2e_kv "$2" <<<"${line%% child-sas *}")" = "$3" ] &&
			{ echo "$line"; return 0; }
	done < <(e2e_sas_raw "$1")
	return 1
}

# e2e_line_ike KEY, e2e_line_child KEY: KEY of the IKE SA, or of its first
# CHILD SA, in a raw line on stdin (from e2e_sa_find); lists such as
# remote-vips or local-ts come without their brackets
e2e_line_ike() { sed 's/ child-sas .*//' | _e2e_kv "$1" | tr -d '[]'; }
e2e_line_child() { sed -n 's/.* child-sas //p' | _e2e_kv "$1" | tr -d '[]'; }

# e2e_line_children: one line per CHILD SA of the raw lines on stdin:
# "uniqueid state spi_in spi_out local_ts remote_ts" (first TS of each)
e2e_line_children() {
	sed -n 's/.* child-sas //p' | grep -oE '\{name=[^}]*\}' | while read -r c; do
		echo "$(_e2e_kv uniqueid <<<"$c") $(_e2e_kv state <<<"$c")" \
			"$(_e2e_kv spi-in <<<"$c") $(_e2e_kv spi-out <<<"$c")" \
			"$(_e2e_kv local-ts <<<"$c" | tr -d '[]') $(_e2e_kv remote-ts <<<"$c" | tr -d '[]')"
	done
}

# e2e_child_list NODE: e2e_line_children of all of NODE's IKE SAs. IKEv1
# keeps rekeyed CHILD SAs listed (state REKEYED) until they expire, so the
# first CHILD SA is not always the current one.
e2e_child_list() { e2e_sas_raw "$1" | e2e_line_children; }

# e2e_line_newest_child: the e2e_line_children line of the INSTALLED CHILD
# SA with the highest uniqueid among the raw lines on stdin
e2e_line_newest_child() {
	e2e_line_children | awk '$2 == "INSTALLED"' | sort -n | tail -n 1
}

# --------------------------------------------------------------------- ping

_e2e_ping_log() { echo "$E2E_DIR/ping-$1.log"; }

# e2e_ping_once NODE SRC DST: one echo request, 1 s timeout
e2e_ping_once() {
	ip netns exec "$(e2e_ns "$1")" ping -n -q -c 1 -W 1 -I "$2" "$3" >/dev/null 2>&1
}

# e2e_wait_ping NODE SRC DST [TIMEOUT_S]: poll until a ping succeeds
e2e_wait_ping() {
	e2e_wait_for "ping $2 -> $3 from $1" "${4:-10}" e2e_ping_once "$1" "$2" "$3"
}

# e2e_ping_start NAME NODE SRC DST: background 10 pps ping, timestamped (-D)
# and reporting missing replies (-O)
e2e_ping_start() {
	local name=$1
	_e2e_bg "ping-$name" ip netns exec "$(e2e_ns "$2")" \
		ping -n -i 0.1 -D -O -W 1 -I "$3" "$4" >"$(_e2e_ping_log "$name")" 2>&1
}

# e2e_ping_stop NAME: SIGINT so ping writes its summary
e2e_ping_stop() { _e2e_untrack "ping-$1" INT 5; }

# e2e_ping_stats NAME: "transmitted received lost" from the summary of a
# stopped ping
e2e_ping_stats() {
	sed -nE 's/^([0-9]+) packets transmitted, ([0-9]+) received.*/\1 \2/p' \
		"$(_e2e_ping_log "$1")" | awk '{print $1, $2, $1 - $2; f=1} END {exit !f}'
}

# e2e_ping_replies NAME: replies so far (works while ping runs)
e2e_ping_replies() {
	local n
	n=$(grep -c 'bytes from' "$(_e2e_ping_log "$1")" 2>/dev/null)
	echo "${n:-0}"
}

# e2e_wait_ping_replies NAME COUNT [TIMEOUT_S]: until NAME has COUNT more
# replies than now, e.g. "pings resumed after failover"
e2e_wait_ping_replies() {
	local target=$(($(e2e_ping_replies "$1") + $2))
	e2e_wait_for "$2 more replies on ping $1" "${3:-10}" \
		eval "[ \$(e2e_ping_replies $1) -ge $target ]"
}

# e2e_ping_report NAMES...: lost pings and longest gap of each stopped ping
e2e_ping_report() {
	local name tx rx lost
	for name in "$@"; do
		read -r tx rx lost <<<"$(e2e_ping_stats "$name")"
		echo "ping $name at 10 pps: transmitted=$tx received=$rx lost=$lost" \
			"longest gap=$(e2e_ping_max_gap "$name")ms"
	done
}

# e2e_ping_max_gap NAME: longest time in ms between two consecutive replies
# (the outage), from the -D timestamps
e2e_ping_max_gap() {
	grep 'bytes from' "$(_e2e_ping_log "$1")" | tr -d '[]' |
		awk '{ if (NR > 1 && $1 - p > g) g = $1 - p; p = $1 }
		     END { printf "%d\n", g * 1000 }'
}

# ------------------------------------------------------------------ capture

_e2e_pcap() { echo "$E2E_DIR/cap-$1.pcap"; }

# e2e_capture_start NAME NODE IFACE [FILTER...]: background tcpdump to a
# pcap; returns once tcpdump listens
e2e_capture_start() {
	local name=$1 node=$2 ifc=$3 err
	shift 3
	err=$E2E_DIR/cap-$name.err
	# -Z root: Debian's tcpdump would otherwise drop to a user that cannot
	# write into the private temp dir
	_e2e_bg "cap-$name" ip netns exec "$(e2e_ns "$node")" \
		tcpdump -n -U -Z root -i "$ifc" -w "$(_e2e_pcap "$name")" "$@" >"$err" 2>&1
	e2e_wait_for "tcpdump $name listening" 10 grep -q 'listening on' "$err"
}

e2e_capture_stop() { _e2e_untrack "cap-$1" INT 5; }

# e2e_capture_esp_count NAME: number of ESP-in-UDP (non-zero SPI) packets
e2e_capture_esp_count() {
	local n
	n=$(tcpdump -n -r "$(_e2e_pcap "$1")" 'udp port 4500' 2>/dev/null |
		grep -c 'ESP(spi=0x')
	echo "${n:-0}"
}
