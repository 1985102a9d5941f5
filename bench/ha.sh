# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# strongSwan's own `ha` plugin on the end-to-end harness, for the benchmarks
# that compare sasync with it (failover_vs_ha.sh, scale.sh); sourced after
# tests/e2e/sasync.sh. How it is set up and why: bench/README.md.
# BENCH_HA_SO is for the scripts that source this, the FIFO command for sh:
# shellcheck disable=SC2034,SC2016

: "${BENCH_HA_SECRET=ha-bench-sync-secret-0123456789}"
BENCH_HA_SO=/usr/lib/ipsec/plugins/libstrongswan-ha.so
HA_FIFO=/var/run/charon.ha      # IPSEC_PIDDIR/charon.ha, in the node's /run

# ha_conf NODE: strongswan.conf snippet loading the ha plugin on NODE.
# No CLUSTERIP here (/proc/net/ipt_CLUSTERIP is missing, the plugin logs it
# and skips the kernel part): segments are only the plugin's bookkeeping of
# which node's IKE SAs are ESTABLISHED and which PASSIVE; the VIP move does
# the traffic steering. One segment, so all SAs fail over together.
ha_conf() {
	local l r
	if [ "$1" = a ]; then l=$E2E_A_LAN r=$E2E_B_LAN; else l=$E2E_B_LAN r=$E2E_A_LAN; fi
	cat <<EOF
plugins {
	ha {
		load = yes
		local = $l
		remote = $r
$( [ -n "$BENCH_HA_SECRET" ] && echo "		secret = $BENCH_HA_SECRET")
		segment_count = 1
		fifo_interface = yes
		monitor = yes
		resync = yes
	}
}
EOF
}

# ha_ctl NODE CMD: write "+N" (take segment N), "-N" (drop) or "*N"
# (resync) to the plugin's control FIFO in NODE's /run
ha_ctl() {
	e2e_exec "$1" timeout 5 sh -c 'echo "$1" >"$2"' ha-ctl "$2" "$HA_FIFO"
}


# ha_take_segment NODE: NODE (charon with ha_conf running) takes segment 1
# through its FIFO (before its partner starts: see ha_cluster_up)
ha_take_segment() {
	e2e_wait_for "ha FIFO on $1" 5 e2e_exec "$1" test -p "$HA_FIFO" || return 1
	ha_ctl "$1" +1 || return 1
	e2e_wait_for "$1 took segment 1" 5 \
		eval "[ \"\$(e2e_count_in_log $1 'HA segment 1 activated')\" -ge 1 ]"
}

# ha_cluster_up: the counterpart of sasync_cluster_up. a takes the only
# segment through its FIFO before b runs: with monitor = yes the heartbeat
# protocol hands an unclaimed segment to the node whose address compares
# higher (b), and a segment b already holds would leave its synced SAs
# PASSIVE at the failover. The tunnel is set up only after b's start-up
# resync request (1 s after start) has been answered; a resync racing with the
# live sync of a new SA installs it twice.
ha_cluster_up() {
	e2e_topo_up || e2e_fail "topology up"
	e2e_charon_start peer || e2e_fail "charon on peer"
	e2e_swanctl_load peer peer.conf || e2e_fail "load peer.conf"
	e2e_charon_start a "$(ha_conf a)" || e2e_fail "charon with ha on a"
	E2E_DPD_DELAY=0s e2e_swanctl_load a cluster.conf || e2e_fail "load cluster.conf on a"
	ha_take_segment a || e2e_fail "a took segment 1 (ha FIFO)"
	e2e_charon_start b "$(ha_conf b)" || e2e_fail "charon with ha on b"
	E2E_DPD_DELAY=0s e2e_swanctl_load b cluster.conf || e2e_fail "load cluster.conf on b"
	e2e_wait_for "a answered b's resync request" 5 \
		eval '[ "$(e2e_count_in_log a "resyncing HA segment")" -ge 1 ]' ||
		e2e_fail "ha resync between a and b"
	e2e_initiate peer || e2e_fail "initiate from peer"
	e2e_wait_for "SA up on peer" 10 e2e_sa_up peer || e2e_fail "SA up on peer"
	e2e_wait_for "SA up on a" 10 e2e_sa_up a || e2e_fail "SA up on a"
}

# ha_synced: b has a's IKE SA (PASSIVE) with the same CHILD SA
ha_synced() {
	sasync_synced a b && [ "$(e2e_ike_field b state)" = PASSIVE ]
}
