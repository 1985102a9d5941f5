#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# mid_sync = coalesced: the peer (which supports RFC 6311) runs DPD every
# second; the active node sends its message IDs to the standby once, not
# after every DPD exchange (counted as mid-sync-coalesced). After kill -9
# of a, b promotes, resyncs the (stale) message IDs with the peer by RFC
# 6311, answers the peer's DPDs, and the peer keeps its IKE SA.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

SASYNC_EXTRA_CONF="		mid_sync = coalesced"
E2E_DPD_DELAY=1s
e2e_init
sasync_cluster_synced
ike_before=$(e2e_ike_spis peer)
dpd0=$(e2e_count_in_log peer "sending DPD request")
e2e_wait_for "the peer ran 5 DPD exchanges" 30 \
	eval '[ "$(e2e_count_in_log peer "sending DPD request")" -ge $((dpd0 + 5)) ]' ||
	e2e_fail "DPD from the peer"
dpds=$(($(e2e_count_in_log peer "sending DPD request") - dpd0))
sent=$(sasync_stat a mid-sync)
held=$(sasync_stat a mid-sync-coalesced)
echo "DPD exchanges: $dpds; message ID records sent: $sent, not sent: $held ($(awk -v s="$sent" -v d="$dpds" 'BEGIN { printf "%.2f", s / d }') records per DPD exchange)"
# a DPD of the peer moves the responder's message ID only
e2e_check "a sent at most one message ID record per direction" \
	[ "$sent" -le 2 ]
e2e_check "and held back the update of every later DPD exchange" \
	[ "$held" -ge $((dpds - 1)) ]

sasync_failover
e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
e2e_wait_for "b resynced the stale message IDs with the peer (RFC 6311)" 10 \
	eval '[ "$(sasync_stat b mid-sync-rfc6311)" -ge 1 ]' ||
	e2e_fail "RFC 6311 message ID sync"
info_rx=$(e2e_count_in_log peer "parsed INFORMATIONAL response")
dpd1=$(e2e_count_in_log peer "sending DPD request")
e2e_wait_for "b answered 3 DPD requests of the peer" 20 \
	eval '[ "$(e2e_count_in_log peer "sending DPD request")" -ge $((dpd1 + 3)) ] && [ "$(e2e_count_in_log peer "parsed INFORMATIONAL response")" -ge $((info_rx + 3)) ]' ||
	e2e_fail "DPD answered by b"
e2e_check "the peer retransmitted nothing" \
	eval '[ "$(e2e_count_in_log peer "retransmit")" = 0 ]'
e2e_check "the peer kept its IKE SA" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ]'
e2e_check "tunnel works through b" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 10

e2e_summary
