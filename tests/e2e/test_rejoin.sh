#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Rejoin (issue 9): REJOIN_TUNNELS (200) tunnels come up while only a runs
# (primary): one IKEv2 connection from the peer per tunnel, each with its
# own identities and one CHILD SA (many.sh), all initiated by the peer at
# once (start_action = start). Then b starts as standby and
# gets them all by bulk resync: b holds every IKE and CHILD SA a holds (same
# SPIs), counts a resync, and no CHILD SA was rekeyed (the peer's CHILD SPIs
# unchanged, no CREATE_CHILD_SA in a's or the peer's log). Failover to b
# with 10 pps pings both ways through a sample of REJOIN_SAMPLE (5) tunnels:
# on the peer every IKE SA survives (same SPIs), every CHILD SA not pinged
# keeps its SPIs (the pinged ones b rekeys on their first outbound packet),
# the peer starts no IKE_SA_INIT, and b holds what the peer holds. Then a's
# charon restarts as standby and rejoins: b sends it a full resync, a holds
# all of b's SAs passive and counts the resync, and again nothing is rekeyed.
# Prints the time to establish the tunnels, b's resync (from b's start to all
# held), the pings lost in the sample and a's resync.
# All 200 tunnels: see tests/e2e/README.md for the times.
# checks run through eval in single quotes
# shellcheck disable=SC2016
set -uo pipefail

: "${REJOIN_TUNNELS:=200}"
: "${REJOIN_SAMPLE:=5}"
# how long b, and later a, may take to hold every SA after its start
: "${REJOIN_SYNC_TIMEOUT:=60}"
MANY_CONNS=$REJOIN_TUNNELS
MANY_CHILDREN=1
MANY_ADDR_BASE=1
# shellcheck source=tests/e2e/many.sh
. "$(dirname "$0")/many.sh"

N=$MANY_N
E2E_DPD_DELAY=0s
# every tunnel comes from the peer's one address: charon's per-address
# half-open limit (dos_protection: block_threshold 5, cookies beyond 10)
# would drop most of the IKE_SA_INITs sent at once
E2E_CHARON_CONF="$E2E_CHARON_CONF
	dos_protection = no"

# all_up: all N IKE and CHILD SAs on the peer, and the active node has them
all_up() {
	[ "$(many_counts peer ESTABLISHED mirror)" = "$N $N" ] && lc_side_on_active peer
}

# holds NODE: NODE has all N IKE and N CHILD SAs as passive ones (ha-status)
holds() {
	[ "$(sasync_status "$1" ike-sas-passive)" = "$N" ] &&
		[ "$(sasync_status "$1" child-sas-passive)" = "$N" ]
}

# resync_logged NODE FROM_LINE: NODE logged a bulk resync of all N IKE SAs
# from FROM_LINE on
resync_logged() {
	[ "$(lc_count_since "$1" "$2" "sasync: bulk resync sent( to [^,]+)?, $N IKE_SAs")" -ge 1 ]
}

# no_child_rekey NODE FROM_LINE: no CREATE_CHILD_SA (every SA here came
# with IKE_AUTH, so that is a rekey) in NODE's log from FROM_LINE on
no_child_rekey() { [ "$(lc_count_since "$1" "$2" "CREATE_CHILD_SA")" -eq 0 ]; }

# rejoined NODE SECONDS DESC: wait until NODE (just started as standby)
# holds exactly the active node's SAs; prints the time since $T0
rejoined() {
	if e2e_wait_for "$1 holds the active node's $N tunnels" "$REJOIN_SYNC_TIMEOUT" lc_synced; then
		echo "$1 held all $N IKE and CHILD SAs $(($(_e2e_now_ms) - T0)) ms after its charon was started ($2);" \
			"the resync took $(($(e2e_log_ms "$1" "sasync: bulk resync from .* complete") -
				$(e2e_log_ms "$1" "sasync: sync link .* up"))) ms from the first sync link up in its log"
		e2e_pass "$1 holds the same $N IKE and $N CHILD SAs as $LC_ACTIVE (SPIs, identities)"
	else
		echo "    $1 holds $(many_counts "$1" PASSIVE | awk '{ print $1 " IKE, " $2 " CHILD SAs" }') after ${REJOIN_SYNC_TIMEOUT}s"
		_lc_sync_diff | head -n 10
		e2e_fail "$1 gets all $N tunnels by bulk resync"
	fi
}

e2e_init
many_setup
many_node_start a primary
mark_peer=$(lc_mark peer)

# the peer initiates every tunnel as it loads them (start_action = start)
T0=$(_e2e_now_ms)
tod0=$(e2e_tod_ms)
many_peer_load start
e2e_wait_for "all $N tunnels up on the peer and a" 60 all_up ||
	{ echo "    peer: $(many_counts peer ESTABLISHED mirror), a: $(many_counts a)"; e2e_fail "$N tunnels up"; }
# the N-th CHILD SA the peer's log shows established
last=$(grep -E "CHILD_SA .* established" "$(e2e_log peer)" | sed -n "${N}p" | _e2e_tod_ms)
echo "$N IKE SAs with a CHILD SA each established $((last - tod0)) ms after the peer" \
	"began to load them (a alone), all listed on the peer and a after $(($(_e2e_now_ms) - T0)) ms"
e2e_pass "$N tunnels up between the peer and a"
ikes_before=$(many_peer_ikes)
children_before=$(many_peer_children)

# ---- b starts and gets everything by bulk resync
mark_a=$(lc_mark a)
T0=$(_e2e_now_ms)
many_node_start b standby
rejoined b "bulk resync from a"
e2e_expect "b counted a completed resync" eval '[ "$(sasync_stat b resync)" -ge 1 ]'
e2e_expect "b's ha-status: the resync it received named all $N of the $N IKE SAs a announced" \
	eval '[ "$(sasync_status b resync-receiving)" = no ] && [ "$(sasync_status b resync-received)" = $N ] && [ "$(sasync_status b resync-expected)" = $N ]'
e2e_expect "a's ha-status: its resync went through all $N IKE SAs" \
	eval '[ "$(sasync_status a resync-sent)" = $N ] && [ "$(sasync_status a resync-total)" = $N ]'
e2e_expect "b's ha-status: $N IKE and $N CHILD SAs passive" holds b
e2e_expect "a logged a bulk resync of all $N IKE SAs" resync_logged a "$mark_a"
e2e_expect "no CHILD SA rekeyed at the peer (same CHILD SPIs)" \
	eval '[ "$(many_peer_children)" = "$children_before" ]'
e2e_expect "no CHILD SA rekeyed: no CREATE_CHILD_SA in a's log" no_child_rekey a 1
e2e_expect "no CREATE_CHILD_SA in the peer's log" no_child_rekey peer "$mark_peer"
e2e_expect "b applied every record (apply-failed $(sasync_stat b apply-failed))" \
	eval '[ "$(sasync_stat b apply-failed)" = 0 ]'

# ---- failover with pings through a sample of the tunnels
sample=()
specs=()
streams=()
for ((k = 0; k < REJOIN_SAMPLE && k < N; k++)); do
	i=$((1 + k * (N - 1) / (REJOIN_SAMPLE > 1 ? REJOIN_SAMPLE - 1 : 1)))
	sample+=("$(many_child "$i")")
	specs+=("$(many_child "$i") $E2E_LAN_HOST $(many_addr "$i")")
	streams+=("l2p-$(many_child "$i")" "p2l-$(many_child "$i")")
done
lc_streams_start "${specs[@]}"
mark_peer=$(lc_mark peer)
lc_failover
lc_expect_resumed "${streams[@]}"
for s in "${streams[@]}"; do e2e_ping_stop "$s"; done
lost=0
for s in "${streams[@]}"; do
	lc_ping_check "$s"
	lost=$((lost + $(e2e_ping_stats "$s" | awk '{ print $3 }')))
done
echo "pings lost in the sample (${#streams[@]} streams at 10 pps through ${#sample[@]} tunnels): $lost"

e2e_expect "the peer kept each of its $N IKE SAs (same SPIs)" \
	eval '[ "$(many_peer_ikes)" = "$ikes_before" ]' ||
	diff <(echo "$ikes_before") <(many_peer_ikes) | head -n 10 | sed 's/^/    /'
# CHILD SAs whose SPIs changed at the peer: only pinged ones may
changed=$(comm -23 <(echo "$children_before") <(many_peer_children) | awk '{ print $1 }')
unexpected=$(comm -23 <(echo "$changed" | sort) <(printf '%s\n' "${sample[@]}" | sort) | paste -sd' ')
e2e_expect "every CHILD SA not pinged kept its SPIs at the peer (rekeyed: $(echo "$changed" | paste -sd' '))" \
	[ -z "$unexpected" ]
e2e_expect "b holds what the peer holds ($N IKE SAs, $N CHILD SAs)" \
	e2e_wait_for "b and the peer agree" 10 all_up ||
	echo "    peer: $(many_counts peer ESTABLISHED mirror), b: $(many_counts b)"
e2e_expect "the peer ran no IKE_SA_INIT since the failover (no new IKE SA)" \
	[ "$(lc_count_since peer "$mark_peer" "generating IKE_SA_INIT request")" -eq 0 ]
e2e_expect "the peer ran no IKE_SA_INIT at all after the first $N" \
	[ "$(e2e_count_in_log peer "generating IKE_SA_INIT request")" -eq "$N" ]

# ---- a restarts as standby and rejoins
e2e_wait_for "no rekeyed CHILD SA left" 12 _lc_all_settled peer b
children_before=$(many_peer_children)
mark_b=$(lc_mark b)
mark_peer=$(lc_mark peer)
# keep the log of a's first charon
mv "$(e2e_log a)" "$E2E_DIR/a/charon-primary.log"
T0=$(_e2e_now_ms)
many_node_start a standby
rejoined a "bulk resync from b"
e2e_expect "a counted a completed resync" eval '[ "$(sasync_stat a resync)" -ge 1 ]'
e2e_expect "a's ha-status: $N IKE and $N CHILD SAs passive" holds a
e2e_expect "b logged a bulk resync of all $N IKE SAs" resync_logged b "$mark_b"
e2e_expect "no CHILD SA rekeyed at the peer while a rejoined" \
	eval '[ "$(many_peer_children)" = "$children_before" ]'
e2e_expect "no CREATE_CHILD_SA in the peer's log while a rejoined" no_child_rekey peer "$mark_peer"
e2e_expect "the peer still has its $N IKE SAs (same SPIs)" \
	eval '[ "$(many_peer_ikes)" = "$ikes_before" ]'
e2e_expect "a applied every record, also those b queued while a was away (apply-failed $(sasync_stat a apply-failed))" \
	eval '[ "$(sasync_stat a apply-failed)" = 0 ]'
echo "runtime $(e2e_elapsed)s"
ikev1_finish
