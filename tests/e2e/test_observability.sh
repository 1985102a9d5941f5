#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Observability and control over vici (issue 4), driven through both
# "swanctl --stats --uri" and sasyncctl: three tunnels synced with exact
# counters on both nodes (sync-tx on a = sync-rx on b once quiet), ha-status
# and ha-list-sas (filters, SPIs, passive/active, forced rekeys pending),
# node id and priority settings, resync and counter reset, exit codes, bad
# input on the sync port (a malformed record in an authentic frame, a frame
# under a wrong key, a wrong secret, a replay, random bytes, half a frame,
# a record for an unknown SA, a connection from an address that is no
# partner:
# counted, reported as ha-sync-error, logged, nothing applied, daemons keep
# serving), and the ha-role event printed by "sasyncctl monitor" during a
# failover.
# checks run through eval in single quotes, which also reads the variables
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

: "${SASYNC_INJECT:=$E2E_LIB_DIR/../tools/sasync-inject}"
N=3

# obs_start NODE ROLE NODE_ID PEER [PRIORITY]: charon with the plugin, a
# node id, its partner's address without a name (so the injector may speak
# from it), a priority if given, and the three connections loaded
obs_start() {
	local node=$1 role=$2 id=$3 peer=$4 prio=${5:-} extra
	extra="plugins { sasync { node_id = $id"
	[ -n "$prio" ] && extra="$extra
		priority = $prio"
	extra="$extra
	} }"
	e2e_charon_start "$node" "$(sasync_conf "$node" "$role" "$SASYNC_SECRET" \
		"$peer")
$extra" || return 1
	E2E_DPD_DELAY=0s e2e_swanctl_load "$node" multi-cluster.conf
}

# obs_swanctl_stat NODE COUNTER: a counter of the ha section, from swanctl
obs_swanctl_stat() {
	e2e_swanctl "$1" --stats --raw --uri "$SASYNC_URI" 2>/dev/null |
		grep -oE "ha \{[^}]*\}" | _e2e_kv "$2"
}

# obs_fgcp NODE NAME: a value of sasyncctl's FGCP-style line (ha.vike.sync)
obs_fgcp() {
	sasync_ctl "$1" stats | head -n 1 | grep -oE "(^| )$2: [0-9]+" |
		sed 's/.*: //'
}

# obs_counter_is NODE COUNTER VALUE: the counter is VALUE through both
# swanctl and sasyncctl (and, for the FGCP counters, its line)
obs_counter_is() {
	local node=$1 ctr=$2 want=$3 fgcp
	[ "$(obs_swanctl_stat "$node" "$ctr")" = "$want" ] || return 1
	[ "$(sasync_stat "$node" "$ctr")" = "$want" ] || return 1
	case $ctr in
	resync | vike-sync | conn-sync | sync-tx | sync-rx | sync-rx-len-bad)
		fgcp="ha.${ctr//-/.}"
		[ "$(obs_fgcp "$node" "$fgcp")" = "$want" ] || return 1
		;;
	esac
}

# obs_counters_are NODE VALUE COUNTER...: each counter is VALUE
obs_counters_are() {
	local node=$1 want=$2 ctr
	shift 2
	for ctr in "$@"; do
		obs_counter_is "$node" "$ctr" "$want" || return 1
	done
}

# obs_quiet [EXTRA]: everything a sent has reached b: a's queue is empty and
# its sync-tx, the same before and after, plus EXTRA (frames b accepted from
# elsewhere) equals b's sync-rx
obs_quiet() {
	local tx1 rx tx2
	tx1=$(sasync_stat a sync-tx)
	rx=$(sasync_stat b sync-rx)
	tx2=$(sasync_stat a sync-tx)
	[ -n "$tx1" ] && [ "$((tx1 + ${1:-0}))" = "$rx" ] && [ "$tx1" = "$tx2" ] &&
		[ "$(sasync_stat a queue-depth)" = 0 ]
}

# obs_link_up NODE: both sync connections to the partner up, and a
# heartbeat from it seen
obs_link_up() {
	local st
	st=$(sasync_ctl "$1" --raw status)
	[[ $st == *" out=up "* ]] && [[ $st == *" in=up "* ]] &&
		[[ $st == *" last-heartbeat-ms="* ]]
}

# obs_list_spis NODE [ARGS]: "name initiator-spi responder-spi spi-in
# spi-out" per SA from ha-list-sas, sorted
obs_list_spis() {
	local node=$1
	shift
	sasync_ctl "$node" --raw list "$@" | grep '^ha-list-sa event' |
		while read -r line; do
			echo "$(sed -E 's/^ha-list-sa event \{([^ ]+) .*/\1/' <<<"$line")" \
				"$(_e2e_kv initiator-spi <<<"$line")" \
				"$(_e2e_kv responder-spi <<<"$line")" \
				"$(_e2e_kv spi-in <<<"$line")" \
				"$(_e2e_kv spi-out <<<"$line")"
		done | sort
}

# obs_ctl_rc NODE ARGS...: exit code of sasyncctl
obs_ctl_rc() {
	sasync_ctl "$@" >/dev/null 2>&1
	echo $?
}

# obs_inject FROM NODE_IP MODE: run sasync-inject from node FROM (the
# partner's address: nodes accept sync connections from partners only)
obs_inject() {
	e2e_exec "$1" "$SASYNC_INJECT" --peer "$2" --secret "$SASYNC_SECRET" "$3"
}

e2e_init
[ -x "$SASYNC_INJECT" ] || e2e_fail "$SASYNC_INJECT not built (run make)"
[ -x "$SASYNC_CTL" ] || e2e_fail "$SASYNC_CTL not built (run make)"

# ---------------------------------------------------------------- set-up
e2e_topo_up || e2e_fail "topology up"
e2e_charon_start peer || e2e_fail "charon on peer"
e2e_swanctl_load peer multi-peer.conf || e2e_fail "load multi-peer.conf"
obs_start a primary gw-a "$E2E_B_LAN" 200 || e2e_fail "charon with sasync on a"
obs_start b standby gw-b "$E2E_A_LAN" || e2e_fail "charon with sasync on b"
e2e_wait_for "sync links up with heartbeats" 10 \
	eval 'obs_link_up a && obs_link_up b' || e2e_fail "sync links up"

e2e_check "ha-status: node id and priority setting on a" \
	eval '[ "$(sasync_status a node)" = gw-a ] && [ "$(sasync_status a priority)" = 200 ]'
e2e_check "ha-status: default priority 100 on b" \
	eval '[ "$(sasync_status b node)" = gw-b ] && [ "$(sasync_status b priority)" = 100 ]'
e2e_check "ha-status: roles" \
	eval '[ "$(sasync_status a role)" = primary ] && [ "$(sasync_status b role)" = standby ]'
e2e_check "ha-status: peer addresses" \
	eval '[ "$(sasync_status a address)" = "$E2E_B_LAN" ] && [ "$(sasync_status b address)" = "$E2E_A_LAN" ]'

sasync_monitor mon-a a || e2e_fail "sasyncctl monitor on a"
mon_a_pid=$(_e2e_pid mon-a)
sasync_monitor mon-b b || e2e_fail "sasyncctl monitor on b"
sasync_monitor mon-b-raw b --raw || e2e_fail "sasyncctl --raw monitor on b"

# ------------------------------------------------------- N tunnels, counters
for child in "$E2E_CHILD" net2 net3; do
	e2e_initiate peer "$child" || e2e_fail "initiate $child from peer"
done
e2e_wait_for "$N IKE SAs on the peer" 10 \
	eval '[ "$(e2e_sa_count peer)" = $N ]' || e2e_fail "$N tunnels up"
e2e_wait_for "$N passive IKE and CHILD SAs on b" 10 \
	eval '[ "$(sasync_status b ike-sas-passive)" = $N ] && [ "$(sasync_status b child-sas-passive)" = $N ]' ||
	e2e_fail "$N SAs synced to b"
e2e_wait_for "quiet: sync-tx on a = sync-rx on b, nothing queued" 10 obs_quiet ||
	e2e_fail "sync quiet"

for node in a b; do
	e2e_check "vike-sync = $N on $node (swanctl, sasyncctl, FGCP line)" \
		obs_counter_is "$node" vike-sync "$N"
	e2e_check "conn-sync = $N on $node (swanctl, sasyncctl, FGCP line)" \
		obs_counter_is "$node" conn-sync "$N"
	e2e_check "no sync errors on $node" obs_counters_are "$node" 0 \
		sync-rx-len-bad sync-rx-auth-bad sync-rx-replay apply-failed
done
tx=$(sasync_stat a sync-tx)
e2e_check "sync-tx on a ($tx) = sync-rx on b, through swanctl too" \
	eval '[ "$tx" -ge $((2 * N)) ] && obs_counter_is b sync-rx "$tx" && obs_counter_is a sync-tx "$tx"'
e2e_check "FGCP line format" \
	eval 'sasync_ctl a stats | head -n 1 | grep -qE "^ha\.resync: [0-9]+ ha\.vike\.sync: $N ha\.conn\.sync: $N ha\.sync\.tx: $tx ha\.sync\.rx: 0 ha\.sync\.rx\.len\.bad: 0$"'
e2e_check "stats: the other counters on the second line" \
	eval 'sasync_ctl b stats | sed -n 2p | grep -qE "ha\.sync\.rx\.auth\.bad: 0 .*ha\.apply\.failed: 0 .*ha\.sync\.lag\.max\.ms: [0-9]+"'

# ------------------------------------------------------ status and listing
e2e_check "ha-status counts by state on b" \
	eval 'sasync_ctl b --raw status | grep -qE "ike-sa-states \{PASSIVE=$N\} child-sa-states \{INSTALLED=$N\}"'
e2e_check "ha-status counts on a" \
	eval '[ "$(sasync_status a ike-sas-active)" = $N ] && [ "$(sasync_status a child-sas-active)" = $N ]'
e2e_check "ha-status: $N forced rekeys pending on b, none on a" \
	eval '[ "$(sasync_status b forced-rekeys-pending)" = $N ] && [ "$(sasync_status a forced-rekeys-pending)" = 0 ]'
list_a=$(obs_list_spis a)
list_b=$(obs_list_spis b)
echo "ha-list-sas on b (name, IKE SPIs, CHILD SPIs):"
echo "$list_b"
e2e_check "ha-list-sas: $N IKE SAs on b with the SPIs of a" \
	eval '[ "$(wc -l <<<"$list_b")" = $N ] && [ "$list_a" = "$list_b" ] && ! grep -q " $" <<<"$list_b"'
e2e_check "ha-list-sas on b: passive, forced rekey pending; on a: active" \
	eval '[ "$(sasync_ctl b --raw list | grep -c "state=PASSIVE mode=passive .*mode=passive .*rekey-pending=yes")" = $N ] &&
		  [ "$(sasync_ctl a --raw list | grep -c "state=ESTABLISHED mode=active .*rekey-pending=no")" = $N ]'
e2e_check "ha-list-sas reply counts the SAs" \
	eval 'sasync_ctl b --raw list | grep -qx "ha-list-sas reply {success=yes ike-sas=$N}"'
e2e_check "ha-list-sas filtered by name" \
	eval '[ "$(obs_list_spis b --ike site2)" = "$(grep "^site2 " <<<"$list_b")" ]'
id3=$(sasync_ctl b --raw list --ike site3 | grep '^ha-list-sa event' | _e2e_kv uniqueid)
e2e_check "ha-list-sas filtered by IKE id ($id3)" \
	eval '[ -n "$id3" ] && [ "$(obs_list_spis b --ike-id "$id3")" = "$(grep "^site3 " <<<"$list_b")" ]'
e2e_check "ha-list-sas with a filter matching nothing" \
	eval 'sasync_ctl b list --ike nosuch | grep -qx "no IKE SAs"'
e2e_check "sasyncctl list (human)" \
	eval 'sasync_ctl b list | grep -qE "^  net2: #[0-9]+, reqid [0-9]+, INSTALLED, ESP, passive, SPIs [0-9a-f]{8}_i [0-9a-f]{8}_o, forced rekey pending$"'
e2e_check "sasyncctl status (human)" \
	eval 'sasync_ctl b status | grep -qE "^peer $E2E_A_LAN: out up, in up, 0 queued \(lag 0 ms\), last heartbeat [0-9]+ ms ago"'

# ------------------------------------------------------ commands, exit codes
e2e_check "exit 1: demote on a standby" eval '[ "$(obs_ctl_rc b demote)" = 1 ]'
e2e_check "exit 1: promote on the primary" eval '[ "$(obs_ctl_rc a promote)" = 1 ]'
e2e_check "exit 2: unknown command" eval '[ "$(obs_ctl_rc b frobnicate)" = 2 ]'
e2e_check "exit 2: option of another command" eval '[ "$(obs_ctl_rc b status --ike x)" = 2 ]'
e2e_check "exit 3: no socket" \
	eval '[ "$(e2e_exec b "$SASYNC_CTL" --uri unix:///run/nosuch.vici status >/dev/null 2>&1; echo $?)" = 3 ]'
e2e_check "exit 4: charon's own socket does not know ha-status" \
	eval '[ "$(e2e_exec b "$SASYNC_CTL" --uri unix:///run/charon.vici status >/dev/null 2>&1; echo $?)" = 4 ]'
e2e_check "--help documents the exit codes" \
	eval '"$SASYNC_CTL" --help | grep -q "^  3  cannot connect"'

resync_a=$(sasync_stat a resync)
resync_b=$(sasync_stat b resync)
e2e_check "ha-resync on the standby asks the primary" \
	eval 'sasync_ctl b resync | grep -qx "resync requested"'
e2e_wait_for "a sent and b received a full resync" 10 \
	eval '[ "$(sasync_stat a resync)" = $((resync_a + 1)) ] && [ "$(sasync_stat b resync)" = $((resync_b + 1)) ]' ||
	e2e_fail "resync on request"
e2e_check "the resync duplicated nothing on b" \
	eval 'obs_counter_is b vike-sync $N && obs_counter_is b conn-sync $N && [ "$(obs_list_spis b)" = "$list_b" ]'
e2e_check "ha-resync on the primary" \
	eval 'sasync_ctl a resync | grep -qx "resync sent"'
e2e_wait_for "b received it" 10 \
	eval '[ "$(sasync_stat b resync)" = $((resync_b + 2)) ]' || e2e_fail "resync from the primary"
e2e_wait_for "quiet again" 10 obs_quiet || e2e_fail "sync quiet after the resyncs"

# ------------------------------------------------------ bad input on b
# an address that is no partner gets no handshake at all
e2e_check "injector from the LAN host (no partner): refused" \
	eval '[ "$(obs_inject lan "$E2E_B_LAN" malformed >/dev/null 2>&1; echo $?)" = 3 ]'
e2e_wait_for "b counts sync-rejected" 10 \
	eval '[ "$(sasync_stat b sync-rejected)" = 1 ]' || e2e_fail "sync-rejected on b"
e2e_check "one log line for it on b" \
	eval '[ "$(e2e_count_in_log b "\[APP\] sasync: refused sync connection from $E2E_LAN_HOST: not a configured peer")" = 1 ]'
e2e_wait_for "ha-sync-error for it on b's monitor" 5 \
	sasync_monitor_has mon-b "ha-sync-error: node='gw-b' peer='$E2E_LAN_HOST' error='sync-rejected' reason='refused connection: not a configured peer'" ||
	e2e_fail "ha-sync-error event for the refused connection"
# each run of the injector is its own connection from a's address
rx_b=$(sasync_stat b sync-rx)
e2e_check "malformed record to b: injector done" obs_inject a "$E2E_B_LAN" malformed
e2e_wait_for "b counts sync-rx-len-bad" 10 \
	eval '[ "$(sasync_stat b sync-rx-len-bad)" -ge 1 ]' || e2e_fail "sync-rx-len-bad on b"
e2e_check "sync-rx-len-bad = 1 on b (swanctl, sasyncctl, FGCP line)" \
	obs_counter_is b sync-rx-len-bad 1
e2e_check "the authentic frame counted as received" \
	obs_counter_is b sync-rx $((rx_b + 1))
e2e_wait_for "ha-sync-error for it on b's monitor" 5 \
	sasync_monitor_has mon-b "ha-sync-error: node='gw-b' peer='$E2E_A_LAN' error='sync-rx-len-bad' reason='malformed record'" ||
	e2e_fail "ha-sync-error event for the malformed record"
e2e_check "one log line for it on b" \
	eval '[ "$(e2e_count_in_log b "\[APP\] sasync: malformed record from $E2E_A_LAN, not applied")" = 1 ]'

e2e_check "frame under a wrong key to b: b closes the connection" \
	obs_inject a "$E2E_B_LAN" wrong-key
e2e_wait_for "b counts sync-rx-auth-bad" 10 \
	eval '[ "$(sasync_stat b sync-rx-auth-bad)" -ge 1 ]' || e2e_fail "sync-rx-auth-bad on b"
e2e_check "sync-rx-auth-bad = 1 on b (swanctl, sasyncctl)" \
	obs_counter_is b sync-rx-auth-bad 1
e2e_wait_for "ha-sync-error for it on b's monitor (raw)" 5 \
	sasync_monitor_has mon-b-raw "^ha-sync-error event \{node=gw-b peer=$E2E_A_LAN error=sync-rx-auth-bad reason=forged or corrupt frame\}$" ||
	e2e_fail "ha-sync-error event for the forged frame"
e2e_check "one log line for it on b" \
	eval '[ "$(e2e_count_in_log b "\[APP\] sasync: sync peer $E2E_A_LAN sent a forged or corrupt frame, closing")" = 1 ]'

e2e_check "handshake with a wrong secret to b: rejected" \
	obs_inject a "$E2E_B_LAN" wrong-secret
e2e_wait_for "b counts it as sync-rx-auth-bad" 10 \
	eval '[ "$(sasync_stat b sync-rx-auth-bad)" = 2 ]' || e2e_fail "wrong secret counted"
e2e_check "replayed frame to b: b closes the connection" \
	obs_inject a "$E2E_B_LAN" replay
e2e_wait_for "b counts sync-rx-replay" 10 \
	eval '[ "$(sasync_stat b sync-rx-replay)" = 1 ]' || e2e_fail "replay counted"
e2e_wait_for "ha-sync-error events for both" 5 \
	eval 'sasync_monitor_has mon-b "error=.sync-rx-auth-bad. reason=.handshake authentication failed" && sasync_monitor_has mon-b "error=.sync-rx-replay."' ||
	e2e_fail "ha-sync-error events for the wrong secret and the replay"

bad_b=$(($(sasync_stat b sync-rx-len-bad) + $(sasync_stat b sync-rx-auth-bad)))
rx_b=$(sasync_stat b sync-rx)
e2e_check "random bytes after the handshake to b: b closes the connection" \
	obs_inject a "$E2E_B_LAN" random
e2e_wait_for "b counts one bad frame" 10 \
	eval '[ $(($(sasync_stat b sync-rx-len-bad) + $(sasync_stat b sync-rx-auth-bad))) = $((bad_b + 1)) ]' ||
	e2e_fail "random bytes counted"
e2e_check "half a frame, then the connection closed, to b: injector done" \
	obs_inject a "$E2E_B_LAN" truncated
e2e_check "b received no record from either" \
	eval '[ "$(sasync_stat b sync-rx)" = "$rx_b" ]'
e2e_check "nothing applied on b: counters" \
	eval 'obs_counter_is b vike-sync $N && obs_counter_is b conn-sync $N && obs_counter_is b apply-failed 0 && obs_counter_is b delete-sync 0 && obs_counter_is b mid-sync 0'

# a well-formed record that matches nothing
e2e_check "record for an unknown IKE SA to b: injector done" \
	obs_inject a "$E2E_B_LAN" unknown-sa
e2e_wait_for "b counts apply-failed" 10 \
	eval '[ "$(sasync_stat b apply-failed)" = 1 ]' || e2e_fail "apply-failed on b"
e2e_wait_for "ha-sync-error for it on b's monitor" 5 \
	sasync_monitor_has mon-b "ha-sync-error: node='gw-b' peer='$E2E_A_LAN' error='apply-failed' reason='IKE_MID record not applied'" ||
	e2e_fail "ha-sync-error event for the record not applied"
e2e_check "one log line for it on b" \
	eval '[ "$(e2e_count_in_log b "\[APP\] sasync: IKE_MID record from $E2E_A_LAN not applied")" = 1 ]'
e2e_check "nothing applied on b: the same $N SAs, no message ID update" \
	eval '[ "$(sasync_status b ike-sas-passive)" = $N ] && [ "$(obs_list_spis b)" = "$list_b" ] && obs_counter_is b mid-sync 0'

# ------------------------------------------------------ bad input on a
e2e_check "malformed record to a: injector done" obs_inject b "$E2E_A_LAN" malformed
e2e_check "frame under a wrong key to a: a closes the connection" \
	obs_inject b "$E2E_A_LAN" wrong-key
e2e_wait_for "a counts both" 10 \
	eval '[ "$(sasync_stat a sync-rx-len-bad)" = 1 ] && [ "$(sasync_stat a sync-rx-auth-bad)" = 1 ]' ||
	e2e_fail "bad input counted on a"
e2e_wait_for "ha-sync-error events on a's monitor" 5 \
	eval 'sasync_monitor_has mon-a "node=.gw-a. .*error=.sync-rx-len-bad." && sasync_monitor_has mon-a "node=.gw-a. .*error=.sync-rx-auth-bad."' ||
	e2e_fail "ha-sync-error events on a"

# ------------------------------------------------------ still serving
e2e_check "charons still run" eval 'e2e_charon_pid a >/dev/null && e2e_charon_pid b >/dev/null'
e2e_check "ha-status still answers on both" \
	eval '[ "$(sasync_status a role)" = primary ] && [ "$(sasync_status b role)" = standby ]'
e2e_check "tunnel still pings through a" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5
e2e_check "the peer kept its $N IKE SAs" eval '[ "$(e2e_sa_count peer)" = $N ]'
# the sync link itself still works: a new CHILD SA reaches b
e2e_check "rekey of net2 on the peer" e2e_swanctl peer --rekey --child net2
e2e_wait_for "b has the rekeyed net2" 10 \
	eval '[ "$(obs_list_spis a --ike site2)" = "$(obs_list_spis b --ike site2)" ] && [ "$(obs_list_spis b --ike site2)" != "$(grep "^site2 " <<<"$list_b")" ]' ||
	e2e_fail "sync after the bad input"
e2e_wait_for "the old net2 is gone on b" 10 \
	eval '[ "$(sasync_stat b delete-sync)" = 1 ]' || e2e_fail "delete synced"
# b accepted two authentic frames from the injector: the malformed record
# and the one for an unknown IKE SA
e2e_wait_for "quiet: sync-tx on a + 2 = sync-rx on b" 10 obs_quiet 2 ||
	e2e_fail "sync quiet after the bad input"
e2e_check "no record failed to apply on b but the injected one" \
	obs_counter_is b apply-failed 1

# ------------------------------------------------------ reset, failover
e2e_check "sasyncctl reset on b" eval 'sasync_ctl b reset | grep -qx "counters reset"'
e2e_check "b's counters are zero (swanctl, sasyncctl)" obs_counters_are b 0 \
	vike-sync conn-sync sync-tx sync-rx sync-rx-len-bad sync-rx-auth-bad \
	sync-rx-replay apply-failed delete-sync promotions

e2e_charon_kill a KILL
e2e_vip_move a b
e2e_check "sasyncctl promote on b" \
	eval 'sasync_ctl b promote --reason "e2e failover" | grep -qx "promoted, $N IKE SAs activated"'
e2e_wait_for "monitor on b prints the ha-role event" 5 \
	sasync_monitor_has mon-b "ha-role: role='primary' reason='ha-promote command: e2e failover' node='gw-b'" ||
	e2e_fail "ha-role event on the monitor"
e2e_check "and the raw monitor" \
	sasync_monitor_has mon-b-raw "^ha-role event \{role=primary reason=ha-promote command: e2e failover node=gw-b\}$"
e2e_check "one log line for the role change" \
	eval '[ "$(e2e_count_in_log b "\[APP\] sasync: role standby -> primary \(ha-promote command: e2e failover\)")" = 1 ]'
e2e_check "ha-status: b is primary with $N active IKE SAs" \
	eval '[ "$(sasync_status b role)" = primary ] && [ "$(sasync_status b ike-sas-active)" = $N ]'
e2e_check "promotions = 1 after the reset" obs_counter_is b promotions 1
e2e_check "traffic flows through b" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10
e2e_wait_for "a's monitor ends (connection lost)" 10 \
	eval '! _e2e_alive "$mon_a_pid"' || e2e_fail "monitor on a still running"
wait "$mon_a_pid" 2>/dev/null
rc=$?
e2e_check "monitor exit code 3, got $rc" [ "$rc" = 3 ]
e2e_check "no ha-role event on the lost node's monitor" eval '! sasync_monitor_has mon-a "ha-role:"'

e2e_summary
