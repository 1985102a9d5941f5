#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Faults during a bulk resync (issue 11), FAULT_TUNNELS (200) tunnels up
# between the peer and a (many.sh, one CHILD SA each), then b starts as
# standby and a's bulk resync to it is cut part way: nftables on b drops
# a's connection to b's sync port once FAULT_CUT_BYTES of it passed.
#
# (a) sync link dropped and restored (roles by hand, no election): while
#     the link is cut, a and the peer rekey CHILD and IKE SAs and the peer
#     deletes tunnels and creates them again, so b misses those changes on
#     top of the rest of the resync. Then the drop is removed: b must hold
#     exactly a's SAs (the resync completes, what b missed is caught up),
#     a's SAs must be the peer's, and no record failed to apply.
# (b) kill -9 of the primary in the middle of the bulk resync, with the
#     election on: the election does not know that b's resync is
#     incomplete (sasync_cluster.c: a standby promotes itself when no
#     primary is alive, whatever it holds), so b promotes itself with the
#     part it got. Checked: b holds nothing the peer does not hold (same
#     SPIs, no stale or duplicated SA, routes), serves exactly what it held
#     at the kill, and carries traffic through the tunnels it holds; the tunnels it
#     never got are counted and printed (the peer keeps them until its DPD
#     or their lifetime: nothing can serve them). Then a restarts as standby
#     and gets b's SAs.
# Prints the point of the cut, the time to catch up and the tunnels lost.
# checks run through eval in single quotes
# shellcheck disable=SC2016,SC2034
set -uo pipefail

: "${FAULT_TUNNELS:=200}"
# bytes of a's sync connection to b that pass before the cut (a resync of
# 200 tunnels is about 190 kB)
: "${FAULT_CUT_BYTES:=80000}"
: "${FAULT_SYNC_TIMEOUT:=60}"
MANY_CONNS=$FAULT_TUNNELS
MANY_CHILDREN=1
MANY_ADDR_BASE=1
# shellcheck source=tests/e2e/soak.sh
. "$(dirname "$0")/soak.sh"

N=$MANY_N
E2E_DPD_DELAY=0s
E2E_CHARON_CONF="$E2E_CHARON_CONF
	dos_protection = no"

# fault_cut on|off: on b, drop what a sends to b's sync port once
# FAULT_CUT_BYTES passed (a's connection carries a's records and heartbeats)
fault_cut() {
	if [ "$1" = on ]; then
		ip netns exec "$(e2e_ns b)" nft -f - <<EOF2
table inet sk_fault {
	chain in {
		type filter hook input priority 0;
		ip saddr $E2E_A_LAN tcp dport 4510 quota over $FAULT_CUT_BYTES bytes counter drop
	}
}
EOF2
	else
		ip netns exec "$(e2e_ns b)" nft delete table inet sk_fault
	fi
}

# fault_dropped: packets the cut dropped so far
fault_dropped() {
	ip netns exec "$(e2e_ns b)" nft list table inet sk_fault 2>/dev/null |
		grep -oE 'counter packets [0-9]+' | awk '{ print $3 }'
}

# fault_tunnels_up: all N IKE and CHILD SAs on the peer, and a has them
fault_tunnels_up() {
	[ "$(many_counts peer ESTABLISHED mirror)" = "$N $N" ] && lc_side_on_active peer
}

# fault_setup: topology, a primary with all N tunnels (the peer initiates
# them as it loads them)
fault_setup() {
	many_setup
	many_node_start a primary
	many_peer_load start
	e2e_wait_for "all $N tunnels up on the peer and a" 60 fault_tunnels_up ||
		e2e_fail "$N tunnels up"
}

# fault_start_b_cut: b starts as standby with the cut in place; returns once
# the cut dropped something, and prints what b held then
fault_start_b_cut() {
	# no segmentation offload on a's side: the quota cuts between packets of
	# at most one MTU, not 64 kB ones that carry half the resync
	ip -n "$(e2e_ns a)" link set dev lan0 gso_max_size 1500 ||
		e2e_fail "gso_max_size on a's lan0"
	fault_cut on || e2e_fail "nftables on b"
	T0=$(_e2e_now_ms)
	many_node_start b standby
	e2e_wait_for "the cut drops a's records" 30 eval '[ "$(fault_dropped)" -gt 0 ]' ||
		e2e_fail "the cut never dropped: FAULT_CUT_BYTES ($FAULT_CUT_BYTES) too large?"
}

# fault_held NODE: "IKE CHILD" SAs NODE holds passive
fault_held() {
	echo "$(sasync_status "$1" ike-sas-passive) $(sasync_status "$1" child-sas-passive)"
}

e2e_init

# ------------------------------------------------ (a) link cut and restored
e2e_note "phase a"
fault_setup
fault_start_b_cut
sleep 1
held=$(fault_held b)
echo "(a) cut after $FAULT_CUT_BYTES bytes, $(($(_e2e_now_ms) - T0)) ms after b's start:" \
	"b held ${held% *} IKE and ${held#* } CHILD SAs of $N"
e2e_check "the cut hit the bulk resync (b holds some of the $N tunnels, not all)" \
	eval '[ "${held% *}" -gt 0 ] && [ "${held% *}" -lt "$N" ]'

# changes b misses while the link is cut
mark_a=$(lc_mark a)
changes=0
for ((i = 1; i <= 10; i++)); do
	e2e_swanctl a --rekey --child "$(many_child "$i")" >>"$E2E_DIR/a/rekey.out" 2>&1 && changes=$((changes + 1))
	e2e_swanctl peer --rekey --child "$(many_child $((i + 10)))" >>"$E2E_DIR/peer/rekey.out" 2>&1 && changes=$((changes + 1))
	e2e_swanctl a --rekey --ike "$(many_conn $((i + 20)))" >>"$E2E_DIR/a/rekey.out" 2>&1 && changes=$((changes + 1))
	e2e_swanctl peer --rekey --ike "$(many_conn $((N - i + 1)))" >>"$E2E_DIR/peer/rekey.out" 2>&1 && changes=$((changes + 1))
done
for ((i = 41; i <= 45; i++)); do
	e2e_swanctl peer --terminate --ike "$(many_conn "$i")" --timeout 5 >>"$E2E_DIR/peer/churn.out" 2>&1 &&
		e2e_swanctl peer --initiate --child "$(many_child "$i")" --timeout 10 >>"$E2E_DIR/peer/churn.out" 2>&1 &&
		changes=$((changes + 1))
done
e2e_wait_for "the peer and a agree after the changes" 30 \
	eval 'fault_tunnels_up && soak_settled "$(soak_view peer mirror)"' ||
	e2e_fail "rekeys and re-created tunnels done on the peer and a"
echo "(a) $changes changes while the link was cut (CHILD and IKE rekeys by a and the peer, tunnels deleted and created again)"
e2e_check "the link is still cut (b missed them)" eval '[ "$(fault_held b)" = "$held" ]'

t_restore=$(_e2e_now_ms)
tod_restore=$(e2e_tod_ms)
mark_b=$(lc_mark b)
e2e_check "link restored" fault_cut off
if e2e_wait_for "b holds a's SAs" "$FAULT_SYNC_TIMEOUT" soak_agree a b; then
	echo "(a) b holds a's $N tunnels $(($(_e2e_now_ms) - t_restore)) ms after the link was restored;" \
		"its log: resync complete $(($(e2e_log_ms b "sasync: bulk resync from .* complete" "$mark_b") - tod_restore)) ms after"
	e2e_pass "(a) after the cut, the resync completes: b holds exactly a's SAs, a's are the peer's, no stale kernel state"
else
	soak_print_diff
	e2e_expect "(a) after the cut, the resync completes: b holds exactly a's SAs, a's are the peer's" false
fi
echo "(a) b: resync $(sasync_stat b resync), resync-removed $(sasync_stat b resync-removed)," \
	"apply-failed $(sasync_stat b apply-failed); a: bulk resyncs sent since the cut" \
	"$(lc_count_since a "$mark_a" "sasync: bulk resync sent")"
e2e_expect "(a) b applied every record (apply-failed $(sasync_stat b apply-failed))" \
	eval '[ "$(sasync_stat b apply-failed)" = 0 ]'
e2e_summary; exit

# ------------------------------- (b) kill -9 of the primary mid-resync
e2e_note "phase b"
lc_reset
sasync_election_on
# 25 heartbeats (5 s) before a node is dead: b must not elect itself while
# a lives, before the kill (the cut drops a's heartbeats too)
SASYNC_EXTRA_CONF=${SASYNC_EXTRA_CONF/heartbeat_lost = 5/heartbeat_lost = 25}
fault_setup
ikes=$(many_peer_ikes)
fault_start_b_cut
# records that came before b's connections were loaded wait for them and
# are retried every 500 ms: b holds what it got once its count is steady
# for longer than that, and not zero
e2e_wait_for "b applied what it got" 10 eval 'h=$(fault_held b); sleep 1.5; [ "$(fault_held b)" = "$h" ] && [ "${h% *}" -gt 0 ]'
held=$(fault_held b)
t_kill=$(_e2e_now_ms)
tod_kill=$(e2e_tod_ms)
e2e_charon_kill a KILL
echo "(b) kill -9 of a $((t_kill - T0)) ms after b's start, b held ${held% *} IKE and ${held#* } CHILD SAs of $N"
# the cut stays: a's kernel would still deliver what its charon had
# written (the rest of the resync), as it does when only charon dies; a
# node that fails delivers nothing more
e2e_check "(b) b promotes itself (election) though its resync is incomplete" \
	e2e_wait_for "b promoted" 15 eval '[ "$(sasync_status b role)" = primary ]'
echo "(b) kill -9 of a to b's promotion: $(($(e2e_log_ms b "sasync: role standby -> primary") - tod_kill)) ms" \
	"($(grep -o 'sasync: role standby -> primary.*' "$(e2e_log b)"))"
LC_ACTIVE=b
e2e_wait_for "b's SAs settle" 10 eval 'soak_settled "$(soak_view b)"'
soak_compare b
lost_ike=$(grep -c '^lost ike' <<<"$SOAK_DIFF")
lost_child=$(grep -c '^lost child' <<<"$SOAK_DIFF")
echo "(b) the peer holds $N tunnels, b serves $((N - lost_ike)) IKE SAs and $((N - lost_child)) CHILD SAs:" \
	"lost $lost_ike IKE and $lost_child CHILD SAs (never sent to b), stale $SOAK_STALE, duplicated $SOAK_DUP, kernel $SOAK_KERNEL"
e2e_expect "(b) the cut hit the resync: b got some of the $N tunnels, not all" \
	eval '[ "$lost_ike" -gt 0 ] && [ "$lost_ike" -lt "$N" ]'
e2e_expect "(b) b serves exactly what it held at the kill (lost nothing it got)" \
	eval '[ $((N - lost_ike)) = "${held% *}" ] && [ $((N - lost_child)) = "${held#* }" ]'
e2e_expect "(b) b holds nothing the peer does not (no stale or duplicated SA, routes)" \
	eval '[ $((SOAK_STALE + SOAK_DUP + SOAK_KERNEL)) = 0 ]' || soak_print_diff
e2e_expect "(b) the peer kept every IKE SA (same SPIs)" eval '[ "$(many_peer_ikes)" = "$ikes" ]'
# traffic through the first tunnels b holds, and what the others do
served=() missing=()
for ((i = 1; i <= N; i++)); do
	if grep -q "^lost child [^ ]* [^ ]* $(many_child "$i") " <<<"$SOAK_DIFF"; then
		missing+=("$i")
	else
		served+=("$i")
	fi
done
bad=""
for i in "${served[@]:0:5}"; do
	e2e_wait_ping lan "$E2E_LAN_HOST" "$(many_addr "$i")" 5 &&
		e2e_wait_ping peer "$(many_addr "$i")" "$E2E_LAN_HOST" 5 || bad+=" $(many_child "$i")"
done
e2e_expect "(b) traffic both ways through ${#served[@]} served tunnels (first 5 tried; failed:${bad:- none})" \
	[ -z "$bad" ]
through=0
for i in "${missing[@]:0:5}"; do
	e2e_ping_once lan "$E2E_LAN_HOST" "$(many_addr "$i")" && through=$((through + 1))
done
echo "(b) pings through ${#missing[@]} tunnels b never got: $through of $((${#missing[@]} < 5 ? ${#missing[@]} : 5)) tried went through"

# a restarts as standby and gets b's SAs
fault_cut off
mv "$(e2e_log a)" "$E2E_DIR/a/charon-primary.log"
t0=$(_e2e_now_ms)
many_node_start a standby
if e2e_wait_for "a holds b's SAs" "$FAULT_SYNC_TIMEOUT" lc_synced b a; then
	e2e_pass "(b) a rejoins as standby and holds b's SAs ($(($(_e2e_now_ms) - t0)) ms after its start)"
else
	_lc_sync_diff | head -n 10
	e2e_expect "(b) a rejoins as standby and holds b's SAs" false
fi
echo "runtime $(e2e_elapsed)s"
ikev1_finish
