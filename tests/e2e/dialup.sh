# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# Template values and settings below are read by the test scripts and
# through ${!name} by e2e_render:
# shellcheck disable=SC2034
#
# Dialup (road warrior) failover scenario shared by test_dialup_ikev2.sh and
# test_dialup_ikev1.sh, on top of sasync.sh and lib.sh. Road warriors rw1,
# rw2 (and later rw3) connect to the cluster VIP, authenticate with EAP
# (IKEv2) or XAuth (IKEv1) and get a virtual IP from the pool rwpool
# (198.18.3.0/24), which a and b both define. What must hold:
#   - b has every road warrior's IKE and CHILD SA (same SPIs), with its
#     virtual IP and EAP/XAuth identity, and its pool has the leases;
#   - after a failover every road warrior keeps IKE SA, address and traffic;
#   - a CHILD rekey started by a road warrior keeps its address;
#   - a road warrior connecting after the failover gets a free address.

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "${BASH_SOURCE[0]}")/sasync.sh"

E2E_CONN=dialup
E2E_CHILD=net
# the cluster serves EAP/XAuth, so it loads the road warriors' plugins
E2E_EXTRA_PLUGINS=$E2E_RW_PLUGINS

# set by the test script
: "${DIALUP_CLUSTER_TPL:=dialup-cluster.conf}"
: "${DIALUP_CLIENT_TPL:=dialup-client.conf}"
: "${DIALUP_ID_KEY:=remote-eap-id}"   # list-sas key of the lease identity
: "${DIALUP_ID_PREFIX:=eap-rw}"       # the identity of rwN is PREFIX N

# the line an initiator logs for each new IKE SA (IKE_SA_INIT / Main Mode)
DIALUP_INIT_RE="initiating (Main Mode |Aggressive Mode )?IKE_SA"

# dialup_cluster_start NODE ROLE: charon with sasync, dialup template loaded
dialup_cluster_start() {
	e2e_charon_start "$1" "$(sasync_conf "$1" "$2")" || return 1
	E2E_DPD_DELAY=0s e2e_swanctl_load "$1" "$DIALUP_CLUSTER_TPL"
}

# dialup_rw_connect N: charon on rwN, client template loaded, initiated
dialup_rw_connect() {
	e2e_charon_start "rw$1" || return 1
	e2e_rw_load "$1" "$DIALUP_CLIENT_TPL" || return 1
	e2e_initiate "rw$1" || return 1
	e2e_wait_for "SA up on rw$1" 10 e2e_sa_up "rw$1"
}

# dialup_line NODE N: raw list-sas line of rwN's IKE SA on NODE (a or b),
# found by the initiator SPI rwN lists
dialup_line() {
	local ispi
	ispi=$(e2e_ike_field "rw$2" initiator-spi)
	[ -n "$ispi" ] && e2e_sa_find "$1" initiator-spi "$ispi"
}

# dialup_field NODE N KEY / dialup_child_field NODE N KEY: KEY of rwN's
# IKE SA / first CHILD SA on NODE
dialup_field() { dialup_line "$1" "$2" | e2e_line_ike "$3"; }
dialup_child_field() { dialup_line "$1" "$2" | e2e_line_child "$3"; }

# dialup_synced N: b lists rwN's IKE SA with a's SPIs and a's CHILD SPIs
dialup_synced() {
	local la lb key
	la=$(dialup_line a "$1") || return 1
	lb=$(dialup_line b "$1") || return 1
	[ "$(e2e_line_ike responder-spi <<<"$la")" = "$(e2e_line_ike responder-spi <<<"$lb")" ] ||
		return 1
	for key in spi-in spi-out; do
		[ -n "$(e2e_line_child "$key" <<<"$la")" ] &&
			[ "$(e2e_line_child "$key" <<<"$la")" = "$(e2e_line_child "$key" <<<"$lb")" ] ||
			return 1
	done
}

# dialup_rw_spis N: "spi_in spi_out" of rwN's newest INSTALLED CHILD SA
# (IKEv1 lists rekeyed ones until they expire)
dialup_rw_spis() { e2e_sas_raw "rw$1" | e2e_line_newest_child | awk '{print $3, $4}'; }

# dialup_rw_rekeyed N OLD_SPIS: rwN has an INSTALLED CHILD SA newer than OLD
dialup_rw_rekeyed() {
	local now
	now=$(dialup_rw_spis "$1")
	[ -n "$now" ] && [ "$now" != "$2" ]
}

# dialup_newest NODE N COLUMN: column of the newest INSTALLED CHILD SA of
# rwN's IKE SA on NODE (5 local_ts, 6 remote_ts, see e2e_line_children)
dialup_newest() { dialup_line "$1" "$2" | e2e_line_newest_child | awk -v c="$3" '{print $c}'; }

# dialup_same NODE N KEY VALUE: rwN's IKE SA on NODE has KEY = VALUE
dialup_same() { [ -n "$4" ] && [ "$(dialup_field "$1" "$2" "$3")" = "$4" ]; }

# checks named for what they check (N is the road warrior)
b_counts_passive() {
	[ "$(sasync_status b ike-sas-passive)" = "$1" ] &&
		[ "$(sasync_status b child-sas-passive)" = "$1" ]
}
b_is_primary() { [ "$(sasync_status b role)" = primary ]; }
rw_ike_spis_are() { [ "$(e2e_ike_spis "rw$1")" = "$2" ]; }
rw_vip_is() { [ "$(e2e_rw_vip "$1")" = "$2" ]; }
rw_one_ike_init() { [ "$(e2e_count_in_log "rw$1" "$DIALUP_INIT_RE")" -eq 1 ]; }
# rw_keeps_vip N VIP: rwN's IKE SA and its newest CHILD SA use VIP
rw_keeps_vip() { rw_vip_is "$1" "$2" && [ "$(dialup_newest "rw$1" "$1" 5)" = "$2/32" ]; }
b_child_remote_ts_is() { [ "$(dialup_newest b "$1" 6)" = "$2" ]; }
# traffic_both N VIP [TIMEOUT]: pings lan -> VIP and rwN (from VIP) -> lan
traffic_both() {
	e2e_wait_ping lan "$E2E_LAN_HOST" "$2" "${3:-10}" &&
		e2e_wait_ping "rw$1" "$2" "$E2E_LAN_HOST" "${3:-10}"
}
# vip_is_new VIP OTHER...: VIP is in the pool and none of the others
vip_is_new() {
	local v=$1
	shift
	dialup_in_pool "$v" || return 1
	while [ $# -gt 0 ]; do [ "$v" != "$1" ] || return 1; shift; done
}
# b_has_leases VIP1 VIP2 ...: b's pool has VIPn online for rwN's identity
b_has_leases() {
	local i=1
	while [ $# -gt 0 ]; do
		dialup_lease b "$1" "$DIALUP_ID_PREFIX$i" || return 1
		i=$((i + 1))
		shift
	done
}

# dialup_lease NODE VIP ID: NODE's pool lists VIP as online for ID
dialup_lease() {
	e2e_swanctl "$1" --list-pools --leases 2>/dev/null |
		grep -qE "^ +${2//./\\.} +online +'$3'\$"
}

# dialup_leases NODE: the pool lines of NODE (for the report)
dialup_leases() { e2e_swanctl "$1" --list-pools --leases 2>/dev/null | sed 's/^/    /'; }

# dialup_in_pool VIP: VIP is an address of 198.18.3.0/24
dialup_in_pool() { [[ $1 == "${E2E_RW_POOL%.0/24}".* ]]; }

# dialup_excerpt NODE ERE: the last matching log lines, indented (evidence
# printed next to a failed check)
dialup_excerpt() {
	echo "    --- $1 charon log /$2/:"
	grep -E -- "$2" "$(e2e_log "$1")" 2>/dev/null | tail -n 8 | sed 's/^/    /'
}

# dialup_run: the scenario (see the top of this file)
dialup_run() {
	local i before id tx rx lost
	local -A vip=() ike=() child=()

	e2e_init
	e2e_topo_up || e2e_fail "topology up"
	e2e_rw_up 3 || e2e_fail "road warrior namespaces"
	dialup_cluster_start a primary || e2e_fail "charon with sasync on a"
	dialup_cluster_start b standby || e2e_fail "charon with sasync on b"

	for i in 1 2; do
		dialup_rw_connect "$i" || e2e_fail "rw$i connects to the cluster"
		vip[$i]=$(e2e_rw_vip "$i")
		ike[$i]=$(e2e_ike_spis "rw$i")
		child[$i]=$(e2e_child_spis "rw$i")
		echo "rw$i: virtual IP ${vip[$i]}, IKE SPIs ${ike[$i]}, CHILD SPIs ${child[$i]}"
		e2e_check "rw$i got an address from the pool" dialup_in_pool "${vip[$i]}"
	done
	e2e_check "rw1 and rw2 got different addresses" [ "${vip[1]}" != "${vip[2]}" ]

	# ---- b has the same SAs, addresses, identities and leases
	for i in 1 2; do
		id=$DIALUP_ID_PREFIX$i
		e2e_wait_for "b has rw$i's IKE and CHILD SAs" 10 dialup_synced "$i" ||
			e2e_fail "b has rw$i's IKE and CHILD SAs (same SPIs as a)"
		e2e_pass "b has rw$i's IKE and CHILD SAs (same SPIs as a)"
		e2e_expect "b shows rw$i's IKE SA as PASSIVE" dialup_same b "$i" state PASSIVE
		e2e_expect "b knows rw$i's virtual IP ${vip[$i]} (remote-vips)" \
			dialup_same b "$i" remote-vips "${vip[$i]}" ||
			echo "    b: remote-vips='$(dialup_field b "$i" remote-vips)'"
		e2e_expect "b knows rw$i's identity $id ($DIALUP_ID_KEY)" \
			dialup_same b "$i" "$DIALUP_ID_KEY" "$id" ||
			echo "    b: $DIALUP_ID_KEY='$(dialup_field b "$i" "$DIALUP_ID_KEY")'"
	done
	e2e_expect "ha-status on b shows both IKE and CHILD SAs as passive" \
		b_counts_passive 2 ||
		echo "    b: ike-sas-passive=$(sasync_status b ike-sas-passive) child-sas-passive=$(sasync_status b child-sas-passive)"
	for i in 1 2; do
		e2e_expect "b's pool has the lease ${vip[$i]} online for $DIALUP_ID_PREFIX$i" \
			dialup_lease b "${vip[$i]}" "$DIALUP_ID_PREFIX$i" || {
			echo "    b's pool:"; dialup_leases b
			echo "    a's pool:"; dialup_leases a
			dialup_excerpt b "sasync: .*(virtual IP|lease)"
		}
	done

	# ---- traffic before the failover
	for i in 1 2; do
		e2e_wait_ping lan "$E2E_LAN_HOST" "${vip[$i]}" 10 ||
			e2e_fail "ping lan -> rw$i (${vip[$i]}) before the failover"
		e2e_wait_ping "rw$i" "${vip[$i]}" "$E2E_LAN_HOST" 10 ||
			e2e_fail "ping rw$i (${vip[$i]}) -> lan before the failover"
		e2e_pass "pings lan <-> rw$i before the failover"
		e2e_ping_start "l2r$i" lan "$E2E_LAN_HOST" "${vip[$i]}"
		e2e_wait_ping_replies "l2r$i" 5 5 || e2e_fail "background ping lan -> rw$i"
	done

	# ---- failover
	sasync_failover
	e2e_check "b is primary" b_is_primary
	for i in 1 2; do
		e2e_expect "pings lan -> rw$i (${vip[$i]}) resume through b" \
			e2e_wait_ping_replies "l2r$i" 10 10
		e2e_expect "pings rw$i -> lan flow through b" \
			e2e_wait_ping "rw$i" "${vip[$i]}" "$E2E_LAN_HOST" 10
	done
	for i in 1 2; do
		e2e_ping_stop "l2r$i"
		read -r tx rx lost <<<"$(e2e_ping_stats "l2r$i")"
		echo "ping l2r$i at 10 pps: transmitted=$tx received=$rx lost=$lost" \
			"longest gap=$(e2e_ping_max_gap "l2r$i")ms"
	done
	for i in 1 2; do
		e2e_expect "rw$i kept its IKE SA (same SPIs)" rw_ike_spis_are "$i" "${ike[$i]}"
		e2e_expect "rw$i kept its virtual IP ${vip[$i]}" rw_vip_is "$i" "${vip[$i]}"
		e2e_expect "rw$i started no new IKE SA (one IKE_SA_INIT/Main Mode)" \
			rw_one_ike_init "$i" ||
			dialup_excerpt "rw$i" "$DIALUP_INIT_RE|deleting IKE_SA|establishing CHILD_SA"
		e2e_expect "b lists rw$i's IKE SA as ESTABLISHED" \
			dialup_same b "$i" state ESTABLISHED
	done
	# b rekeys each restored CHILD SA on its first outbound packet (the
	# pings above); wait for that before the road warrior rekeys itself
	for i in 1 2; do
		e2e_wait_for "rw$i's CHILD SA rekeyed by b" 10 dialup_rw_rekeyed "$i" "${child[$i]}"
		e2e_expect "b rekeyed rw$i's CHILD SA on its first outbound packet" \
			dialup_rw_rekeyed "$i" "${child[$i]}" ||
			dialup_excerpt "rw$i" "rekey|CREATE_CHILD_SA|QUICK_MODE|failed"
	done

	# ---- a CHILD rekey started by a road warrior after the failover
	before=$(dialup_rw_spis 1)
	e2e_swanctl rw1 --rekey --child "$E2E_CHILD" >>"$E2E_DIR/rw1/rekey.out" 2>&1
	if e2e_wait_for "rw1's own CHILD rekey" 10 dialup_rw_rekeyed 1 "$before"; then
		e2e_pass "CHILD rekey started by rw1 after the failover completes"
		e2e_expect "rw1 keeps ${vip[1]} after its CHILD rekey (IKE SA and new CHILD SA's local-ts)" \
			rw_keeps_vip 1 "${vip[1]}" ||
			echo "    rw1: local-vips=$(e2e_rw_vip 1) local-ts=$(dialup_newest rw1 1 5)"
		e2e_expect "b's rekeyed CHILD SA for rw1 has remote-ts ${vip[1]}/32" \
			b_child_remote_ts_is 1 "${vip[1]}/32" ||
			echo "    b: remote-ts=$(dialup_newest b 1 6)"
		e2e_expect "traffic lan <-> rw1 after its CHILD rekey" traffic_both 1 "${vip[1]}"
	else
		e2e_expect "CHILD rekey started by rw1 after the failover completes" false
		dialup_excerpt rw1 "rekey|CREATE_CHILD_SA|QUICK_MODE|TS_UNACCEPTABLE|failed"
		dialup_excerpt b "rekey|CREATE_CHILD_SA|QUICK_MODE|TS_UNACCEPTABLE|failed"
	fi

	# ---- a third road warrior after the failover
	if dialup_rw_connect 3; then
		e2e_pass "rw3 connects to b after the failover"
		vip[3]=$(e2e_rw_vip 3)
		echo "rw3: virtual IP ${vip[3]}"
		e2e_expect "rw3 got an address other than rw1's and rw2's (${vip[1]}, ${vip[2]})" \
			vip_is_new "${vip[3]}" "${vip[1]}" "${vip[2]}" || {
			echo "    b's pool:"; dialup_leases b
		}
		e2e_expect "b's pool has all three leases online" \
			b_has_leases "${vip[1]}" "${vip[2]}" "${vip[3]}" ||
			{ echo "    b's pool:"; dialup_leases b; }
		e2e_expect "traffic lan <-> rw3" traffic_both 3 "${vip[3]}"
		for i in 1 2; do
			e2e_expect "rw$i still has traffic after rw3 connected" \
				traffic_both "$i" "${vip[$i]}" 5
		done
	else
		e2e_expect "rw3 connects to b after the failover" false
		dialup_excerpt rw3 "IKE_SA|failed|error"
		dialup_excerpt b "rw3|failed|error"
	fi

	echo "runtime: $(e2e_elapsed)s"
	if [ "$E2E_FAILED" -gt 0 ]; then _e2e_dump_logs >&2; fi
	e2e_summary
}
