#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Freeze: SIGSTOP the primary's charon until the standby has taken over by
# election, then SIGCONT it. The old primary hears a primary of a newer
# epoch and demotes itself: it sends nothing to the peer (no DELETE, no IKE
# message at all, checked in a capture on the peer side by its MAC), gives
# up the cluster addresses and resyncs from the new primary. The tunnel
# keeps working and the peer keeps its IKE SA.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

sasync_two_primaries_setup

e2e_capture_start ike peer ext0 udp port 4500 or udp port 500 ||
	e2e_fail "capture on peer"
e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer before the freeze"
e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan before the freeze"

pid_a=$(e2e_charon_pid a) || e2e_fail "a's charon pid"
kill -STOP "$pid_a"
e2e_wait_for "b promotes itself while a is frozen" 10 \
	eval '[ "$(sasync_status b role)" = primary ]' || e2e_fail "b promoted by the election"
sasync_pings_resume
e2e_ping_start l2p2 lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"

kill -CONT "$pid_a"
e2e_wait_for "a demotes itself" 10 \
	eval '[ "$(sasync_status a role)" = standby ]' || e2e_fail "a demoted after SIGCONT"
e2e_check "a logged the split brain and counted it" \
	eval '[ "$(e2e_count_in_log a "sasync: role primary -> standby \(split brain: .* is primary with epoch 1, ours 0\)")" = 1 ] &&
		  [ "$(sasync_stat a split-brain)" = 1 ]'
e2e_check "a's SAs are passive again" \
	eval '[ "$(e2e_sa_field a state)" = PASSIVE ]'
sasync_a_back_as_standby
sasync_a_was_silent "$deletes" "$mac_a" "$ike_before"
from_b=$(sasync_ike_from "$(_e2e_pcap ike)" "$(sasync_mac b)")
e2e_check "the capture saw b's IKE messages (RFC 6311, rekey): $from_b" \
	[ "$from_b" -ge 1 ]
e2e_check "one primary left: b" \
	eval '[ "$(sasync_status b role)" = primary ] && [ "$(sasync_status a role)" = standby ]'

e2e_summary
