#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# IKEv1 failover after the SA lifecycle: the peer's Main Mode PSK tunnel
# (conf/ikev1-*.conf) goes through Quick Mode rekeys and reauthentications
# before a fails; b must carry on with the current ISAKMP SA and IPsec SAs.
# IKEv1 has no IKE rekey: `swanctl --rekey --ike-id N --reauth yes` starts a
# new Main Mode, and the IPsec SAs move to the new ISAKMP SA (on the other
# end too: "detected reauth of existing IKE_SA, adopting 1 children"); the
# old ISAKMP SA lingers, REKEYING on the initiator, established without
# IPsec SAs on the responder. After each step b must hold exactly a's live
# SAs: the same ISAKMP SAs (cookies, identities), each IPsec SA under the
# ISAKMP SA a holds it under.
#   phase 1: Quick Mode rekeys by the peer and by a; failover; the checks
#            of test_ikev1_failover.sh (phase 1: DPD from the peer), then
#            Quick Mode rekeys and reauthentications by the peer and by b
#   phase 2: reauthentication by the peer, then by a (both after a Quick
#            Mode rekey by the peer); failover; the same checks
# LC_PHASES="1" (or "2") runs one phase. Run time: 175 s on 2 CPUs at load 5,
# 25 s of it the 5 s sync timeouts of the steps failing today.
set -uo pipefail

# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "$0")/lifecycle.sh"

# libipsec logs each ESP header it parses: evidence of inbound ESP on the
# restored SA even when b rekeys it away before a poll sees its counters
E2E_LOG_EXTRA="			esp = 2"
E2E_DPD_DELAY=2s                 # the peer's (IKEV1_CLUSTER_DPD_DELAY 0s)

# up: cluster, peer's tunnel, b synced, capture
up() {
	ikev1_cluster_up
	e2e_check "the tunnel is IKEv1 (Main Mode)" \
		[ "$(ikev1_version peer)" = 1 ]
	lc_wait_synced "tunnel up (Main Mode, Quick Mode)" ||
		e2e_fail "b has the first generation"
	echo "NAT conditions of the ISAKMP SA: a: $(ikev1_nat_flags a); b: $(ikev1_nat_flags b)"
	e2e_capture_start esp peer ext0 udp port 4500 || e2e_fail "capture on peer"
}

# after: what b held, the failover and its checks
after() {
	echo "b before the failover:"
	lc_show b PASSIVE
	lc_check_after_failover_v1 "$E2E_CHILD" "$E2E_LAN_HOST" "$E2E_PEER_HOST"
	echo "records b could not apply (apply-failed): $(lc_apply_failed)"
	echo "phase done after $(e2e_elapsed)s"
}

e2e_init
if lc_phase 1; then
	echo "== phase 1: Quick Mode rekeys by the peer and by a"
	up
	lc_rekey_child peer
	lc_rekey_child a
	after
	lc_reset
fi
if lc_phase 2; then
	echo "== phase 2: reauthentication by the peer, then by a"
	up
	lc_rekey_child peer
	lc_reauth peer
	lc_reauth a
	after
fi

echo "runtime $(e2e_elapsed)s"
ikev1_finish
