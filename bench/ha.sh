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
