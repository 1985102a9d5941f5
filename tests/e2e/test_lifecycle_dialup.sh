#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Road warriors with pool addresses through the SA lifecycle before a
# failover (templates and helpers of dialup.sh). Two road warriors connect;
# after each step b must hold exactly a's SAs (lifecycle.sh) and, for each
# road warrior, its virtual IP, its EAP/XAuth identity and an online lease
# in b's pool.
#   phase 1, IKEv2 with EAP-MD5 (dialup-cluster.conf, dialup-client.conf):
#            IKE rekey by rw1, IKE rekey of rw2's IKE SA by a, CHILD rekey
#            of rw2's CHILD SA by a
#   phase 2, IKEv1 with XAuth and Mode Config (dialup-v1-*.conf):
#            reauthentication by rw1 (Main Mode, XAuth, Mode Config again;
#            a responder cannot reauthenticate an XAuth/Mode Config SA),
#            Quick Mode rekey of rw2's IPsec SA by a
# Then 10 s of 10 pps pings lan <-> each virtual IP, the failover, and: pings
# resume (at most LC_MAX_LOST lost), each road warrior keeps its current IKE
# SA and address and starts no new IKE SA, b rekeys its CHILD SA on the
# first outbound packet, b's pool holds both leases, no ESP (SPI, sequence)
# twice, a CHILD rekey by rw1 keeps its address, an IKE rekey (IKEv2) or
# reauthentication (IKEv1) by rw2 keeps address and lease.
# LC_PHASES="1" (or "2") runs one phase. Run time: 205 s on 2 CPUs at load 5.
# checks run through eval in single quotes
# shellcheck disable=SC2016
set -uo pipefail

# shellcheck source=tests/e2e/dialup.sh
. "$(dirname "$0")/dialup.sh"
# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "$0")/lifecycle.sh"

declare -A VIP=() IKE=() CHILD=()

# rw_line NODE N: the raw line of rwN's current IKE SA on NODE (by the IKE
# SPIs rwN's CHILD SAs are under)
rw_line() {
	local spis
	spis=$(lc_cur_ike "rw$2") || return 1
	e2e_sa_find "$1" initiator-spi "${spis% *}" | grep -F "responder-spi=${spis#* }"
}

# rw_on_b N: b has rwN's current IKE SA with its virtual IP and identity
rw_vip_on() { [ "$(rw_line "$1" "$2" | e2e_line_ike remote-vips)" = "${VIP[$2]}" ]; }
rw_id_on() { [ "$(rw_line "$1" "$2" | e2e_line_ike "$DIALUP_ID_KEY")" = "$DIALUP_ID_PREFIX$2" ]; }

# rw_checks STEP: each road warrior's address, identity and lease on b
rw_checks() {
	local i node=b id
	for i in 1 2; do
		id=$DIALUP_ID_PREFIX$i
		e2e_expect "after $1: b has rw$i's virtual IP ${VIP[$i]} (remote-vips)" rw_vip_on "$node" "$i" ||
			echo "    b: remote-vips='$(rw_line b "$i" | e2e_line_ike remote-vips)'"
		e2e_expect "after $1: b has rw$i's identity $id ($DIALUP_ID_KEY)" rw_id_on "$node" "$i" ||
			echo "    b: $DIALUP_ID_KEY='$(rw_line b "$i" | e2e_line_ike "$DIALUP_ID_KEY")'"
		e2e_expect "after $1: b's pool has the lease ${VIP[$i]} online for $id" \
			dialup_lease b "${VIP[$i]}" "$id" ||
			{ echo "    b's pool:"; dialup_leases b; echo "    a's pool:"; dialup_leases a; }
	done
}

# connect: cluster, two road warriors, b synced
connect() {
	local i
	e2e_topo_up || e2e_fail "topology up"
	e2e_rw_up 2 || e2e_fail "road warrior namespaces"
	dialup_cluster_start a primary || e2e_fail "charon with sasync on a"
	dialup_cluster_start b standby || e2e_fail "charon with sasync on b"
	e2e_wait_for "sync link between a and b up" 10 ikev1_link_up ||
		e2e_fail "sync link between a and b up"
	for i in 1 2; do
		dialup_rw_connect "$i" || e2e_fail "rw$i connects to the cluster"
		VIP[$i]=$(e2e_rw_vip "$i")
		e2e_check "rw$i got an address from the pool (${VIP[$i]})" dialup_in_pool "${VIP[$i]}"
		e2e_capture_start "esp$i" "rw$i" ext0 udp port 4500 || e2e_fail "capture on rw$i"
	done
	e2e_wait_for "both road warriors on a" 10 eval 'lc_side_on_active rw1 && lc_side_on_active rw2' ||
		e2e_fail "both road warriors' SAs on a"
	lc_wait_synced "rw1 and rw2 connected" || e2e_fail "b has the first generation"
	rw_checks "rw1 and rw2 connected"
}

# after_failover V: the failover and the checks after it (V: 1 or 2, IKE
# version)
after_failover() {
	local v=$1 i mark streams=()
	for i in 1 2; do
		IKE[$i]=$(lc_cur_ike "rw$i")
		CHILD[$i]=$(lc_child_spis "rw$i" "$E2E_CHILD")
		echo "before the failover: rw$i ${VIP[$i]}, IKE SA ${IKE[$i]}, CHILD SA ${CHILD[$i]}"
		streams+=("rw$i $E2E_LAN_HOST ${VIP[$i]} rw$i")
	done
	echo "b before the failover:"
	lc_show b PASSIVE
	lc_streams_start "${streams[@]}"
	mark=$(lc_mark rw1)" "$(lc_mark rw2)
	lc_failover
	lc_expect_resumed l2p-rw1 p2l-rw1 l2p-rw2 p2l-rw2
	for i in 1 2; do
		e2e_ping_stop "l2p-rw$i"
		e2e_ping_stop "p2l-rw$i"
		lc_ping_check "l2p-rw$i"
		lc_ping_check "p2l-rw$i"
	done
	read -r -a mark <<<"$mark"
	for i in 1 2; do
		e2e_expect "rw$i kept its current IKE SA (${IKE[$i]})" \
			eval '[ "$(lc_cur_ike rw$i)" = "${IKE[$i]}" ]' ||
			{ lc_show "rw$i"; ikev1_log_excerpt "rw$i" "IKE_SA|DELETE|deleting"; }
		e2e_expect "rw$i kept its virtual IP ${VIP[$i]}" rw_vip_is "$i" "${VIP[$i]}"
		e2e_expect "rw$i started no new IKE SA since the failover" \
			eval '[ "$(lc_count_since rw$i "${mark[$((i - 1))]}" "$DIALUP_INIT_RE")" -eq 0 ]' ||
			ikev1_log_excerpt "rw$i" "$DIALUP_INIT_RE"
		e2e_expect "b rekeyed rw$i's CHILD SA on its first outbound packet (was ${CHILD[$i]})" \
			e2e_wait_for "rw$i's CHILD SA rekeyed by b" 10 lc_rekeyed "rw$i" "$E2E_CHILD" "${CHILD[$i]}" ||
			ikev1_log_excerpt "rw$i" "rekey|CREATE_CHILD_SA|QUICK_MODE|failed"
		e2e_expect "b's pool holds rw$i's lease ${VIP[$i]} online" \
			dialup_lease b "${VIP[$i]}" "$DIALUP_ID_PREFIX$i" ||
			{ echo "    b's pool:"; dialup_leases b; }
		e2e_expect "b and rw$i hold the same SAs" \
			e2e_wait_for "b and rw$i agree" 10 lc_side_on_active "rw$i" ||
			{ lc_show "rw$i" ESTABLISHED mirror; lc_show b; }
	done
	for i in 1 2; do lc_reuse_check "esp$i" "rw$i"; done

	# the road warriors' own rekeys after the failover
	lc_rekey_child rw1 "$E2E_CHILD" rw1 &&
		e2e_expect "rw1 keeps ${VIP[1]} after its CHILD rekey (IKE SA and new CHILD SA)" \
			rw_keeps_vip 1 "${VIP[1]}"
	if [ "$v" = 2 ]; then
		lc_rekey_ike rw2 rw2
	else
		lc_reauth rw2 rw2
	fi
	e2e_expect "rw2 keeps ${VIP[2]} after its IKE rekey or reauthentication" rw_vip_is 2 "${VIP[2]}"
	e2e_expect "b's pool holds rw2's lease ${VIP[2]} online after it" \
		dialup_lease b "${VIP[2]}" "${DIALUP_ID_PREFIX}2" || { echo "    b's pool:"; dialup_leases b; }
	for i in 1 2; do
		e2e_expect "traffic lan <-> rw$i after the rekeys" traffic_both "$i" "${VIP[$i]}" 5
	done
	echo "records b could not apply (apply-failed): $(lc_apply_failed)"
	echo "phase done after $(e2e_elapsed)s"
}

e2e_init
first=1
for phase in 1 2; do
	lc_phase "$phase" || continue
	[ "$first" = 1 ] || lc_reset
	first=0
	if [ "$phase" = 1 ]; then
		echo "== phase 1: IKEv2, EAP: IKE rekeys by rw1 and by a, CHILD rekey by a"
		DIALUP_CLUSTER_TPL=dialup-cluster.conf
		DIALUP_CLIENT_TPL=dialup-client.conf
		DIALUP_ID_KEY=remote-eap-id
		DIALUP_ID_PREFIX=eap-rw
		connect
		lc_rekey_ike rw1 rw1
		rw_checks "IKE rekey by rw1"
		lc_rekey_ike a rw2 "$(lc_cur_ike rw2)"
		rw_checks "IKE rekey of rw2's IKE SA by a"
		lc_rekey_child a "$E2E_CHILD" rw2 "$(lc_cur_ike rw2)"
		rw_checks "CHILD rekey of rw2's CHILD SA by a"
		after_failover 2
	else
		echo "== phase 2: IKEv1, XAuth, Mode Config: reauthentication by rw1, Quick Mode rekey by a"
		DIALUP_CLUSTER_TPL=dialup-v1-cluster.conf
		DIALUP_CLIENT_TPL=dialup-v1-client.conf
		DIALUP_ID_KEY=remote-xauth-id
		DIALUP_ID_PREFIX=xauth-rw
		connect
		lc_reauth rw1 rw1
		rw_checks "reauthentication by rw1"
		lc_rekey_child a "$E2E_CHILD" rw2 "$(lc_cur_ike rw2)"
		rw_checks "Quick Mode rekey of rw2's IPsec SA by a"
		after_failover 1
	fi
done

echo "runtime $(e2e_elapsed)s"
ikev1_finish
