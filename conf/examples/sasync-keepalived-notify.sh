#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# keepalived glue for strongswan-sasync (see keepalived.conf next to it).
#
# As keepalived's "notify" script (keepalived appends TYPE NAME STATE PRIO):
#   MASTER                    -> sasyncctl promote
#   BACKUP, FAULT, STOP, DELETED -> sasyncctl demote
# each with --reason "keepalived TYPE NAME STATE". A node already in the
# wanted role is success (keepalived announces states the node may already
# be in, e.g. BACKUP at start).
#
# As keepalived's track script, "check": succeeds while charon and the
# plugin answer on the plugin's socket ("sasyncctl status"), so a crashed
# or hung charon puts the VRRP instance into FAULT and the other node takes
# the addresses.
#
# Usage: sasync-keepalived-notify.sh [--ctl PATH] [--uri URI] check
#        sasync-keepalived-notify.sh [--ctl PATH] [--uri URI] TYPE NAME STATE [PRIO]
#   --ctl PATH  sasyncctl to run (default: $SASYNC_CTL, else sasyncctl on PATH)
#   --uri URI   the plugin's vici socket (default: sasyncctl's own default,
#               unix:///var/run/charon-sasync.vici)
# Logs through logger (tag sasync-keepalived) and to stderr. Exits non-zero
# with a message when the plugin cannot be reached or refuses the change.

ctl_bin=${SASYNC_CTL:-sasyncctl}
uri=
tag=sasync-keepalived

log() {
	logger -t "$tag" -- "$*" 2>/dev/null
	echo "$tag: $*" >&2
}

die() {
	log "ERROR: $*"
	exit 1
}

usage() {
	echo "usage: $0 [--ctl PATH] [--uri URI] check | TYPE NAME STATE [PRIO]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--ctl) [ $# -ge 2 ] || usage; ctl_bin=$2; shift 2 ;;
	--uri) [ $# -ge 2 ] || usage; uri=$2; shift 2 ;;
	--) shift; break ;;
	-*) usage ;;
	*) break ;;
	esac
done

# sasyncctl with the socket option, if any
ctl() {
	if [ -n "$uri" ]; then
		"$ctl_bin" --uri "$uri" "$@"
	else
		"$ctl_bin" "$@"
	fi
}

# the plugin's current role (primary or standby), empty if it does not answer
role() {
	ctl --raw status 2>/dev/null | grep -oE '(^|[ {])role=[a-z]+' | head -n 1 |
		sed 's/.*=//'
}

# set_role promote|demote WANTED REASON
set_role() {
	cmd=$1 want=$2 reason=$3
	out=$(ctl "$cmd" --reason "$reason" 2>&1) &&
		{ log "$reason: $cmd: ${out:-done}"; return 0; }
	rc=$?
	# refused because the node already is in that role: nothing to do
	if [ "$rc" = 1 ] && [ "$(role)" = "$want" ]; then
		log "$reason: already $want"
		return 0
	fi
	die "$reason: sasyncctl $cmd failed (exit $rc): $out"
}

[ $# -ge 1 ] || usage
if [ "$1" = check ]; then
	[ $# = 1 ] || usage
	out=$(ctl status 2>&1 >/dev/null) || die "check: the plugin does not answer: $out"
	exit 0
fi

[ $# -ge 3 ] || usage
type=$1 name=$2 state=$3
reason="keepalived $type $name $state"
case $state in
MASTER)
	set_role promote primary "$reason" ;;
BACKUP | FAULT | STOP | DELETED)
	set_role demote standby "$reason" ;;
*)
	die "$reason: unknown state '$state'" ;;
esac
