#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Graceful switchover of an IKEv1 tunnel (issue 11; test_switchover.sh does
# IKEv2): a Main Mode PSK tunnel from the peer, the election on with the
# built-in addresses. a rekeys the IPsec SA (a Quick Mode a initiates) and
# nftables on a drops the peer's first answer, so the Quick Mode completes
# with a's retransmit a second later; meanwhile b is promoted (sasyncctl
# promote). a must finish the Quick Mode holding the addresses, demote,
# and only then b promotes: b holds the peer's new IPsec SA, pings go
# through b both ways, the peer kept its ISAKMP SA (one Main Mode only) and
# a follows b as standby. Then the same back with `sasyncctl demote` of b
# after b's own Quick Mode: the election makes a primary again, a holds
# that IPsec SA. IKEv1 keeps a rekeyed IPsec SA until it expires, so the
# checks look for the peer's newest one, not for the only one.
# SWITCH_TIMEOUT=0 sets switchover_timeout = 0 (immediate switchovers).
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/ikev1.sh
. "$(dirname "$0")/ikev1.sh"

E2E_CHARON_CONF="$E2E_CHARON_CONF
	retransmit_timeout = 1.0"

# IKEv1 exchange type of a Quick Mode
QUICK_MODE=32

# newest_child NODE: "spi_in spi_out" of the INSTALLED CHILD SA NODE
# installed last
newest_child() { e2e_sas_raw "$1" | e2e_line_newest_child | cut -d' ' -f3,4; }

# holds_peer_child NODE: NODE lists the peer's newest IPsec SA (its inbound
# SPI the peer's outbound)
holds_peer_child() {
	local in out
	read -r in out <<<"$(newest_child peer)"
	[ -n "$in" ] && ikev1_child_spis_all "$1" | grep -qx "$out $in"
}

# rekey_held P: P starts a Quick Mode rekey, the peer's answer held back
# once (P's retransmit a second later gets through)
rekey_held() {
	local p=$1
	sasync_ike_hold "$p" $QUICK_MODE sport on || e2e_fail "nftables on $p"
	e2e_swanctl "$p" --rekey --child "$E2E_CHILD" >/dev/null || e2e_fail "Quick Mode rekey on $p"
	e2e_wait_for "$p's Quick Mode answered by the peer and held back" 5 \
		eval '[ "$(sasync_ike_held "$p")" -ge 1 ]' || e2e_fail "the peer's answer held back on $p"
	sasync_ike_hold "$p" $QUICK_MODE sport off
}

# served P S: S is primary after P's hand-over and serves the tunnel
served() {
	local p=$1 s=$2
	e2e_expect "$p finished its Quick Mode first, cut nothing" \
		eval '[ "$(sasync_stat "$p" switchover-waited)" -gt "$waited" ] && [ "$(sasync_stat "$p" switchover-cut)" = 0 ]'
	e2e_wait_for "the peer has a new IPsec SA" 10 ikev1_has_new_child peer "$child_before" ||
		e2e_fail "the peer's IPsec SA rekeyed"
	e2e_wait_for "$s holds the peer's new IPsec SA" 10 holds_peer_child "$s" ||
		e2e_fail "$s holds the peer's new IPsec SA: peer $(newest_child peer), $s $(ikev1_child_spis_all "$s" | paste -sd,)"
	e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
	e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
	sasync_pings_resume
	e2e_check "the peer kept its ISAKMP SA, one Main Mode only" \
		eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ] && [ "$(ikev1_phase1_count peer)" = 1 ]'
	e2e_wait_for "$p follows $s as standby" 15 holds_peer_child "$p" ||
		e2e_fail "$p holds the peer's new IPsec SA as standby"
}

# before P: what the checks compare with
before() {
	ike_before=$(e2e_ike_spis peer)
	child_before=$(newest_child peer)
	waited=$(sasync_stat "$1" switchover-waited)
}

e2e_init
sasync_election_on
if [ -n "${SWITCH_TIMEOUT:-}" ]; then
	SASYNC_EXTRA_CONF="$SASYNC_EXTRA_CONF
		switchover_timeout = $SWITCH_TIMEOUT"
fi
ikev1_cluster_up
e2e_check "the tunnel is IKEv1 (Main Mode)" eval '[ "$(ikev1_version peer)" = 1 ]'
e2e_wait_for "b has a's ISAKMP and IPsec SAs" 10 sasync_synced a b ||
	e2e_fail "SAs synced to b"
e2e_wait_for "a hears b as a living standby" 5 \
	eval 'sasync_ctl a status | grep -qE "^  node .*: role standby, .* alive$"' ||
	e2e_fail "b's heartbeats on a"

# a's Quick Mode in flight, b promoted
before a
rekey_held a
out=$(sasync_ctl b promote --reason "switchover ikev1" 2>&1)
e2e_check "sasyncctl promote on b waited for the hand-over ($out)" \
	eval '[ "$(sasync_status b role)" = primary ] && [ "$(sasync_status a role)" = standby ]'
e2e_expect "b took over with a's hand-over, not by force" \
	eval '[ "$(sasync_stat b switchover-forced)" = 0 ] && grep -q "switchover: .* handed over" "$(e2e_log b)"'
served a b

# b's Quick Mode in flight, b demoted: a (the better node by name) elected
before b
rekey_held b
out=$(sasync_ctl b demote --reason "maintenance" 2>&1)
e2e_check "sasyncctl demote on b waited for its Quick Mode ($out)" \
	eval 'grep -q "role primary -> standby (ha-demote command: maintenance, 1 exchanges completed first)" "$(e2e_log b)"'
e2e_wait_for "a elected" 10 eval '[ "$(sasync_status a role)" = primary ]' ||
	e2e_fail "a primary"
served b a

e2e_summary
