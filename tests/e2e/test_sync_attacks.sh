#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Attacks on the sync link (issue 11), each a proof of concept of the
# review that must now do no harm, with a tunnel synced from a to b:
# 1. a capture of the link during a full resync shows the HELLOs, but no
#    IKE or ESP SPI of the tunnel;
# 2. a flood from the LAN host (no partner): 64 slow connections to each
#    node's sync port, refilled as soon as a node closes one. Refused before
#    any handshake and counted; meanwhile b restarts and gets its resync, and
#    a CHILD rekey reaches b;
# 3. a reflection: b's charon gone, a relay in b's place splices a's
#    connection back onto a's own listener. a refuses it (its own instance
#    id), counts and logs it, shows the link down and receives nothing;
#    once b is back it gets everything a held meanwhile.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

ATTACK=$E2E_LIB_DIR/sync_attack.py

# at_b_restart: b killed and started again as standby, then synced
at_b_restart() {
	e2e_charon_kill b KILL
	sasync_start b standby || e2e_fail "charon with sasync on b again"
	sasync_wait_synced
}

# at_rekey_reaches_b: a CHILD rekey by the peer, and b holds the new SA
at_rekey_reaches_b() {
	local old
	old=$(e2e_child_spis a)
	e2e_check "CHILD rekey by the peer" e2e_swanctl peer --rekey --child net
	e2e_wait_for "a has the new CHILD SA" 10 \
		eval '[ -n "$(e2e_child_spis a)" ] && [ "$(e2e_child_spis a)" != "$old" ]' ||
		e2e_fail "rekey on a"
	sasync_wait_synced
}

e2e_init
sasync_cluster_synced

# ------------------------------------------------------------ 1. capture
# immediate mode: the capture stops right after the last record
e2e_capture_start sync a lan0 --immediate-mode tcp port 4510 ||
	e2e_fail "capture on a"
at_b_restart
e2e_wait_for "a's queue to b is empty" 10 \
	eval '[ "$(sasync_stat a queue-depth)" = 0 ]' || e2e_fail "queue empty"
e2e_capture_stop sync
spis="$(e2e_ike_spis a) $(e2e_child_spis a)"
found=$(python3 "$ATTACK" find "$E2E_DIR/cap-sync.pcap" "${spis// /,}")
echo "SPIs of the tunnel: $spis; found in the capture: ${found//$'\n'/ }"
e2e_check "the capture holds the sync link (HELLO magic)" \
	eval 'grep -qx magic <<<"$found"'
e2e_check "no IKE or ESP SPI in clear on the sync link" \
	eval '[ "$(grep -cvx magic <<<"$found")" = 0 ]'

# ------------------------------------------------------------ 2. flood
rej_a=$(sasync_stat a sync-rejected)
rej_b=$(sasync_stat b sync-rejected)
(e2e_exec lan python3 "$ATTACK" flood "$E2E_A_LAN,$E2E_B_LAN" 64 20 \
	>"$E2E_DIR/flood.out" 2>&1) &
flood_pid=$!
e2e_wait_for "the flood is refused by both" 10 \
	eval '[ "$(sasync_stat a sync-rejected)" -ge $((rej_a + 64)) ] && [ "$(sasync_stat b sync-rejected)" -ge $((rej_b + 64)) ]' ||
	e2e_fail "flood refused"
at_b_restart
at_rekey_reaches_b
e2e_check "the flood still runs" kill -0 "$flood_pid"
e2e_check "the partners' links are up both ways on a" \
	eval '[ "$(sasync_status a out)" = up ] && [ "$(sasync_status a in)" = up ]'
wait "$flood_pid"
echo "flood: $(cat "$E2E_DIR/flood.out"); refused: a $(($(sasync_stat a sync-rejected) - rej_a)), b $(sasync_stat b sync-rejected) since its restart"
# (the tests log at level 2, where each refusal has a line of its own)
e2e_check "at most one log line (level 1) per 10 s for the refusals on a" \
	eval '[ "$(e2e_count_in_log a "sasync: refused sync connection from .* refused without a log line before")" -le 4 ]'

# ------------------------------------------------------------ 3. reflection
e2e_charon_kill b KILL
rej_a=$(sasync_stat a sync-rejected)
# ip netns exec execs python, so the tracked pid is the relay's own
_e2e_bg relay ip netns exec "$(e2e_ns b)" python3 "$ATTACK" relay \
	"$E2E_B_LAN" "$E2E_A_LAN"
e2e_wait_for "a refuses its own connection, reflected" 10 \
	eval '[ "$(e2e_count_in_log a "sasync: refused sync connection from $E2E_B_LAN: it is this node itself")" -ge 1 ]' ||
	e2e_fail "reflection refused"
rx_a=$(sasync_stat a sync-rx)
at_rekey_child() {
	e2e_swanctl peer --rekey --child net
}
e2e_check "a CHILD rekey while the relay runs" at_rekey_child
e2e_wait_for "a retried through the relay and refused again" 10 \
	eval '[ "$(sasync_stat a sync-rejected)" -ge $((rej_a + 2)) ]' ||
	e2e_fail "reflection counted"
e2e_check "a shows the link to b down both ways" \
	eval '[ "$(sasync_status a out)" = down ] && [ "$(sasync_status a in)" = down ]'
e2e_check "a received nothing of its own" \
	eval '[ "$(sasync_stat a sync-rx)" = "$rx_a" ]'
_e2e_untrack relay TERM 5
sasync_start b standby || e2e_fail "charon with sasync on b after the relay"
sasync_wait_synced
e2e_check "tunnel works through a" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5

e2e_summary
