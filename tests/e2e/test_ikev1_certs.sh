#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Certificates: a CA and RSA certificates for the peer (peer.test) and the
# cluster (cluster.test, the same certificate and key on a and b) are made
# with `pki` at test time and loaded by swanctl from x509ca/, x509/ and
# private/ next to each node's rendered swanctl.conf. A Main Mode tunnel with
# public key authentication (IKEv1 derives SKEYID differently for signatures
# than for PSK) survives the failover: pings both ways, same ISAKMP SA, one
# Main Mode, Quick Mode rekey by b. Then the same with IKEv2 (bonus).
# Checks after the failover do not stop the test; the exit status is 1 if
# any failed.
# checks run through eval in single quotes, which also reads the variables
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/ikev1.sh
. "$(dirname "$0")/ikev1.sh"

IKEV1_CERTS=1
IKEV1_PEER_TPL=certs-peer.conf
IKEV1_CLUSTER_TPL=certs-cluster.conf
E2E_PEER_ID=peer.test
E2E_CLUSTER_ID=cluster.test
E2E_DPD_DELAY=0s
IKEV1_CLUSTER_DPD_DELAY=0s

# run_version VERSION: tunnel with certificates, failover, checks
run_version() {
	local v=$1 ike_before child_before init_re
	E2E_IKE_VERSION=$v
	if [ "$v" = 1 ]; then init_re="initiating Main Mode"; else init_re="initiating IKE_SA"; fi
	ikev1_cluster_up
	e2e_check "IKEv$v tunnel authenticated with certificates on both sides" \
		eval '[ "$(ikev1_version peer)" = $v ] &&
			  [ "$(e2e_count_in_log peer "authentication of .cluster\.test. with .* successful")" -ge 1 ] &&
			  [ "$(e2e_count_in_log a "authentication of .peer\.test. with .* successful")" -ge 1 ] &&
			  [ "$(e2e_count_in_log peer "received end entity cert \"C=XX, O=sasync e2e, CN=cluster.test\"")" -ge 1 ]' ||
		ikev1_fail "certificate authentication" peer:"authentication of|cert" a:"authentication of|cert"
	e2e_wait_for "b has the same IKE and CHILD SPIs" 10 sasync_synced a b ||
		ikev1_fail "IKEv$v SAs synced to b" b:"sasync" a:"sasync"
	e2e_check "b shows the IKE SA as PASSIVE" eval '[ "$(e2e_ike_field b state)" = PASSIVE ]'
	ikev1_check "b's IKE SA has the same NAT conditions as a's (UDP encapsulation)" \
		eval '[ "$(ikev1_nat_flags b)" = "$(ikev1_nat_flags a)" ]'
	ike_before=$(e2e_ike_spis peer)
	child_before=$(e2e_child_spis peer)
	echo "IKEv$v: peer IKE SPIs $ike_before, CHILD SPIs (in out) $child_before"

	e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
	e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
	e2e_wait_ping_replies l2p 20 10 || e2e_fail "pings lan -> peer before failover"
	e2e_wait_ping_replies p2l 20 10 || e2e_fail "pings peer -> lan before failover"
	e2e_wait_for "a's sync frames all accepted by b" 10 sasync_sync_idle ||
		e2e_fail "sync link idle before the failover"
	sasync_failover
	e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
	ikev1_check "IKEv$v: pings peer -> lan resume after the failover" \
		e2e_wait_ping_replies p2l 20 10
	ikev1_check "IKEv$v: pings lan -> peer resume after the failover" \
		e2e_wait_ping_replies l2p 20 10
	e2e_ping_stop l2p
	e2e_ping_stop p2l
	e2e_ping_report l2p p2l
	ikev1_check "IKEv$v: peer has a new CHILD SA from b's forced rekey" \
		e2e_wait_for "new CHILD SA on the peer" 10 ikev1_has_new_child peer "$child_before" ||
		{ ikev1_log_excerpt b "sasync|QUICK_MODE|CREATE_CHILD_SA|CHILD_SA|ESP\]"
		  ikev1_log_excerpt peer "QUICK_MODE|CREATE_CHILD_SA|CHILD_SA|decrypt|HASH"; }
	ikev1_check "IKEv$v: peer kept its IKE SA (same SPIs), authenticated only once" \
		eval '[ "$(e2e_ike_spis peer)" = "$ike_before" ] && [ "$(e2e_ike_field peer state)" = ESTABLISHED ] &&
			  [ "$(e2e_count_in_log peer "$init_re")" -eq 1 ]' ||
		ikev1_log_excerpt peer "IKE_SA|$init_re|DELETE"
	ikev1_check "IKEv$v: tunnel still carries traffic both ways" \
		eval 'e2e_wait_ping lan "$E2E_LAN_HOST" "$E2E_PEER_HOST" 5 && e2e_wait_ping peer "$E2E_PEER_HOST" "$E2E_LAN_HOST" 5'
}

e2e_init
echo "== IKEv1 Main Mode with certificates"
run_version 1
echo "== IKEv2 with certificates"
sasync_reset
run_version 2
echo "runtime $(e2e_elapsed)s"
ikev1_finish
