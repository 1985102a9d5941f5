#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Split brain: the sync link is cut (nftables drops its TCP port on a) while
# both nodes run, until each declares the other dead and b promotes itself:
# two primaries. When the link heals, a hears b, primary of a newer epoch,
# and demotes itself; b stays primary. No peer receives a DELETE of its IKE
# SA, a sends it nothing, a resyncs from b and the tunnel keeps working.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

# sb_cut on|off: drop or pass the sync link's TCP port on a
sb_cut() {
	if [ "$1" = on ]; then
		ip netns exec "$(e2e_ns a)" nft -f - <<EOF2
table inet sasync_cut {
	chain in { type filter hook input priority 0; tcp dport 4510 drop; tcp sport 4510 drop; }
	chain out { type filter hook output priority 0; tcp dport 4510 drop; tcp sport 4510 drop; }
}
EOF2
	else
		ip netns exec "$(e2e_ns a)" nft delete table inet sasync_cut
	fi
}

sasync_two_primaries_setup

e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer before the cut"
e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan before the cut"

e2e_check "sync link cut on a" sb_cut on
e2e_wait_for "b promotes itself: two primaries" 10 \
	eval '[ "$(sasync_status b role)" = primary ] && [ "$(sasync_status a role)" = primary ]' ||
	e2e_fail "both primary while the link is cut"
sasync_pings_resume
e2e_check "each declared the other dead" \
	eval '[ "$(sasync_stat a heartbeat-lost)" -ge 1 ] && [ "$(sasync_stat b heartbeat-lost)" -ge 1 ]'

e2e_capture_start ike peer ext0 udp port 4500 or udp port 500 ||
	e2e_fail "capture on peer"
e2e_ping_start l2p2 lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
t_heal=$(e2e_tod_ms)
e2e_check "sync link healed" sb_cut off
e2e_wait_for "a demotes itself, b stays primary" 40 \
	eval '[ "$(sasync_status a role)" = standby ] && [ "$(sasync_status b role)" = primary ]' ||
	e2e_fail "one primary after the link healed"
t_demote=$(e2e_log_ms a "sasync: role primary -> standby \(split brain: ")
echo "link healed to a's demotion: $((t_demote - t_heal)) ms"
e2e_check "a counted the split brain" eval '[ "$(sasync_stat a split-brain)" = 1 ]'
e2e_check "b did not demote" eval '[ "$(sasync_stat b demotions)" = 0 ]'
sasync_a_back_as_standby
sasync_a_was_silent "$deletes" "$mac_a" "$ike_before"

e2e_summary
