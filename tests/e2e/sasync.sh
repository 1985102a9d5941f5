# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Helpers for end-to-end tests of the sasync plugin, on top of lib.sh: a
# two-node cluster (a primary, b standby) syncing over the LAN segment.

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${SASYNC_SECRET:=0x27bb41b1b37236ab53f18642b83735e8907c344d1cfcdfdcf83480f7a75aced1}"
# another key, for tests of a wrong one
: "${SASYNC_OTHER_SECRET:=0xef31d3a66bacfc0d82716690500d36c0619b3b04a5a587099f1acf13155c760a}"
: "${SASYNC_CTL:=$E2E_LIB_DIR/../../tools/sasyncctl}"
SASYNC_URI=unix:///run/charon-sasync.vici
# the product elects by default; most tests drive the roles themselves
# (SASYNC_ELECTION=yes for those of the election); SASYNC_EXTRA_CONF: more
# lines for the plugin's section on every node, SASYNC_NODE_CONF_<node>
# (e.g. SASYNC_NODE_CONF_c) on that node only

# sasync_election_on: the election decides the roles (set before the
# nodes start), with the built-in cluster addresses (both VIPs), a heartbeat
# every 200 ms and 5 missed ones declaring a node dead
sasync_election_on() {
	SASYNC_ELECTION=yes
	SASYNC_EXTRA_CONF="		addresses = $E2E_VIP_EXT/32@ext0, $E2E_VIP_LAN/32@lan0
		heartbeat_interval = 200
		heartbeat_lost = 5"
}

# sasync_key_conf NODE KEY: the key setting of NODE: a valid key goes into
# a file of mode 0600 (secret_file), anything else inline (secret), to be
# refused
sasync_key_conf() {
	local file=$E2E_DIR/sasync-$1.key
	case $2 in
	0x* | 0s*)
		(umask 077 && echo "$2" > "$file")
		echo "		secret_file = $file"
		;;
	*) echo "		secret = $2" ;;
	esac
}

# sasync_conf NODE ROLE [SECRET] [PEERS]: the plugin's strongswan.conf
# snippet; the node is named NODE; PEERS defaults to "name@LAN address" of
# the other cluster nodes
sasync_conf() {
	local node=$1 role=$2 secret=${3-$SASYNC_SECRET} peers=${4:-} local_ip n
	local node_conf="SASYNC_NODE_CONF_$1"
	local_ip=$(e2e_node_lan "$node")
	if [ -z "$peers" ]; then
		for n in $E2E_CLUSTER_NODES; do
			[ "$n" = "$node" ] ||
				peers+="${peers:+, }$n@$(e2e_node_lan "$n")"
		done
	fi
	cat <<EOF2
plugins {
	sasync {
		local = $local_ip
		peers = $peers
		role = $role
		node_id = $node
		socket = $SASYNC_URI
		election = ${SASYNC_ELECTION:-no}
$( [ -n "$secret" ] && sasync_key_conf "$node" "$secret")
$( [ -n "${SASYNC_EXTRA_CONF:-}" ] && echo "$SASYNC_EXTRA_CONF")
$( [ -n "${!node_conf:-}" ] && echo "${!node_conf}")
	}
}
EOF2
}

# sasync_start NODE ROLE [SECRET] [PEERS]: charon with the plugin, conn loaded
sasync_start() {
	local node=$1
	e2e_charon_start "$node" "$(sasync_conf "$@")" || return 1
	# the cluster leaves DPD to the peer, so tests know who starts it
	E2E_DPD_DELAY=0s e2e_swanctl_load "$node" cluster.conf
}

# sasync_ctl NODE ARGS...: sasyncctl against NODE's plugin socket
sasync_ctl() {
	local node=$1
	shift
	e2e_exec "$node" "$SASYNC_CTL" --uri "$SASYNC_URI" "$@"
}

# sasync_status NODE KEY: a value from ha-status
sasync_status() {
	sasync_ctl "$1" --raw status | grep -oE "(^|[ {])$2=[^ }]*" | head -n 1 |
		sed 's/.*=//'
}

# sasync_stat NODE COUNTER: a counter from the ha section of stats
sasync_stat() {
	sasync_ctl "$1" --raw stats | grep -oE "ha \{.*" |
		grep -oE "(^|[ {])$2=[^ }]*" | head -n 1 | sed 's/.*=//'
}

# sasync_cluster_start [ROLE_A [ROLE_B [ROLE_C]]]: topology, peer, a
# (primary), b (standby) with their connections loaded, no tunnel yet; with
# ROLE_C also the third node c (e2e_node_c_up), before a and b start so
# that every node has the other two as peers
# shellcheck disable=SC2120  # test_keepalived.sh passes the roles
sasync_cluster_start() {
	e2e_topo_up || e2e_fail "topology up"
	if [ -n "${3:-}" ]; then e2e_node_c_up || e2e_fail "node c up"; fi
	e2e_charon_start peer || e2e_fail "charon on peer"
	e2e_swanctl_load peer peer.conf || e2e_fail "load peer.conf"
	sasync_start a "${1:-primary}" || e2e_fail "charon with sasync on a"
	sasync_start b "${2:-standby}" || e2e_fail "charon with sasync on b"
	if [ -n "${3:-}" ]; then
		sasync_start c "$3" || e2e_fail "charon with sasync on c"
	fi
}

# sasync_tunnel_up: the peer initiates; the SA is up on the peer and on a
sasync_tunnel_up() {
	e2e_initiate peer || e2e_fail "initiate from peer"
	e2e_wait_for "SA up on peer" 10 e2e_sa_up peer || e2e_fail "SA up on peer"
	e2e_wait_for "SA up on a" 10 e2e_sa_up a || e2e_fail "SA up on a"
}

# sasync_monitor NAME NODE [ARGS]: sasyncctl monitor in the background, its
# output in $E2E_DIR/NAME.log
sasync_monitor() {
	local name=$1 node=$2 pid
	shift 2
	pid=$(e2e_charon_pid "$node") || return 1
	_e2e_bg "$name" nsenter -t "$pid" -n -m "$SASYNC_CTL" --uri "$SASYNC_URI" \
		"$@" monitor >"$E2E_DIR/$name.log" 2>&1
	e2e_wait_for "$name registered" 5 \
		grep -q '^monitoring' "$E2E_DIR/$name.log"
}

# sasync_monitor_has NAME ERE: the monitor printed a matching line
sasync_monitor_has() { grep -qE "$2" "$E2E_DIR/$1.log"; }

# sasync_mac NODE: MAC address of NODE's ext0
sasync_mac() {
	ip -n "$(e2e_ns "$1")" link show ext0 | awk '/link\/ether/ { print $2 }'
}

# sasync_ike_from PCAP MAC: IKE messages (not ESP) in PCAP sent by MAC
sasync_ike_from() {
	tshark -r "$1" -n -d udp.port==4500,udpencap \
		-Y "eth.src == $2 && isakmp" 2>/dev/null | wc -l
}

# sasync_peer_ike_deletes: DELETEs of an IKE SA the peer received (a new
# primary's forced rekeys delete old CHILD SAs, as they should)
sasync_peer_ike_deletes() {
	e2e_count_in_log peer "received DELETE for IKE_SA"
}

# sasync_two_primaries_setup: an electing cluster with the tunnel synced;
# sets ike_before (the peer's IKE SPIs), mac_a and deletes (IKE SA deletes
# the peer received so far) for sasync_a_was_silent
# shellcheck disable=SC2034
sasync_two_primaries_setup() {
	e2e_init
	sasync_election_on
	sasync_cluster_synced
	ike_before=$(e2e_ike_spis peer)
	mac_a=$(sasync_mac a)
	deletes=$(sasync_peer_ike_deletes)
}

# sasync_a_back_as_standby: after a demoted itself, it gives up the
# cluster addresses and holds b's SAs again, and the pings l2p2 get 20
# replies through b; then they are stopped and reported
sasync_a_back_as_standby() {
	e2e_wait_for "a gives up the cluster addresses" 10 \
		eval '! ip -n "$(e2e_ns a)" -4 addr show dev ext0 | grep -q "$E2E_VIP_EXT/32"' ||
		e2e_fail "addresses left on a"
	e2e_wait_for "a holds b's SAs again (resync)" 15 sasync_synced b a ||
		e2e_fail "resync from b to a"
	e2e_check "traffic flows through b" e2e_wait_ping_replies l2p2 20 10
	e2e_ping_stop l2p2
	e2e_ping_report l2p2
}

# sasync_a_was_silent DELETES MAC IKE_SPIS: the capture "ike" on the peer
# stops; the peer received no DELETE of an IKE SA beyond DELETES, no IKE
# message from a's MAC, and still has the IKE SA of IKE_SPIS
sasync_a_was_silent() {
	# evaluated in e2e_check, where the positional parameters differ
	# shellcheck disable=SC2034
	local silent_deletes=$1 silent_ike=$3 from_a
	e2e_capture_stop ike
	e2e_check "the peer received no DELETE of its IKE SA" \
		eval '[ "$(sasync_peer_ike_deletes)" = "$silent_deletes" ]'
	from_a=$(sasync_ike_from "$(_e2e_pcap ike)" "$2")
	echo "IKE messages the peer saw from a's MAC ($2): $from_a"
	e2e_check "a sent no IKE message to the peer" [ "$from_a" = 0 ]
	e2e_check "peer kept its IKE SA (same SPIs)" \
		eval '[ "$(e2e_ike_spis peer)" = "$silent_ike" ]'
}

# sasync_cluster_up: topology, peer, a (primary), b (standby), tunnel up
sasync_cluster_up() {
	sasync_cluster_start
	sasync_tunnel_up
}

# sasync_wait_synced [FROM [TO...]]: TO (b) holds FROM's (a's) SAs (same
# IKE and CHILD SPIs)
# shellcheck disable=SC2120  # test_three_nodes.sh passes the nodes
sasync_wait_synced() {
	local from=${1:-a} to
	shift
	for to in "${@:-b}"; do
		e2e_wait_for "$to has $from's IKE and CHILD SPIs" 10 \
			sasync_synced "$from" "$to" || e2e_fail "SAs synced from $from to $to"
	done
}

# sasync_cluster_synced: sasync_cluster_up, then b holds a's SAs
sasync_cluster_synced() {
	sasync_cluster_up
	sasync_wait_synced
}

# sasync_pings_resume: the pings l2p (LAN host -> peer) and p2l, started
# before a failover, get 20 more replies each within 10 s; then both are
# stopped and reported
sasync_pings_resume() {
	e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan after failover"
	e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer after failover"
	e2e_ping_stop l2p
	e2e_ping_stop p2l
	e2e_ping_report l2p p2l
}

# sasync_synced NODE_FROM NODE_TO: NODE_TO lists the same IKE and CHILD SPIs
sasync_synced() {
	local ike child
	ike=$(e2e_ike_spis "$1")
	child=$(e2e_child_spis "$1")
	[ -n "$ike" ] && [ -n "$child" ] &&
		[ "$(e2e_ike_spis "$2")" = "$ike" ] &&
		[ "$(e2e_child_spis "$2")" = "$child" ]
}

# sasync_sync_idle: every frame a sent was accepted by b and nothing is
# queued (a's latest state reached b: before killing a)
sasync_sync_idle() {
	local tx rx q
	tx=$(sasync_stat a sync-tx)
	rx=$(sasync_stat b sync-rx)
	q=$(sasync_stat a queue-depth)
	[ -n "$tx" ] && [ "$tx" = "$rx" ] && [ "${q:-0}" = 0 ]
}

# sasync_ike_hold NODE TYPE sport|dport on|off: drop (or no longer) the IKE
# messages of exchange TYPE (35 IKE_AUTH, 36 CREATE_CHILD_SA) arriving at
# NODE from (sport) or to (dport) the IKE ports. The exchange type is byte
# 18 of the IKE header, after the UDP header and, on port 4500, the non-ESP
# marker (4 zero bytes).
sasync_ike_hold() {
	local ns
	ns=$(e2e_ns "$1")
	if [ "$4" = off ]; then
		ip netns exec "$ns" nft delete table inet sasync_hold
		return
	fi
	ip netns exec "$ns" nft -f - <<EOF
table inet sasync_hold {
	chain input {
		type filter hook input priority 0; policy accept;
		udp $3 500 @th,208,8 $2 counter drop
		udp $3 4500 @th,64,32 0 @th,240,8 $2 counter drop
	}
}
EOF
}

# sasync_ike_held NODE: messages sasync_ike_hold dropped at NODE so far
sasync_ike_held() {
	ip netns exec "$(e2e_ns "$1")" nft list table inet sasync_hold 2>/dev/null |
		awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'
}

# sasync_failover: kill -9 a's charon, move the VIPs to b, promote b
sasync_failover() {
	e2e_charon_kill a KILL
	e2e_vip_move a b
	sasync_ctl b promote >/dev/null
}

# sasync_esp_reuse PCAP SRC: ESP (SPI, sequence) pairs sent by SRC that
# appear more than once, one per line ("spi seq count")
sasync_esp_reuse() {
	tshark -r "$1" -n -d udp.port==4500,udpencap -Y "esp && ip.src==$2" \
		-T fields -e esp.spi -e esp.sequence 2>/dev/null |
		sort | uniq -c | awk '$1 > 1 { print $2, $3, $1 }'
}

# sasync_esp_spis PCAP SRC: distinct ESP SPIs sent by SRC
sasync_esp_spis() {
	tshark -r "$1" -n -d udp.port==4500,udpencap -Y "esp && ip.src==$2" \
		-T fields -e esp.spi 2>/dev/null | sort -u
}

# sasync_reset: tear the run down and start afresh in the same test script
# (keeps the prefix lock that e2e_init took)
sasync_reset() {
	e2e_teardown
	E2E_DIR=$(mktemp -d /tmp/sasync-e2e.XXXXXX)
	mkdir -p "$E2E_DIR/pids"
}
