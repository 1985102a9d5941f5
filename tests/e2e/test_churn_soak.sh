#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Churn soak (issue 11): SOAK_TUNNELS (50) CHILD SAs in IKEv2 connections of
# SOAK_CHILDREN (5) CHILD SAs each between the peer and an electing cluster
# (many.sh), under continuous churn: a background loop picks a tunnel and
# rekeys its CHILD SA or its IKE SA, or deletes one of them and has the peer
# create it again, by the peer or by the active node, one operation after
# another. Meanwhile the cluster fails over SOAK_FAILOVERS (8; 20 with
# SASYNC_LONG=1) times: kill -9
# of the primary's charon, the standby promotes itself (election) and the
# killed node's charon restarts as standby and rejoins by bulk resync; every
# SOAK_SWITCH_EVERY-th (2nd; 4th with SASYNC_LONG=1) failover is a
# switchover instead: ha-promote of the standby, the old primary hands over
# (finishes its exchanges), demotes itself and is resynced.
# After each failover the churn pauses, the peer re-creates what the churn
# had deleted, pings go both ways through SOAK_SAMPLE (3) random tunnels
# (the new primary rekeys those CHILD SAs on their first outbound packet),
# and once quiet the new primary must hold exactly what the peer holds
# (soak.sh: IKE SPIs, CHILD SPIs; lost, stale, duplicated), its routes must
# match its CHILD SAs and no XFRM state exists, and the standby must hold
# the primary's SAs (SPIs and reqids) passive. Mismatches are printed per
# failover and in total; any fails the test. SOAK_SEED fixes the choice of
# operations. Times: see tests/e2e/README.md.
# checks run through eval in single quotes
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# 8 in CI (four of them switchovers), 20 in the long mode (SASYNC_LONG=1,
# five switchovers)
if [ "${SASYNC_LONG:-0}" = 1 ]; then
	: "${SOAK_FAILOVERS:=20}"
	else
	: "${SOAK_FAILOVERS:=8}"
	: "${SOAK_SWITCH_EVERY:=2}"
fi
: "${SOAK_TUNNELS:=50}"
: "${SOAK_CHILDREN:=5}"
: "${SOAK_SAMPLE:=3}"
# churn between two failovers: SOAK_CHURN_S plus 0 to 2 s, one operation
# every SOAK_CHURN_GAP s at most
: "${SOAK_CHURN_S:=2}"
: "${SOAK_CHURN_GAP:=0.1}"
# how long the SAs may take to agree once the churn paused
: "${SOAK_SETTLE:=20}"
: "${SOAK_SEED:=$((RANDOM))}"
MANY_CHILDREN=$SOAK_CHILDREN
MANY_CONNS=$(((SOAK_TUNNELS + SOAK_CHILDREN - 1) / SOAK_CHILDREN))
MANY_ADDR_BASE=1
# shellcheck source=tests/e2e/soak.sh
. "$(dirname "$0")/soak.sh"

N=$MANY_N
E2E_DPD_DELAY=0s
# the peer initiates every tunnel from its one address at once
E2E_CHARON_CONF="$E2E_CHARON_CONF
	dos_protection = no"
SASYNC_NODE_CONF_a="		node_id = a"
SASYNC_NODE_CONF_b="		node_id = b"
sasync_election_on

# ------------------------------------------------------------------ churn

# soak_op NODE ARGS...: swanctl ARGS on NODE, the outcome in the churn log
soak_op() {
	local node=$1 rc
	shift
	e2e_swanctl "$node" "$@" >>"$E2E_DIR/churn.out" 2>&1
	rc=$?
	echo "$(date +%T.%3N) $node $* rc=$rc" >>"$E2E_DIR/churn.log"
	return $rc
}

# soak_churn: the churn loop (in the background); pauses while the file
# soak-pause exists (and says so with soak-paused), acts on the node named
# in soak-active
soak_churn() {
	local i c k name act
	RANDOM=$SOAK_SEED
	while :; do
		if [ -e "$E2E_DIR/soak-pause" ]; then
			: >"$E2E_DIR/soak-paused"
			sleep 0.1
			continue
		fi
		rm -f "$E2E_DIR/soak-paused"
		act=$(cat "$E2E_DIR/soak-active")
		# not on a node that is no longer primary (a switchover): a
		# terminate there destroys its passive copy, silently
		[ "$(sasync_status "$act" role 2>/dev/null)" = primary ] || act=peer
		i=$((RANDOM % N + 1))
		c=$(((i - 1) / MANY_CHILDREN + 1))
		name=$(many_child "$i")
		case $((RANDOM % 8)) in
		0) soak_op peer --rekey --child "$name" ;;
		1) soak_op "$act" --rekey --child "$name" ;;
		2) soak_op peer --rekey --ike "m$c" ;;
		3) soak_op "$act" --rekey --ike "m$c" ;;
		4) soak_op peer --terminate --child "$name" --timeout 5
		   soak_op peer --initiate --child "$name" --timeout 5 ;;
		5) soak_op "$act" --terminate --child "$name" --timeout 5
		   soak_op peer --initiate --child "$name" --timeout 5 ;;
		6|7)
		   if [ $((RANDOM % 2)) = 0 ]; then
			   soak_op peer --terminate --ike "m$c" --timeout 5
		   else
			   soak_op "$act" --terminate --ike "m$c" --timeout 5
		   fi
		   for ((k = 1; k <= MANY_CHILDREN; k++)); do
			   soak_op peer --initiate --child "m${c}c$k" --timeout 5
		   done ;;
		esac
		sleep "$SOAK_CHURN_GAP"
	done
}

# soak_pause: stop the churn after its current operation
soak_pause() {
	rm -f "$E2E_DIR/soak-paused"
	: >"$E2E_DIR/soak-pause"
	e2e_wait_for "the churn pauses" 60 test -e "$E2E_DIR/soak-paused" ||
		e2e_fail "churn loop did not pause"
}

soak_resume() { rm -f "$E2E_DIR/soak-pause"; }

# soak_ops: churn operations logged so far
soak_ops() { wc -l <"$E2E_DIR/churn.log"; }

# ------------------------------------------------------------ quiet state

# soak_peer_settled: nothing in flight on the peer
soak_peer_settled() { soak_settled "$(soak_view peer mirror)"; }

# soak_busy_ikes: "UNIQUEID STATE ISPI RSPI" of each IKE SA of the peer that
# is not ESTABLISHED or holds a CHILD SA that is not INSTALLED
soak_busy_ikes() {
	lc_raw peer | awk "$_LC_AWK_KV"'/^list-sa event/ {
		ike = $0
		sub(/ child-sas .*/, "", ike)
		kids = $0
		if (!sub(/.* child-sas /, "", kids))
			kids = ""
		gsub(/state=INSTALLED/, "", kids)
		if (kv(ike, "state") != "ESTABLISHED" || kids ~ /state=/)
			print kv(ike, "uniqueid"), kv(ike, "state"), kv(ike, "initiator-spi"), kv(ike, "responder-spi")
	}'
}

# soak_restore ACTIVE: once nothing is in flight on the peer, or after 3 s,
# what hangs there is moved on (STUCK), IKE SAs the peer could not establish
# are given up (HALF_OPEN), and the peer creates again each tunnel it lacks
# (RECREATED: deleted by the churn, the initiation cut by the failover).
# A request of the peer in flight at the failover hangs: the RFC 6311 sync
# of the new primary makes the peer's charon (5.9.8) queue it again, and it
# only goes out with the peer's next exchange; an IKE rekey or delete never
# does (the IKE SA stays REKEYING or DELETING, see tests/e2e/README.md).
# The peer's own next exchange moves the first kind (an IKE rekey it
# starts), the active node deletes the IKE SA of the second. An IKE SA still
# CONNECTING sent its IKE_SA_INIT to the dead node: the new primary knows
# nothing of it, the peer gives it up.
soak_restore() {
	local act=$1 pv i name id st spi_i spi_r aid
	STUCK=0 HALF_OPEN=0 RECREATED=0
	e2e_wait_for "nothing in flight on the peer" 3 soak_peer_settled
	while read -r id st spi_i spi_r; do
		[ -n "$id" ] || continue
		case $st in
		CREATED | CONNECTING)
			HALF_OPEN=$((HALF_OPEN + 1))
			e2e_swanctl peer --terminate --ike-id "$id" --force --timeout 2 ;;
		ESTABLISHED)
			STUCK=$((STUCK + 1))
			e2e_swanctl peer --rekey --ike-id "$id" ;;
		*)
			STUCK=$((STUCK + 1))
			# the peer's own delete of an IKE SA the active node no
			# longer has (it died after taking it) ends at the peer
			if aid=$(lc_uniqueid "$act" "$spi_i $spi_r"); then
				e2e_swanctl "$act" --terminate --ike-id "$aid" --timeout 5
			else
				e2e_swanctl peer --terminate --ike-id "$id" --force --timeout 2
			fi ;;
		esac >>"$E2E_DIR/restore.out" 2>&1
		echo "$(date +%T.%3N) peer IKE_SA #$id $st ($spi_i $spi_r) moved on" >>"$E2E_DIR/restore.out"
	done < <(soak_busy_ikes)
	[ $((STUCK + HALF_OPEN)) = 0 ] ||
		e2e_wait_for "nothing in flight on the peer (moved on)" 10 soak_peer_settled ||
		echo "    still in flight on the peer: $(soak_busy_ikes | paste -sd,)"
	pv=$(soak_view peer mirror)
	for ((i = 1; i <= N; i++)); do
		name=$(many_child "$i")
		grep -qE "^child [^ ]+ [^ ]+ $name INSTALLED " <<<"$pv" && continue
		e2e_swanctl peer --initiate --child "$name" --timeout 10 >>"$E2E_DIR/restore.out" 2>&1 ||
			echo "    the peer could not create $name again"
		RECREATED=$((RECREATED + 1))
	done
}

# soak_pings: one ping each way through SOAK_SAMPLE random tunnels (5 s
# each at most); sets PINGS_OK and PINGS_BAD (the tunnels that failed)
soak_pings() {
	local k i
	PINGS_OK=0 PINGS_BAD=""
	for ((k = 0; k < SOAK_SAMPLE; k++)); do
		i=$((RANDOM % N + 1))
		if e2e_wait_ping lan "$E2E_LAN_HOST" "$(many_addr "$i")" 5 &&
			e2e_wait_ping peer "$(many_addr "$i")" "$E2E_LAN_HOST" 5; then
			PINGS_OK=$((PINGS_OK + 1))
		else
			PINGS_BAD+=" $(many_child "$i")"
		fi
	done
}

# ------------------------------------------------------------------ setup

e2e_init
echo "soak: $N tunnels ($MANY_CONNS IKE SAs of $MANY_CHILDREN CHILD SAs), $SOAK_FAILOVERS failovers," \
	"seed $SOAK_SEED"
many_setup
many_node_start a primary
many_node_start b standby
e2e_wait_for "sync link between a and b up" 10 ikev1_link_up || e2e_fail "sync link up"
t0=$(_e2e_now_ms)
many_peer_load start
e2e_wait_for "all $N tunnels up on the peer and a" 60 \
	eval '[ "$(many_counts peer ESTABLISHED mirror)" = "$MANY_CONNS $N" ] && lc_side_on_active peer' ||
	{ echo "    peer: $(many_counts peer ESTABLISHED mirror), a: $(many_counts a)"; e2e_fail "$N tunnels up"; }
echo "$MANY_CONNS IKE SAs and $N CHILD SAs up in $(($(_e2e_now_ms) - t0)) ms"
e2e_wait_for "a, b and the peer agree" "$SOAK_SETTLE" soak_agree a b || soak_print_diff
e2e_check "b holds a's SAs, the peer holds a's, nothing duplicated" [ "$(soak_mismatches)" = 0 ]
echo a >"$E2E_DIR/soak-active"
: >"$E2E_DIR/churn.log"
_e2e_bg churn soak_churn

# ------------------------------------------------------------- failovers

P=a S=b
T_LOST=0 T_STALE=0 T_DUP=0 T_KERNEL=0 T_STANDBY=0 T_PINGS_BAD=0 T_HALF=0 T_RECREATED=0 T_STUCK=0
ops_before=0
prev=""
for ((f = 1; f <= SOAK_FAILOVERS; f++)); do
	sleep "$SOAK_CHURN_S.$((RANDOM % 10))"
	[ $((RANDOM % 2)) = 0 ] && sleep 1
	t0=$(_e2e_now_ms)
	if [ "$SOAK_SWITCH_EVERY" -gt 0 ] && [ $((f % SOAK_SWITCH_EVERY)) = 0 ]; then
		how="switchover: ha-promote of $S"
		sasync_ctl "$S" promote >/dev/null || e2e_fail "ha-promote on $S"
		e2e_wait_for "$P demotes itself" 15 \
			eval '[ "$(sasync_status "$P" role)" = standby ] && [ "$(sasync_status "$S" role)" = primary ]' ||
			e2e_fail "failover $f: $S primary and $P standby after the switchover"
		t_prom=$(_e2e_now_ms)
		echo "$S" >"$E2E_DIR/soak-active"
		joined="$P demoted, no restart"
	else
		how="kill -9 of $P"
		e2e_charon_kill "$P" KILL
		e2e_wait_for "$S promotes itself" 15 eval '[ "$(sasync_status "$S" role)" = primary ]' ||
			e2e_fail "failover $f: $S promoted by the election"
		t_prom=$(_e2e_now_ms)
		echo "$S" >"$E2E_DIR/soak-active"
		mv "$(e2e_log "$P")" "$E2E_DIR/$P/charon-$f.log"
		many_node_start "$P" standby
		joined="$P restarted as standby after $(($(_e2e_now_ms) - t0)) ms"
	fi
	soak_pause
	t_quiet=$(_e2e_now_ms)
	ops=$(soak_ops)
	soak_restore "$S"
	soak_pings
	if ! e2e_wait_for "failover $f: $S, $P and the peer agree" "$SOAK_SETTLE" soak_agree "$S" "$P"; then
		echo "  failover $f: mismatches after ${SOAK_SETTLE}s:"
		soak_print_diff
	fi
	t_end=$(_e2e_now_ms)
	# a mismatch left from an earlier failover is counted there only
	cur=$(grep -v '^$' <<<"$SOAK_DIFF" | sort)
	new=$(comm -13 <(echo "$prev") <(echo "$cur"))
	prev=$cur
	SOAK_LOST=$(grep -c '^lost' <<<"$new") SOAK_STALE=$(grep -c '^stale' <<<"$new")
	SOAK_DUP=$(grep -c '^\(duplicated\|shared\)' <<<"$new") SOAK_KERNEL=$(grep -c '^kernel' <<<"$new")
	SOAK_STANDBY=$(grep -c '^standby' <<<"$new")
	left=$(($(grep -c . <<<"$cur") - $(grep -c . <<<"$new")))
	[ "$left" -gt 0 ] && left=" (still from before: $left)" || left=""
	T_LOST=$((T_LOST + SOAK_LOST)) T_STALE=$((T_STALE + SOAK_STALE)) T_DUP=$((T_DUP + SOAK_DUP))
	T_KERNEL=$((T_KERNEL + SOAK_KERNEL)) T_STANDBY=$((T_STANDBY + SOAK_STANDBY))
	T_PINGS_BAD=$((T_PINGS_BAD + SOAK_SAMPLE - PINGS_OK)) T_HALF=$((T_HALF + HALF_OPEN))
	T_RECREATED=$((T_RECREATED + RECREATED)) T_STUCK=$((T_STUCK + STUCK))
	echo "failover $f ($how): $S primary after $((t_prom - t0)) ms, $joined; churn ops $((ops - ops_before)); quiet check $((t_end - t_quiet)) ms" \
		"(peer: stuck $STUCK, half-open $HALF_OPEN, recreated $RECREATED); pings $PINGS_OK/$SOAK_SAMPLE${PINGS_BAD:+ (failed:$PINGS_BAD)};" \
		"new mismatches: lost $SOAK_LOST stale $SOAK_STALE dup $SOAK_DUP kernel $SOAK_KERNEL standby $SOAK_STANDBY$left;" \
		"cycle $((t_end - t0)) ms"
	ops_before=$(soak_ops)
	tmp=$P P=$S S=$tmp
	soak_resume
done
soak_pause
_e2e_untrack churn TERM 5

echo "churn: $(soak_ops) operations:" \
	"$(awk '{ print $2 ":" $3 ($3 == "--rekey" || $3 == "--terminate" ? $4 : "") }' "$E2E_DIR/churn.log" |
		sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }')" \
	"failed $(grep -vc 'rc=0$' "$E2E_DIR/churn.log")"
echo "totals over $SOAK_FAILOVERS failovers: lost $T_LOST stale $T_STALE duplicated $T_DUP kernel $T_KERNEL" \
	"standby $T_STANDBY; pings failed $T_PINGS_BAD of $((SOAK_FAILOVERS * SOAK_SAMPLE));" \
	"the peer's exchanges stuck $T_STUCK, half-open $T_HALF, tunnels re-created $T_RECREATED"
e2e_expect "no SA lost, stale or duplicated over $SOAK_FAILOVERS failovers" \
	[ $((T_LOST + T_STALE + T_DUP)) = 0 ]
e2e_expect "no stale kernel state (routes, XFRM)" [ "$T_KERNEL" = 0 ]
e2e_expect "the standby held the primary's SAs after each failover" [ "$T_STANDBY" = 0 ]
e2e_expect "traffic both ways through every sampled tunnel" [ "$T_PINGS_BAD" = 0 ]
echo "apply-failed: a $(sasync_stat a apply-failed), b $(sasync_stat b apply-failed)"
echo "runtime $(e2e_elapsed)s"
ikev1_finish
