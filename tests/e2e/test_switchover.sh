#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Graceful switchover (issue 11, the churn soak's finding 10): the primary
# starts a rekey, the peer's answer is late, and an operator promotes the
# standby meanwhile (sasyncctl promote). Before, the standby promoted at
# once and took the cluster addresses: the answer reached the new primary,
# which had not started that exchange, and the peer's rekeyed IKE SA (with
# the CHILD SAs) was lost to the cluster. Now the standby asks the primary
# to hand over; the primary keeps the addresses until its exchange is done
# (switchover_timeout), then demotes, and only then the standby promotes.
#
# Election on, built-in addresses, one tunnel; nftables on the primary drops
# the peer's first CREATE_CHILD_SA answer, so the exchange completes with
# the primary's retransmit a second later (retransmit_timeout = 1 on the
# cluster). Twice, both ways: an IKE rekey by a, then switch to b; a CHILD
# rekey by b, then switch back to a. Then a CHILD rekey by a and
# `sasyncctl demote` of a (the election makes a primary again). Each time: the switchover waited for
# the exchange (switchover-waited, nothing cut), the new primary holds
# exactly the peer's SAs (the rekeyed ones), pings go through it both ways,
# the peer kept its IKE SA and started none, and the old primary follows as
# standby with the same SAs. SWITCH_TIMEOUT=0 sets switchover_timeout = 0
# (immediate switchovers, as before): then the first switchover loses the
# tunnel and the test fails.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

E2E_CHARON_CONF="$E2E_CHARON_CONF
	retransmit_timeout = 1.0"

# switch_serves NODE: NODE holds the peer's IKE SA and CHILD SA (the first
# listed: the test has one of each), its inbound SPI the peer's outbound
switch_serves() {
	local peer_child
	peer_child=$(e2e_child_spis peer) || return 1
	[ "$(e2e_ike_spis "$1")" = "$(e2e_ike_spis peer)" ] &&
		[ "$(e2e_child_spis "$1")" = "${peer_child#* } ${peer_child% *}" ]
}

# switch_rekey_held P KIND: P rekeys its KIND (ike or child) SA, the peer's
# answer held back once (P's retransmit a second later gets through)
switch_rekey_held() {
	local p=$1 kind=$2
	sasync_ike_hold "$p" 36 sport on || e2e_fail "nftables on $p"
	e2e_swanctl "$p" --rekey "--$kind" "$([ "$kind" = ike ] && echo "$E2E_CONN" || echo "$E2E_CHILD")" >/dev/null ||
		e2e_fail "$kind rekey on $p"
	e2e_wait_for "$p's rekey answered by the peer and held back" 5 \
		eval '[ "$(sasync_ike_held "$p")" -ge 1 ]' || e2e_fail "the peer's answer held back on $p"
	sasync_ike_hold "$p" 36 sport off
}

# switch_served P S KIND: after P handed over (or demoted), the checks
# above with S primary; reads ike_before, child_before, inits and waited
switch_served() {
	local p=$1 s=$2 kind=$3
	e2e_expect "$p finished the $kind rekey first, cut nothing" \
		eval '[ "$(sasync_stat "$p" switchover-waited)" -gt "$waited" ] && [ "$(sasync_stat "$p" switchover-cut)" = 0 ]'
	if [ "$kind" = ike ]; then
		e2e_check "the peer's IKE SA was rekeyed" \
			eval '[ "$(e2e_ike_spis peer)" != "$ike_before" ] && [ "$(e2e_sa_count peer)" = 1 ]'
	else
		# the peer lists the rekeyed one until it destroys it, 5 s later
		e2e_wait_for "the peer's CHILD SA rekeyed" 10 \
			eval '[ "$(e2e_child_spis peer)" != "$child_before" ] && [ "$(e2e_ike_spis peer)" = "$ike_before" ]' ||
			e2e_fail "the peer's CHILD SA rekeyed: IKE $ike_before -> $(e2e_ike_spis peer), CHILD $child_before -> $(e2e_child_spis peer)"
	fi
	e2e_wait_for "$s holds exactly the peer's SAs" 10 switch_serves "$s" ||
		e2e_fail "$s holds the peer's SAs: peer $(e2e_ike_spis peer) $(e2e_child_spis peer), $s $(e2e_ike_spis "$s") $(e2e_child_spis "$s")"
	e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
	e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
	sasync_pings_resume
	e2e_check "the peer kept its IKE SA and started none" \
		eval '[ "$(e2e_sa_count peer)" = 1 ] && [ "$(e2e_count_in_log peer "initiating IKE_SA")" = "$inits" ]'
}

# switch_before P: note what the checks compare with
switch_before() {
	ike_before=$(e2e_ike_spis peer)
	child_before=$(e2e_child_spis peer)
	inits=$(e2e_count_in_log peer "initiating IKE_SA")
	waited=$(sasync_stat "$1" switchover-waited)
}

# switch_over P S KIND: P rekeys its KIND SA with the answer held back, S
# is promoted meanwhile
switch_over() {
	local p=$1 s=$2 kind=$3 out
	switch_before "$p"
	switch_rekey_held "$p" "$kind"
	out=$(sasync_ctl "$s" promote --reason "switchover $kind" 2>&1)
	e2e_check "sasyncctl promote on $s waited for the hand-over ($out)" \
		eval '[ "$(sasync_status "$s" role)" = primary ] && [ "$(sasync_status "$p" role)" = standby ]'
	e2e_expect "$s took over with $p's hand-over, not by force" \
		eval '[ "$(sasync_stat "$s" switchover-forced)" = 0 ] && grep -q "switchover: .* handed over" "$(e2e_log "$s")"'
	switch_served "$p" "$s" "$kind"
	e2e_wait_for "$p follows $s as standby" 15 sasync_synced "$s" "$p" ||
		e2e_fail "$p holds $s's SAs"
}

e2e_init
sasync_election_on
if [ -n "${SWITCH_TIMEOUT:-}" ]; then
	SASYNC_EXTRA_CONF="$SASYNC_EXTRA_CONF
		switchover_timeout = $SWITCH_TIMEOUT"
fi
sasync_cluster_synced
e2e_wait_for "a hears b as a living standby" 5 \
	eval 'sasync_ctl a status | grep -qE "^  node .*: role standby, priority 100, epoch 0, alive$"' ||
	e2e_fail "b's heartbeats on a"

switch_over a b ike
switch_over b a child
e2e_check "each old primary counted one switchover" \
	eval '[ "$(sasync_stat a switchovers)" = 1 ] && [ "$(sasync_stat b switchovers)" = 1 ]'

# sasyncctl demote on the primary finishes its exchange first too; a, the
# better node by name, is elected again at once and serves on
switch_before a
switch_rekey_held a child
out=$(sasync_ctl a demote --reason "maintenance" 2>&1)
e2e_check "sasyncctl demote on a waited for the exchange ($out)" \
	eval 'grep -q "role primary -> standby (ha-demote command: maintenance, 1 exchanges completed first)" "$(e2e_log a)"'
e2e_wait_for "a elected again" 10 eval '[ "$(sasync_status a role)" = primary ]' ||
	e2e_fail "a primary again"
switch_served a a child
e2e_wait_for "b follows a as standby" 15 sasync_synced a b || e2e_fail "b holds a's SAs"

e2e_summary
