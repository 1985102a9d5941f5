# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Many tunnels between the peer and the cluster (test_lifecycle_many.sh,
# test_rejoin.sh), on top of lifecycle.sh: MANY_CONNS IKEv2 connections from
# the peer, each with its own identities (peerN@test, clusterN@test) and
# MANY_CHILDREN CHILD SAs. CHILD SA i (1..MANY_CONNS * MANY_CHILDREN)
# protects 198.18.2.0/24 <-> 198.18.1.(MANY_ADDR_BASE + i), an address on the
# peer's lo, so a ping picks exactly one tunnel. The configurations are
# generated into $E2E_DIR/gen.

# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "${BASH_SOURCE[0]}")/lifecycle.sh"

: "${MANY_CONNS:=10}"
: "${MANY_CHILDREN:=5}"
# tunnel i uses 198.18.1.(MANY_ADDR_BASE + i); .1 is E2E_PEER_HOST
: "${MANY_ADDR_BASE:=100}"
MANY_N=$((MANY_CONNS * MANY_CHILDREN))

# many_addr I: the peer's address of tunnel I (many_gen_conf and
# many_setup compute it inline)
many_addr() { echo "198.18.1.$((MANY_ADDR_BASE + $1))"; }
# many_conn I, many_child I: connection and CHILD SA names of tunnel I (1..N)
many_conn() { echo "m$((($1 - 1) / MANY_CHILDREN + 1))"; }
many_child() { echo "$(many_conn "$1")c$((($1 - 1) % MANY_CHILDREN + 1))"; }

# many_gen_conf peer|cluster [START_ACTION]: the swanctl.conf of one side,
# its CHILD SAs with START_ACTION (none). No command substitution or other
# fork per tunnel: 200 tunnels would take seconds on a loaded machine.
many_gen_conf() {
	local side=$1 start=${2:-none} c k i me other lts rts laddr raddr
	if [ "$side" = peer ]; then
		laddr=$E2E_PEER_EXT raddr=$E2E_VIP_EXT
	else
		laddr=$E2E_VIP_EXT raddr=$E2E_PEER_EXT
	fi
	echo "connections {"
	for ((c = 1; c <= MANY_CONNS; c++)); do
		if [ "$side" = peer ]; then me=peer$c@test other=cluster$c@test
		else me=cluster$c@test other=peer$c@test; fi
		printf '\tm%s {\n\t\tversion = 2\n\t\tlocal_addrs = %s\n\t\tremote_addrs = %s\n' \
			"$c" "$laddr" "$raddr"
		printf '\t\tproposals = %s\n\t\trekey_time = 24h\n\t\tdpd_delay = 0s\n\t\tmobike = no\n' \
			"$E2E_IKE_PROPOSAL"
		printf '\t\tlocal { auth = psk\n\t\t\tid = %s }\n\t\tremote { auth = psk\n\t\t\tid = %s }\n' \
			"$me" "$other"
		printf '\t\tchildren {\n'
		for ((k = 1; k <= MANY_CHILDREN; k++)); do
			i=$(((c - 1) * MANY_CHILDREN + k))
			if [ "$side" = peer ]; then lts=198.18.1.$((MANY_ADDR_BASE + i))/32 rts=$E2E_LAN_NET
			else lts=$E2E_LAN_NET rts=198.18.1.$((MANY_ADDR_BASE + i))/32; fi
			printf '\t\t\tm%sc%s {\n\t\t\t\tlocal_ts = %s\n\t\t\t\tremote_ts = %s\n' \
				"$c" "$k" "$lts" "$rts"
			printf '\t\t\t\tesp_proposals = %s\n\t\t\t\trekey_time = 24h\n' "$E2E_ESP_PROPOSAL"
			printf '\t\t\t\tstart_action = %s\n\t\t\t}\n' "$start"
		done
		printf '\t\t}\n\t}\n'
	done
	echo "}"
	echo "secrets {"
	echo "	ike-many {"
	for ((c = 1; c <= MANY_CONNS; c++)); do
		printf '\t\tid-p%s = peer%s@test\n\t\tid-c%s = cluster%s@test\n' "$c" "$c" "$c" "$c"
	done
	echo "		secret = \"$E2E_PSK\""
	echo "	}"
	echo "}"
}

# many_setup [START_ACTION]: topology, the cluster's generated
# configuration, the tunnel addresses on the peer's lo, the peer's charon;
# with START_ACTION the peer's MANY_CONNS connections are loaded too
# (many_peer_load)
many_setup() {
	local i
	if [ $((MANY_ADDR_BASE + MANY_N)) -gt 254 ]; then
		e2e_fail "$MANY_N tunnels from 198.18.1.$((MANY_ADDR_BASE + 1)) do not fit in 198.18.1.0/24"
	fi
	e2e_topo_up || e2e_fail "topology up"
	mkdir -p "$E2E_DIR/gen"
	many_gen_conf cluster >"$E2E_DIR/gen/many-cluster.conf"
	for ((i = 1; i <= MANY_N; i++)); do
		echo "addr add 198.18.1.$((MANY_ADDR_BASE + i))/32 dev lo"
	done | ip -n "$(e2e_ns peer)" -batch - || e2e_fail "tunnel addresses on the peer"
	e2e_charon_start peer || e2e_fail "charon on peer"
	[ -z "${1:-}" ] || many_peer_load "$1"
}

# many_peer_load START_ACTION: load the peer's MANY_CONNS connections, their
# CHILD SAs with START_ACTION (start: the peer's charon initiates all of
# them at once, faster than a swanctl --initiate for each)
many_peer_load() {
	many_gen_conf peer "$1" >"$E2E_DIR/gen/many-peer.conf"
	e2e_swanctl_load peer "$E2E_DIR/gen/many-peer.conf" ||
		e2e_fail "load the peer's $MANY_CONNS connections"
}

# many_node_start NODE ROLE: NODE's charon with sasync in ROLE and the
# cluster's MANY_CONNS connections
# All of the peer's connections come from one address: charon's per-address
# DoS limits (cookies, half-open blocks) would drop some of a burst of
# set-ups, more so on a loaded machine, so the cluster lifts them.
many_node_start() {
	e2e_charon_start "$1" "$(sasync_conf "$1" "$2")
	dos_protection = no" || e2e_fail "charon with sasync on $1"
	e2e_swanctl_load "$1" "$E2E_DIR/gen/many-cluster.conf" ||
		e2e_fail "load the cluster's connections on $1"
}

# many_counts NODE [STATES] [mirror]: "IKE CHILD" SAs in NODE's summary
many_counts() {
	lc_summary "$@" | awk '{ n[$1]++ } END { printf "%d %d\n", n["ike"], n["child"] }'
}

# many_peer_children: "NAME spi_in spi_out" of each CHILD SA on the peer (its
# own view), sorted by name; one swanctl call
many_peer_children() {
	lc_summary peer | awk '$1 == "child" { print $4, $5, $6 }' | sort
}

# many_peer_ikes: the peer's IKE SA lines (mirrored summary)
many_peer_ikes() { lc_summary peer ESTABLISHED mirror | grep '^ike '; }
