#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Bad settings (no secret, a passphrase instead of a key, a key file others
# can read, a key file and secret_id both set, a different key on each
# node, a partner that is not the node configured, an unreachable partner)
# leave charon running on both nodes with one clear log line, sync nothing,
# and the active node keeps serving its tunnel.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

# run_case NAME A_SECRET B_SECRET A_PEERS LOG_NODE LOG_PATTERN
run_case() {
	local name=$1
	e2e_topo_up || e2e_fail "$name: topology up"
	e2e_charon_start peer || e2e_fail "$name: charon on peer"
	e2e_swanctl_load peer peer.conf || e2e_fail "$name: load peer.conf"
	sasync_start a primary "$2" "$4" || e2e_fail "$name: charon on a"
	sasync_start b standby "$3" || e2e_fail "$name: charon on b"
	e2e_initiate peer || e2e_fail "$name: initiate from peer"
	e2e_wait_for "$name: SA up on a" 10 e2e_sa_up a || e2e_fail "$name: SA on a"
	e2e_check "$name: a serves the tunnel" \
		e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5
	log_node=$5 log_pattern=$6
	e2e_wait_for "$name: log line on $5" 10 \
		eval '[ "$(e2e_count_in_log "$log_node" "$log_pattern")" -ge 1 ]' ||
		e2e_fail "$name: log line '$6' on $5"
	e2e_check "$name: nothing synced to b" e2e_sa_none b
	e2e_check "$name: charon still runs on a and b" \
		eval 'e2e_charon_pid a >/dev/null && e2e_charon_pid b >/dev/null'
	e2e_check "$name: b's plugin socket answers" \
		eval '[ "$(sasync_status b role)" = standby ]'
	sasync_reset
}

e2e_init
run_case "no secret" "" "" "" a "sasync: no valid secret, SA sync disabled"
run_case "passphrase" "a-long-passphrase-but-not-a-random-key" "" "" a \
	"sasync: .*secret is not written as 0x<hex> or 0s<base64>"
# a key file readable by others is refused (every other test reads its key
# from a file of mode 0600, see sasync_conf)
keyfile=$E2E_DIR/world-readable.key
echo "$SASYNC_SECRET" > "$keyfile"
chmod 0644 "$keyfile"
SASYNC_NODE_CONF_a="		secret_file = $keyfile"
run_case "key file readable by others" "" "$SASYNC_SECRET" "" a \
	"sasync: secret_file .* is accessible by group or others"
unset SASYNC_NODE_CONF_a
# a key file and swanctl's secrets: one source only
SASYNC_NODE_CONF_a="		secret_id = sasync-cluster"
run_case "several key sources" "$SASYNC_SECRET" "$SASYNC_SECRET" "" a \
	"sasync: several key sources set, set only one of"
unset SASYNC_NODE_CONF_a
run_case "different secrets" "$SASYNC_SECRET" "$SASYNC_OTHER_SECRET" "" \
	b "sasync: sync peer .* failed authentication"
SASYNC_NODE_CONF_b="		node_id = x"
run_case "partner not the node configured" "$SASYNC_SECRET" "$SASYNC_SECRET" \
	"" a "sasync: sync peer .* is not the node it should be"
unset SASYNC_NODE_CONF_b
run_case "unreachable peer" "$SASYNC_SECRET" "$SASYNC_SECRET" "198.18.2.99" \
	a "sasync: sync peer 198.18.2.99.* unreachable"
e2e_summary
