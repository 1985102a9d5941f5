#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Many tunnels through the lifecycle before one failover: MANY_CONNS IKEv2
# connections (10) from the peer, each with MANY_CHILDREN CHILD SAs (5), 50
# CHILD SAs in all. CHILD SA i protects 198.18.2.0/24 <-> 198.18.1.(100+i)
# (an address on the peer's lo), so a ping picks exactly one tunnel; the
# configurations are generated (each connection has its own identities,
# peerN@test and clusterN@test). Before the failover:
#   - CHILD SAs i % 3 = 1 are rekeyed by the peer, i % 3 = 2 by a, the
#     others stay fresh;
#   - then IKE SAs c % 3 = 1 are rekeyed by the peer, c % 3 = 2 by a, the
#     others stay fresh (their CHILD SAs move along);
#   each batch at once; after each b must hold exactly a's SAs.
# Then 10 pps pings both ways through a rekeyed and a fresh tunnel, the
# failover, and for every tunnel, on the peer: its IKE SA kept (the current
# generation), a ping both ways through it via b, its CHILD SA rekeyed by
# b on the first outbound packet, and b holding what the peer holds.
# All 50 tunnels: 130 s on 2 CPUs at load 6 (MANY_CONNS, MANY_CHILDREN for
# other sizes).
# checks run through eval in single quotes
# shellcheck disable=SC2016
set -uo pipefail

# shellcheck source=tests/e2e/many.sh
. "$(dirname "$0")/many.sh"

N=$MANY_N
E2E_DPD_DELAY=0s
# RFC 6311 syncs after the promotion at one per second, so most still wait
# when the first packets go into every tunnel: each forced rekey must pull
# its IKE SA's sync forward and queue behind it
SASYNC_EXTRA_CONF="		promote_rate = 1"

# rekey_before_midsync: IKE SAs on b whose first CREATE_CHILD_SA request
# after the promotion went out before their RFC 6311 message ID sync, and
# the number of IKE SAs synced ("LATE SYNCED")
rekey_before_midsync() {
	awk -v mark="$1" 'NR > mark && match($0, /<[^|>]*\|[0-9]+>/) {
		sa = substr($0, RSTART, RLENGTH)
		if ($0 ~ /RFC 6311 message ID sync: initiating/ && !(sa in s)) {
			s[sa] = 1; synced++
		}
		if ($0 ~ /generating CREATE_CHILD_SA request/ && !(sa in r)) {
			r[sa] = 1; if (!(sa in s)) late++
		}
	} END { print late + 0, synced + 0 }' "$(e2e_log b)"
}

# changed SNAP KIND: lines of KIND (ike, child) in the peer's mirrored
# summary that SNAP did not have
changed() { comm -13 <(echo "$1") <(lc_summary peer ESTABLISHED mirror) | grep -c "^$2 "; }

# settled SNAP KIND COUNT: COUNT new KIND lines on the peer, all N CHILD
# SAs there, and a agrees
settled() {
	[ "$(changed "$1" "$2")" -ge "$3" ] &&
		[ "$(many_counts peer ESTABLISHED mirror)" = "$MANY_CONNS $N" ] &&
		lc_side_on_active peer
}

# all_rekeyed: every CHILD SA on the peer has other SPIs than in $CHILDREN
# (many_peer_children before the failover), and all N are there
all_rekeyed() {
	local now
	now=$(many_peer_children)
	[ "$(wc -l <<<"$now")" -eq "$N" ] && [ -z "$(comm -12 <(echo "$CHILDREN") <(echo "$now"))" ]
}

e2e_init
many_setup none
for node in a b; do
	role=standby
	[ "$node" = a ] && role=primary
	many_node_start "$node" "$role"
done
e2e_wait_for "sync link between a and b up" 10 ikev1_link_up || e2e_fail "sync link up"
e2e_capture_start esp peer ext0 udp port 4500 || e2e_fail "capture on peer"

# initiate CHILD SA k of every connection at once, k = 1 (IKE SAs) .. K
t0=$(_e2e_now_ms)
for k in $(seq 1 "$MANY_CHILDREN"); do
	pids=()
	for c in $(seq 1 "$MANY_CONNS"); do
		e2e_initiate peer "m${c}c$k" &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do wait "$pid" || e2e_fail "initiate CHILD SA $k of each connection"; done
done
e2e_wait_for "all tunnels on the peer and a" 20 settled "" child "$N" ||
	{ lc_show peer ESTABLISHED mirror | tail -n 5; e2e_fail "$MANY_CONNS IKE SAs, $N CHILD SAs up"; }
echo "$MANY_CONNS IKE SAs and $N CHILD SAs up in $(($(_e2e_now_ms) - t0)) ms"
lc_wait_synced "$MANY_CONNS IKE SAs, $N CHILD SAs up" || e2e_fail "b has the first generation"
mark_up=$(lc_mark peer)

# ---- CHILD rekeys, all at once: i % 3 = 1 by the peer, 2 by a
snap=$(lc_summary peer ESTABLISHED mirror)
n=0
for i in $(seq 1 "$N"); do
	case $((i % 3)) in
	1) node=peer ;;
	2) node=a ;;
	*) continue ;;
	esac
	e2e_swanctl "$node" --rekey --child "$(many_child "$i")" >>"$E2E_DIR/$node/rekey.out" 2>&1 ||
		e2e_fail "swanctl --rekey --child $(many_child "$i") on $node"
	n=$((n + 1))
done
e2e_check "$n CHILD rekeys (by the peer and by a) complete" \
	e2e_wait_for "$n CHILD rekeys" 20 settled "$snap" child "$n"
lc_wait_synced "$n CHILD rekeys by the peer and by a"

# ---- IKE rekeys, all at once: c % 3 = 1 by the peer, 2 by a
e2e_wait_for "no rekeyed CHILD SA left" 12 _lc_all_settled peer a
snap=$(lc_summary peer ESTABLISHED mirror)
jobs=()
for c in $(seq 1 "$MANY_CONNS"); do
	case $((c % 3)) in
	1) node=peer ;;
	2) node=a ;;
	*) continue ;;
	esac
	spis=$(awk -v n="m$c" '$1 == "ike" && $2 == n { print $3, $4; exit }' <<<"$snap")
	id=$(lc_uniqueid "$node" "$spis") || e2e_fail "IKE SA m$c ($spis) on $node"
	jobs+=("$node $id")
done
n=${#jobs[@]}
for job in "${jobs[@]}"; do
	read -r node id <<<"$job"
	e2e_swanctl "$node" --rekey --ike-id "$id" >>"$E2E_DIR/$node/rekey.out" 2>&1 ||
		e2e_fail "swanctl --rekey --ike-id $id on $node"
done
e2e_check "$n IKE rekeys (by the peer and by a) complete" \
	e2e_wait_for "$n IKE rekeys" 20 settled "$snap" ike "$n"
lc_wait_synced "$n IKE rekeys by the peer and by a"
echo "b before the failover: $(many_counts b PASSIVE | awk '{ print $1 " IKE SAs, " $2 " CHILD SAs" }')"

# ---- failover
CHILDREN=$(many_peer_children)
ike_before=$(many_peer_ikes)
# a tunnel rekeyed twice (CHILD by the peer, IKE by the peer) and a fresh one
lc_streams_start "t1 $E2E_LAN_HOST $(many_addr 1)" "t$((N > 3 ? N - 1 : N)) $E2E_LAN_HOST $(many_addr $((N > 3 ? N - 1 : N)))"
streams=(l2p-t1 p2l-t1 "l2p-t$((N > 3 ? N - 1 : N))" "p2l-t$((N > 3 ? N - 1 : N))")
mark_promotion=$(wc -l <"$(e2e_log b)")
lc_failover
lc_expect_resumed "${streams[@]}"
for s in "${streams[@]}"; do e2e_ping_stop "$s"; done
for s in "${streams[@]}"; do lc_ping_check "$s"; done

# a first packet from the LAN into every tunnel at once: b rekeys each
# restored CHILD SA on its first outbound packet
t0=$(_e2e_now_ms)
pids=()
for i in $(seq 1 "$N"); do
	e2e_ping_once lan "$E2E_LAN_HOST" "$(many_addr "$i")" &
	pids+=($!)
done
wait "${pids[@]}"
e2e_wait_for "every CHILD SA rekeyed by b" 20 all_rekeyed
echo "b rekeyed the CHILD SAs in $(($(_e2e_now_ms) - t0)) ms"
# then every tunnel, both ways, through b
t0=$(_e2e_now_ms)
bad=()
for i in $(seq 1 "$N"); do
	e2e_wait_ping lan "$E2E_LAN_HOST" "$(many_addr "$i")" 5 &&
		e2e_wait_ping peer "$(many_addr "$i")" "$E2E_LAN_HOST" 5 || bad+=("$(many_child "$i")")
done
echo "pinged through all $N tunnels in $(($(_e2e_now_ms) - t0)) ms"
e2e_expect "traffic both ways through every one of the $N tunnels via b (failed: ${bad[*]:-none})" \
	[ ${#bad[@]} -eq 0 ]
e2e_expect "the peer kept each of its $MANY_CONNS IKE SAs (the current generation)" \
	eval '[ "$(many_peer_ikes)" = "$ike_before" ]' ||
	diff <(echo "$ike_before") <(many_peer_ikes) | sed 's/^/    /'
stale=$(comm -12 <(echo "$CHILDREN") <(many_peer_children) | awk '{ print $1 }' | paste -sd' ')
e2e_expect "b rekeyed each of the $N CHILD SAs on its first outbound packet (not rekeyed: ${stale:-none}; the peer has $(many_peer_children | wc -l))" \
	all_rekeyed
echo "forced rekeys on b: $(sasync_stat b forced-rekeys)"
read -r late synced < <(rekey_before_midsync "$mark_promotion")
e2e_expect "no CHILD rekey by b before its IKE SA's RFC 6311 sync ($late early; $synced of $MANY_CONNS IKE SAs synced)" \
	[ "$late" = 0 ] && [ "$synced" = "$MANY_CONNS" ]
e2e_expect "b holds what the peer holds ($MANY_CONNS IKE SAs, $N CHILD SAs)" \
	e2e_wait_for "b and the peer agree" 10 eval 'lc_side_on_active peer && [ "$(many_counts peer ESTABLISHED mirror)" = "$MANY_CONNS $N" ]' ||
	{ echo "    peer: $(many_counts peer ESTABLISHED mirror), b: $(many_counts b)"; }
e2e_expect "the peer ran no IKE_SA_INIT since the tunnels came up (no new IKE SA)" \
	[ "$(lc_count_since peer "$mark_up" "generating IKE_SA_INIT request")" -eq 0 ]
lc_reuse_check esp
echo "records b could not apply (apply-failed): $(lc_apply_failed)"
echo "runtime $(e2e_elapsed)s"
ikev1_finish
