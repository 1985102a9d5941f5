#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# IKEv2 failover after the SA lifecycle: real tunnels rekey before a node
# fails, so the standby must carry on with the current generation of SAs,
# not the first. One IKE SA from the peer with two CHILD SAs: "net"
# (198.18.1.0/24 - 198.18.2.0/24, pinged between 198.18.1.200 and
# 198.18.2.200, which only it covers) and "host" (the lower halves, pinged
# between the usual hosts; it is never rekeyed itself, only moved along
# with the IKE SA). After each step b must hold exactly a's SAs (IKE and
# CHILD SPIs, the CHILD SAs under the right IKE SA, identities not %any).
#   phase 1: IKE rekey by the peer, CHILD rekey of net by the peer, CHILD
#            rekey of net by a; failover; the checks of test_failover.sh
#            (lc_check_after_failover)
#   phase 2: the same steps, then an IKE rekey by a (the cluster); failover;
#            the same checks. Only this phase has an IKE SA whose keys b
#            derived from a rekey a started: if phase 1 passes and phase 2
#            fails after the failover, that is the step to blame.
# Run time about 80 s.
set -uo pipefail

# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "$0")/lifecycle.sh"

E2E_DPD_DELAY=2s                     # the peer's; the cluster leaves DPD to it
IKEV1_PEER_TPL=peer.conf             # ikev1_cluster_up with the IKEv2 templates
IKEV1_CLUSTER_TPL=lifecycle-cluster.conf
NET_HOST_LAN=198.18.2.200            # covered by net only (host: .0/25)
NET_HOST_PEER=198.18.1.200
STREAMS=("net $NET_HOST_LAN $NET_HOST_PEER" "host $E2E_LAN_HOST $E2E_PEER_HOST")

# up: cluster, peer, both CHILD SAs, the extra hosts, b synced, capture
up() {
	ikev1_cluster_up
	e2e_initiate peer host || e2e_fail "initiate CHILD SA host from the peer"
	lc_add_host peer "$NET_HOST_PEER" || e2e_fail "$NET_HOST_PEER on the peer"
	lc_add_host lan "$NET_HOST_LAN" || e2e_fail "$NET_HOST_LAN on the LAN host"
	e2e_check "the tunnel is IKEv2" [ "$(e2e_ike_field peer version)" = 2 ]
	e2e_wait_for "peer's two CHILD SAs on a" 10 lc_side_on_active peer ||
		e2e_fail "two CHILD SAs up on peer and a"
	lc_wait_synced "tunnel up (IKE_AUTH, CREATE_CHILD_SA for host)" ||
		e2e_fail "b has the first generation"
	e2e_capture_start esp peer ext0 udp port 4500 || e2e_fail "capture on peer"
}

# lifecycle [a]: the steps of phase 1, with "a" also the IKE rekey by a
lifecycle() {
	up
	lc_rekey_ike peer
	lc_rekey_child peer net
	lc_rekey_child a net
	[ "${1:-}" = a ] && lc_rekey_ike a
	echo "b before the failover:"
	lc_show b PASSIVE
	lc_check_after_failover "${STREAMS[@]}"
	echo "records b could not apply (apply-failed): $(lc_apply_failed)"
	echo "phase done after $(e2e_elapsed)s"
}

e2e_init
if lc_phase 1; then
	echo "== phase 1: IKE rekey by the peer, CHILD rekeys by the peer and by a"
	lifecycle
	lc_reset
fi
if lc_phase 2; then
	echo "== phase 2: the same, then an IKE rekey by a"
	lifecycle a
fi

echo "runtime $(e2e_elapsed)s"
ikev1_finish
