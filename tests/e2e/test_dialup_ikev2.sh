#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# IKEv2 EAP road warriors with a pool: two road warriors authenticate with
# EAP-MD5 (EAP identity asked for by the cluster) and get virtual IPs from
# the pool. The standby has their SAs, addresses, EAP identities and leases;
# after a failover both keep IKE SA, address and traffic, a CHILD rekey one
# of them starts keeps its address, and a third road warrior connecting
# after the failover gets a free address. Scenario: tests/e2e/dialup.sh.
set -uo pipefail

DIALUP_CLUSTER_TPL=dialup-cluster.conf
DIALUP_CLIENT_TPL=dialup-client.conf
DIALUP_ID_KEY=remote-eap-id
DIALUP_ID_PREFIX=eap-rw

# shellcheck source=tests/e2e/dialup.sh
. "$(dirname "$0")/dialup.sh"

dialup_run
