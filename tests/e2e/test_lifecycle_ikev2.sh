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
#   phase 3: reauthentication by the peer (a new IKE SA by IKE_SA_INIT,
#            the CHILD SAs created again), a CHILD rekey of net by a, then a
#            reauthentication by a; failover; the same checks (but no RFC
#            6311 message ID sync: a stock peer announces support only as
#            IKE_AUTH initiator, and a reauthentication by a makes it the
#            responder).
# IKE rekeys are `swanctl --rekey --ike-id N` (CREATE_CHILD_SA); swanctl's
# --reauth is a flag, so "--reauth no" would reauthenticate. After each IKE
# rekey b must have held no IKE SA for the tunnel for at most LC_MAX_GAP_MS.
# LC_PHASES="1 3" runs only those phases. Run time: 210 s on 2 CPUs at load
# 5 (other tests running), about 35 s of it per phase the harness itself.
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

# lifecycle PHASE: the steps of the phase (see the top), failover, checks
lifecycle() {
	up
	if [ "$1" = 3 ]; then
		lc_reauth peer
		lc_rekey_child a net
		lc_reauth a
	else
		lc_rekey_ike peer
		lc_rekey_child peer net
		lc_rekey_child a net
		[ "$1" = 2 ] && lc_rekey_ike a
	fi
	echo "b before the failover:"
	lc_show b PASSIVE
	lc_check_after_failover "${STREAMS[@]}"
	echo "records b could not apply (apply-failed): $(lc_apply_failed)"
	echo "phase done after $(e2e_elapsed)s"
}

e2e_init
first=1
for phase in 1 2 3; do
	lc_phase "$phase" || continue
	[ "$first" = 1 ] || lc_reset
	first=0
	case $phase in
	1) echo "== phase 1: IKE rekey by the peer, CHILD rekeys by the peer and by a" ;;
	2) echo "== phase 2: the same, then an IKE rekey by a" ;;
	3) echo "== phase 3: reauthentication by the peer and by a, CHILD rekey by a" ;;
	esac
	lifecycle "$phase"
done

echo "runtime $(e2e_elapsed)s"
ikev1_finish
