#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# IKEv1 dialup with XAuth and Mode Config: two road warriors do Main Mode
# with a group PSK, XAuth (xauth-generic) with their own passwords, and get
# virtual IPs from the pool by Mode Config. The standby has their SAs,
# addresses, XAuth identities and leases; after a failover both keep IKE
# SA, address and traffic, a Quick Mode rekey one of them starts keeps its
# address, and a third road warrior connecting after the failover gets a
# free address. Scenario: tests/e2e/dialup.sh.
set -uo pipefail

DIALUP_CLUSTER_TPL=dialup-v1-cluster.conf
DIALUP_CLIENT_TPL=dialup-v1-client.conf
DIALUP_ID_KEY=remote-xauth-id
DIALUP_ID_PREFIX=xauth-rw

# shellcheck source=tests/e2e/dialup.sh
. "$(dirname "$0")/dialup.sh"

dialup_run
