#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The sync key from swanctl's secrets (secret_id = sasync-cluster): both
# nodes start without it (the link stays down, sync-no-key counts, one log
# line), b first gets a weak one (refused, logged), then both get the key
# by swanctl --load-creds: the link comes up and the tunnel syncs. Rotation
# by --load-creds: a second key added on both, then the first removed; the
# connections up stay up. b restarts with only the first key: a refuses it
# (sync-rx-auth-bad), the link stays down; b gets the second key by
# --load-creds: the link comes up again and b holds a's SAs.
# conditions are evaluated when polled, so single quotes on purpose
# shellcheck disable=SC2016,SC2034
set -uo pipefail

# shellcheck source=tests/e2e/sasync.sh
. "$(dirname "$0")/sasync.sh"

KEY1=$SASYNC_SECRET
KEY2=$SASYNC_OTHER_SECRET
# 32 bytes, one value
WEAK=0x$(printf '00%.0s' $(seq 32))
# no secret_file: the key is looked up in charon's credentials
SASYNC_SECRET=
SASYNC_EXTRA_CONF="		secret_id = sasync-cluster"

# load_keys NODE [NAME=KEY...]: swanctl --load-creds of the cluster's
# swanctl.conf with these sync keys, "ike-NAME { id = sasync-cluster
# secret = KEY }" (the sync keys loaded before and not named are unloaded)
load_keys() {
	local node=$1 file=$E2E_DIR/$1/keys.conf arg
	shift
	{
		E2E_DPD_DELAY=0s e2e_render "$E2E_CONF_DIR/cluster.conf" || return 1
		echo "secrets {"
		for arg in "$@"; do
			printf '\tike-%s {\n\t\tid = sasync-cluster\n\t\tsecret = %s\n\t}\n' \
				"${arg%%=*}" "${arg#*=}"
		done
		echo "}"
	} >"$file"
	e2e_swanctl "$node" --load-creds --noprompt --file "$file" \
		>>"$E2E_DIR/$node/creds.out" 2>&1
}

# link_up NODE: NODE's connection to its partner is up
link_up() { [ "$(sasync_status "$1" out)" = up ]; }

e2e_init
sasync_cluster_start
e2e_wait_for "a counts sync-no-key" 10 \
	eval '[ "$(sasync_stat a sync-no-key)" -ge 1 ]' || e2e_fail "sync-no-key on a"
e2e_check "a logged the missing key" eval '[ "$(e2e_count_in_log a \
	"sasync: no valid sync key of .sasync-cluster. in charon.s credentials")" = 1 ]'
e2e_check "a's link is down" eval '! link_up a'

load_keys b sasync="$WEAK" || e2e_fail "load the weak key on b"
e2e_wait_for "b refuses the weak key" 10 eval '[ "$(e2e_count_in_log b \
	"sasync: 1 key of .sasync-cluster. in charon.s credentials refused")" -ge 1 ]' ||
	e2e_fail "weak key logged on b"

load_keys a sasync="$KEY1" || e2e_fail "load the key on a"
load_keys b sasync="$KEY1" || e2e_fail "load the key on b"
e2e_wait_for "link up a -> b" 10 link_up a || e2e_fail "link a -> b"
e2e_wait_for "link up b -> a" 10 link_up b || e2e_fail "link b -> a"
sasync_tunnel_up
sasync_wait_synced

# rotation: the second key added on both, then the first removed on both
load_keys a sasync="$KEY1" sasync-next="$KEY2" || e2e_fail "add key 2 on a"
load_keys b sasync="$KEY1" sasync-next="$KEY2" || e2e_fail "add key 2 on b"
load_keys a sasync-next="$KEY2" || e2e_fail "remove key 1 on a"
load_keys b sasync-next="$KEY2" || e2e_fail "remove key 1 on b"
e2e_check "the links up stay up" eval 'link_up a && link_up b'

# b restarts with only the removed key: a refuses it
auth_bad=$(sasync_stat a sync-rx-auth-bad)
e2e_charon_kill b
sasync_start b standby || e2e_fail "restart b"
load_keys b sasync="$KEY1" || e2e_fail "load key 1 on the new b"
e2e_wait_for "a refuses key 1" 10 \
	eval '[ "$(sasync_stat a sync-rx-auth-bad)" -gt "$auth_bad" ]' ||
	e2e_fail "a refused key 1"
e2e_check "b's link is down" eval '! link_up b'

load_keys b sasync-next="$KEY2" || e2e_fail "load key 2 on the new b"
e2e_wait_for "link up b -> a" 10 link_up b || e2e_fail "link b -> a after rotation"
e2e_wait_for "link up a -> b" 10 link_up a || e2e_fail "link a -> b after rotation"
sasync_wait_synced
e2e_check "charon still runs on a and b" \
	eval 'e2e_charon_pid a >/dev/null && e2e_charon_pid b >/dev/null'
e2e_summary
