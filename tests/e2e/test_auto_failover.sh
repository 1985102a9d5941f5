#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Automatic failover: kill -9 of the primary's charon and no manual step.
# b notices the missed heartbeats, promotes itself, takes the cluster
# addresses (built-in mode: charon's kernel interface and gratuitous ARP)
# and carries the traffic; the peer keeps its IKE SA. Then a's charon comes
# back: it rejoins as standby, gives up the addresses it still held, and b
# stays primary (no preempt).
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

e2e_init
sasync_election_on
sasync_cluster_synced
e2e_wait_for "a hears b as a living standby" 5 \
	eval 'sasync_ctl a status | grep -qE "^  node .*: role standby, priority 100, epoch 0, alive$"' ||
	e2e_fail "b's heartbeats on a"
e2e_check "b hears a as the living primary" \
	eval 'sasync_ctl b status | grep -qE "^  node .*: role primary, priority 100, epoch 0, alive$"'
ike_before=$(e2e_ike_spis peer)

e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer before failover"
e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan before failover"

t_kill=$(e2e_tod_ms)
e2e_charon_kill a KILL
e2e_wait_for "b promotes itself" 10 \
	eval '[ "$(sasync_status b role)" = primary ]' || e2e_fail "b promoted by the election"
sasync_pings_resume
t_promote=$(e2e_log_ms b "sasync: role standby -> primary \(election: primary lost\)")
echo "kill -9 of a's charon to b's promotion: $((t_promote - t_kill)) ms" \
	"(heartbeat timeout 1000 ms)"
e2e_check "b's election counted, and a's lost heartbeats" \
	eval '[ "$(sasync_stat b elections)" = 1 ] && [ "$(sasync_stat b heartbeat-lost)" = 1 ]'
e2e_check "b holds both cluster addresses" \
	eval 'ip -n "$(e2e_ns b)" -4 addr show dev ext0 | grep -q "$E2E_VIP_EXT/32" &&
		  ip -n "$(e2e_ns b)" -4 addr show dev lan0 | grep -q "$E2E_VIP_LAN/32"'
e2e_check "peer kept its IKE SA (same SPIs)" \
	eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ]'

# a's node is still up with the addresses (only charon died): when charon
# comes back as standby it gives them up and does not take over again
sasync_start a standby || e2e_fail "charon on a restarted as standby"
e2e_wait_for "a gives up the cluster addresses it still held" 10 \
	eval '! ip -n "$(e2e_ns a)" -4 addr show dev ext0 | grep -q "$E2E_VIP_EXT/32"' ||
	e2e_fail "addresses left on a"
e2e_check "a counted the repair" \
	eval '[ "$(sasync_stat a address-repairs)" -ge 1 ]'
e2e_wait_for "a gets b's SAs again" 15 sasync_synced b a ||
	e2e_fail "resync from b to a"
e2e_check "a stays standby and b primary (no preempt)" \
	eval '[ "$(sasync_status a role)" = standby ] && [ "$(sasync_status b role)" = primary ]'
e2e_check "tunnel carries traffic through b" \
	e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5

e2e_summary
