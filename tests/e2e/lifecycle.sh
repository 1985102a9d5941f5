# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# Settings below are read by the test scripts that source this file, and
# checks run through eval in single quotes:
# shellcheck disable=SC2034,SC2016
#
# SA lifecycle before a failover (test_lifecycle_*.sh), on top of ikev1.sh,
# sasync.sh and lib.sh: rekeys and reauthentications started by either side,
# after each of which b must hold exactly the SAs a holds (the current
# generation), then the failover and the checks after it.
#
# A node's SAs are compared as a summary written from the cluster's point of
# view (lc_summary): one line per live IKE SA
#   ike NAME ISPI RSPI [LOCAL_ID REMOTE_ID]
# and one per INSTALLED CHILD SA, under the IKE SA that holds it
#   child ISPI RSPI NAME SPI_IN SPI_OUT
# A peer's or road warrior's summary is mirrored (in/out SPIs and local/remote
# identities swapped), so it reads like the cluster's lines of its SAs.
#
# Live IKE SAs are ESTABLISHED ones, on the active node also REKEYING ones
# (IKEv2 lists an IKE SA being rekeyed so for a moment); on a standby they
# are PASSIVE. Only IKE SAs that hold an INSTALLED CHILD SA count: IKEv1
# keeps the ISAKMP SA a reauthentication replaced (its Quick Mode SAs moved
# to the new one) for some seconds, without IPsec SAs, and b need not.

# shellcheck source=tests/e2e/ikev1.sh
. "$(dirname "${BASH_SOURCE[0]}")/ikev1.sh"

# 1: the summaries include the IKE identities (b must have a's local-id and
# remote-id, never %any)
: "${LC_IDS:=1}"
# the bound on lost pings per 10 pps stream across the failover (today 1 to
# 4 are lost), on top of the pings due while the harness itself kills a,
# moves the VIPs and promotes b (LC_FAILOVER_MS: 0.1 to 0.2 s on an idle
# machine, over 1 s on a busy one; the plugin can do nothing before that)
: "${LC_MAX_LOST:=10}"
# the bound on the time b takes to restore an IKE SA a rekey or
# reauthentication created, from a's log to b's (the sync itself takes
# milliseconds; a failover in that window loses the tunnel)
: "${LC_MAX_LAG_MS:=1000}"
LC_FAILOVER_MS=0
# how long b may take to hold a's SAs after a step (the sync takes ms)
: "${LC_SYNC_TIMEOUT:=5}"
# a rekeyed CHILD SA lingers (DELETED) for delete_rekeyed_delay (5 s), and
# IKEv2 puts IKE rekeys and reauthentications off while it does: 1 s keeps
# the tests short and changes nothing the cluster syncs
E2E_CHARON_CONF="$E2E_CHARON_CONF
	delete_rekeyed_delay = 1"
# the node that holds the VIP and answers the peers (b after the failover)
LC_ACTIVE=a
LC_LIVE="ESTABLISHED|REKEYING"

# awk functions: kv(s, k), the value of k=... in s (a part of a raw list-sas
# line), and split_sa()
_LC_AWK_KV='
	function kv(s, k,   r) {
		if (!match(s, "(^|[ {])" k "=[^ }]*"))
			return ""
		r = substr(s, RSTART, RLENGTH)
		sub(/^[ {]/, "", r)
		sub(/^[^=]*=/, "", r)
		return r
	}
	# a "list-sa event {NAME {...} child-sas {...}}" line of swanctl --raw
	# into line (without the prefix), name (the IKE SA) and ike (its own
	# keys, without its CHILD SAs), as globals
	function split_sa() {
		line = $0
		sub(/^list-sa event \{/, "", line)
		name = line
		sub(/ .*/, "", name)
		ike = line
		sub(/ child-sas .*/, "", ike)
	}'

# ------------------------------------------------------------------ summary

# (awk and head must read to the end in pipelines here: with pipefail, an
# early exit makes the writer die of SIGPIPE and the pipeline fail)

# lc_raw NODE: e2e_sas_raw, tried again (3 times in all) if swanctl fails: a
# busy charon (many rekeys at once) now and then drops a vici request, and a
# one-shot reading (the SPIs before a step) must not come back empty
lc_raw() {
	local try out
	for try in 1 2 3; do
		if out=$(e2e_swanctl "$1" --list-sas --raw 2>>"$E2E_DIR/$1/list-sas.err"); then
			echo "$out"
			return 0
		fi
		[ "$try" = 3 ] || sleep 0.2
	done
	return 1
}

# lc_summary NODE [STATES] [mirror]: the live SAs of NODE, sorted (see the
# top). STATES is an ERE of IKE SA states (default ESTABLISHED); "mirror"
# for the peer side.
lc_summary() {
	lc_raw "$1" | _lc_summary "${2:-ESTABLISHED}" "${3:-}"
}

# _lc_summary STATES MIRROR: lc_summary of raw list-sas lines on stdin
_lc_summary() {
	awk -v want="^($1)\$" -v mirror="$2" -v ids="$LC_IDS" "$_LC_AWK_KV"'
		/^list-sa event \{/ {
			split_sa()
			if (kv(ike, "state") !~ want)
				next
			spis = kv(ike, "initiator-spi") " " kv(ike, "responder-spi")
			l = kv(ike, "local-id")
			r = kv(ike, "remote-id")
			out = "ike " name " " spis
			if (ids == 1)
				out = out " " (mirror ? r " " l : l " " r)
			kids = line
			if (!sub(/.* child-sas /, "", kids))
				kids = ""
			n = 0
			while (match(kids, /\{name=[^}]*\}/)) {
				c = substr(kids, RSTART, RLENGTH)
				kids = substr(kids, RSTART + RLENGTH)
				if (kv(c, "state") != "INSTALLED")
					continue
				i = kv(c, "spi-in")
				o = kv(c, "spi-out")
				print "child " spis " " kv(c, "name") " " (mirror ? o " " i : i " " o)
				n++
			}
			if (n)
				print out
		}' | sort
}

# lc_live NODE: lc_summary of a cluster node's live SAs (PASSIVE on a standby)
lc_live() {
	if [ "$1" = "$LC_ACTIVE" ]; then lc_summary "$1" "$LC_LIVE"; else lc_summary "$1" PASSIVE; fi
}

# lc_show NODE [STATES] [mirror]: the summary, indented (for the report)
lc_show() { lc_summary "$@" | sed "s/^/    $1: /"; }

# lc_synced [FROM TO]: TO (b) holds exactly the live SAs FROM (a) holds
# (IKE SPIs, CHILD SPIs under the same IKE SA, identities), and there are
# some
lc_synced() {
	local sa from=${1:-a} to=${2:-b}
	sa=$(lc_live "$from") || return 1
	[ -n "$sa" ] && [ "$(lc_live "$to")" = "$sa" ] && lc_ids_known "$to" PASSIVE
}

# lc_ids_known NODE [STATES]: no live IKE SA of NODE has an empty or %any
# identity (only checked with LC_IDS=1)
lc_ids_known() {
	[ "$LC_IDS" = 1 ] || return 0
	! lc_summary "$1" "${2:-ESTABLISHED}" |
		awk '$1 == "ike" && (NF < 6 || $5 == "%any" || $6 == "%any") { bad = 1 } END { exit !bad }'
}

# lc_side_on_active NODE: every established SA of NODE (peer or road
# warrior) is on the active node with the same SPIs and identities, and
# NODE has some
lc_side_on_active() {
	local p
	p=$(lc_summary "$1" ESTABLISHED mirror) || return 1
	[ -n "$p" ] && [ -z "$(comm -23 <(echo "$p") <(lc_summary "$LC_ACTIVE" "$LC_LIVE"))" ]
}

# lc_wait_synced STEP: wait until b holds a's live SAs after STEP. A
# failure is counted (the test goes on, so the failover shows what it
# breaks) and printed with both summaries and b's sync log lines.
lc_wait_synced() {
	local n_ike n_child
	if e2e_wait_for "b holds a's SAs after: $1" "$LC_SYNC_TIMEOUT" lc_synced; then
		n_ike=$(lc_live a | grep -c '^ike')
		n_child=$(lc_live a | grep -c '^child')
		e2e_pass "after $1: b holds the same SAs as a ($n_ike IKE, $n_child CHILD; SPIs, identities)"
		return 0
	fi
	e2e_expect "after $1: b holds the same SAs as a (SPIs, identities)" false
	echo "    a (live):"; lc_show a "$LC_LIVE"
	echo "    b (PASSIVE):"; lc_show b PASSIVE
	_lc_sync_diff
	ikev1_log_excerpt b "sasync: (restored|deleting|.*not applied)" 12
	return 1
}

# _lc_sync_diff: what b lacks and what b has on top, with the state a lists
# each extra CHILD SA in (e.g. REKEYED: IKEv1 keeps them until they expire)
_lc_sync_diff() {
	local line spi st
	while read -r line; do
		[ -n "$line" ] && echo "    missing on b: $line"
	done < <(comm -23 <(lc_live a) <(lc_live b))
	while read -r line; do
		[ -n "$line" ] || continue
		st=""
		if [[ $line == child* ]]; then
			spi=$(awk '{ print $5 }' <<<"$line")
			st=$(e2e_sas_raw a | grep -oE "\{name=[^}]* state=[A-Z_]+ [^}]*spi-in=$spi " |
				grep -oE 'state=[A-Z_]+' | head -n 1)
		fi
		echo "    extra on b: $line (on a: ${st:-not listed})"
	done < <(comm -13 <(lc_live a) <(lc_live b))
}

# ------------------------------------------------------------------ queries

# lc_uniqueid NODE [SPIS]: unique id of NODE's ESTABLISHED IKE SA with IKE
# SPIs SPIS ("ispi rspi"), or else of the first one that holds an INSTALLED
# CHILD SA (after an IKEv1 reauthentication the old one lingers)
lc_uniqueid() {
	lc_raw "$1" | awk -v spis="${2:-}" "$_LC_AWK_KV"'
		/^list-sa event \{/ {
			ike = $0
			sub(/ child-sas .*/, "", ike)
			if (kv(ike, "state") != "ESTABLISHED")
				next
			s = kv(ike, "initiator-spi") " " kv(ike, "responder-spi")
			if (!found && (spis != "" ? s == spis : $0 ~ / child-sas .*state=INSTALLED/)) {
				print kv(ike, "uniqueid")
				found = 1
			}
		}
		END { exit !found }'
}

# lc_cur_ike NODE [STATES]: "ispi rspi" of NODE's ESTABLISHED (STATES) IKE
# SA that holds the INSTALLED CHILD SAs (the current generation)
lc_cur_ike() {
	lc_summary "$1" "${2:-ESTABLISHED}" | awk '$1 == "child" && !f { print $2, $3; f = 1 } END { exit !f }'
}

# lc_child_spis NODE CHILD: "spi_in spi_out" of NODE's newest INSTALLED
# CHILD SA named CHILD (by unique id), whatever its IKE SA's state
lc_child_spis() {
	lc_raw "$1" | grep -oE "\{name=$2 [^}]*\}" | grep 'state=INSTALLED' |
		sed -E 's/.* uniqueid=([0-9]+) .* spi-in=([0-9a-f]+) spi-out=([0-9a-f]+) .*/\1 \2 \3/' |
		sort -n | tail -n 1 | cut -d' ' -f2-
}

# lc_rekeyed NODE CHILD OLD: NODE has an INSTALLED CHILD SA named CHILD
# with other SPIs than OLD ("spi_in spi_out")
lc_rekeyed() {
	local now
	now=$(lc_child_spis "$1" "$2")
	[ -n "$now" ] && [ "$now" != "$3" ]
}

# lc_installed_count NODE CHILD: INSTALLED CHILD SAs named CHILD on NODE
lc_installed_count() {
	lc_raw "$1" | grep -oE "\{name=$2 [^}]*state=INSTALLED " | wc -l
}

# lc_children_settled NODE: NODE lists no CHILD SA in a transient state
# (IKEv2 puts an IKE rekey or reauthentication off, by 12 s, while a rekeyed
# CHILD SA waits for its deletion, delete_rekeyed_delay, 5 s; IKEv1 lists
# rekeyed ones as REKEYED until they expire, which puts nothing off)
lc_children_settled() {
	! e2e_sas_raw "$1" | grep -oE '\{name=[^}]*\}' | grep -qvE 'state=(INSTALLED|REKEYED) '
}

# lc_mark NODE: the next line number of NODE's log (see ikev1_mark)
lc_mark() { ikev1_mark "$1"; }

# lc_count_since NODE LINE ERE: matching lines of NODE's log from LINE on
lc_count_since() {
	local n
	n=$(tail -n "+$2" "$(e2e_log "$1")" 2>/dev/null | grep -cE -- "$3")
	echo "${n:-0}"
}

# ------------------------------------------------------------------ rekeys

_lc_all_settled() { lc_children_settled "$1" && lc_children_settled "$2"; }

# lc_wait_children NODE SIDE: before an IKEv2 IKE rekey or reauthentication,
# until lc_children_settled on both ends (the CHILD SAs of a CHILD rekey
# just before are gone)
lc_wait_children() {
	[ "$(e2e_ike_field "$1" version)" = 2 ] || return 0
	e2e_wait_for "no rekeyed CHILD SA left on $1 and $2" 12 _lc_all_settled "$1" "$2" ||
		echo "    (rekeyed CHILD SAs still listed; the IKE rekey may be put off)"
}

# _lc_step_done SIDE BEFORE: SIDE's SAs changed and the active node agrees
_lc_step_done() {
	[ "$(lc_summary "$1" ESTABLISHED mirror)" != "$2" ] && lc_side_on_active "$1"
}

# lc_rekey NODE SIDE DESC SWANCTL_ARGS...: swanctl --rekey ARGS on NODE,
# then wait until SIDE (the peer or road warrior of the SA; NODE itself if
# that one rekeys) and the active node agree on new SAs. FAILs (and stops)
# if the rekey does not complete: what follows would test nothing.
lc_rekey() {
	local node=$1 side=$2 desc=$3 before
	shift 3
	before=$(lc_summary "$side" ESTABLISHED mirror)
	if ! e2e_swanctl "$node" --rekey "$@" >>"$E2E_DIR/$node/rekey.out" 2>&1; then
		tail -n 3 "$E2E_DIR/$node/rekey.out"
		_lc_step_failed "$desc: swanctl --rekey $* on $node" "$node" "$side"
		return 1
	fi
	if ! e2e_wait_for "$desc done on $side and $LC_ACTIVE" 15 _lc_step_done "$side" "$before"; then
		echo "    $side before:"
		awk '{ print "    " $0 }' <<<"$before"
		echo "    $side now:"; lc_show "$side" ESTABLISHED mirror
		echo "    $LC_ACTIVE now:"; lc_show "$LC_ACTIVE" "$LC_LIVE"
		_lc_step_failed "$desc completes on $side and $LC_ACTIVE" "$node" "$side"
		return 1
	fi
	e2e_pass "$desc completes ($side and $LC_ACTIVE agree on the new SAs)"
}

# _lc_step_failed MSG NODE SIDE: a rekey did not complete; with the log lines
# of both ends. Before the failover that stops the test (the steps after it
# would test nothing); after it (LC_ACTIVE=b) the failure is counted.
_lc_step_failed() {
	local ere="rekey|REKEY|CREATE_CHILD_SA|QUICK_MODE|Main Mode|delaying|failed|retransmit|invalid|verif"
	if [ "$LC_ACTIVE" = b ]; then
		e2e_expect "$1" false
		ikev1_log_excerpt "$2" "$ere"
		[ "$3" != "$2" ] && ikev1_log_excerpt "$3" "$ere"
		return 0
	fi
	ikev1_fail "$1" "$2:$ere" "$3:$ere"
}

# lc_rekey_ike NODE [SIDE] [SPIS]: IKE rekey (IKEv2 CREATE_CHILD_SA; no
# --reauth, which swanctl takes as a flag: "--reauth no" reauthenticates)
# on NODE of its IKE SA with SPIS (default: the one holding the CHILD SAs),
# then b must follow (unless b is the active node) within LC_MAX_LAG_MS
# (lc_lag_check). SIDE is the peer or road warrior of the SA (default peer).
lc_rekey_ike() {
	_lc_rekey_ike "IKE rekey" "$@"
}

# _lc_rekey_ike DESC NODE [SIDE] [SPIS] [SWANCTL_ARGS...]: lc_rekey_ike and
# lc_reauth
_lc_rekey_ike() {
	local what=$1 node=$2 side=${3:-peer} spis=${4:-} id mark_a mark_b desc
	shift 4 2>/dev/null || shift $#
	desc="$what by $node${spis:+ (IKE SA $spis)}"
	id=$(lc_uniqueid "$node" "$spis") || e2e_fail "$desc: no established IKE SA $spis on $node"
	if [ "$LC_ACTIVE" = a ]; then
		mark_a=$(lc_mark a)
		mark_b=$(lc_mark b)
	fi
	lc_wait_children "$node" "$side"
	lc_rekey "$node" "$side" "$desc" --ike-id "$id" "$@" || return 1
	[ "$LC_ACTIVE" = b ] && return 0
	lc_wait_synced "$desc" && lc_lag_check "$desc" "$mark_a" "$mark_b" "$side"
}

# lc_lag_check STEP MARK_A MARK_B SIDE: after an IKE rekey or
# reauthentication, the time from a's log line establishing SIDE's current
# IKE SA to b's log line restoring it (from lines MARK_A and MARK_B on; all
# nodes log one clock): until then b holds the old IKE SA or none, and a
# failover loses the tunnel
lc_lag_check() {
	local spis uid t_a t_b lag
	spis=$(lc_cur_ike "$4") || { e2e_expect "$1: $4 holds its CHILD SAs in an IKE SA" false; return 1; }
	uid=$(lc_uniqueid a "$spis")
	t_a=$(e2e_log_ms a "IKE_SA [^ []*\[$uid\] (state change: [A-Z_]+ => ESTABLISHED|rekeyed between)" "$2")
	t_b=$(e2e_log_ms b "sasync: restored passive IKE_SA '[^']*' ${spis% *}_i ${spis#* }_r" "$3")
	if [ -z "$t_a" ] || [ -z "$t_b" ]; then
		e2e_expect "$1: a's log shows IKE SA $spis (#$uid) established, b's log it restored" false
		ikev1_log_excerpt b "sasync: (restored|deleting|.*replaces)" 6
		return 1
	fi
	lag=$((t_b - t_a))
	e2e_expect "$1: b restored the new IKE SA ${lag} ms after a established it (at most ${LC_MAX_LAG_MS} ms)" \
		[ "$lag" -le "$LC_MAX_LAG_MS" ] ||
		ikev1_log_excerpt b "sasync: (restored|deleting|.*replaces)" 6
}

# lc_reauth NODE [SIDE] [SPIS]: reauthentication, as lc_rekey_ike but with
# --reauth (IKEv2: a new IKE SA by IKE_SA_INIT and IKE_AUTH, the CHILD SAs
# created again in it; IKEv1, where it is the only kind of IKE rekey: a new
# Main Mode, the Quick Mode SAs move to the new ISAKMP SA).
lc_reauth() {
	_lc_rekey_ike "reauthentication" "$1" "${2:-peer}" "${3:-}" --reauth
}

# lc_rekey_child NODE [CHILD] [SIDE] [SPIS]: CHILD rekey (Quick Mode in
# IKEv1) of CHILD ($E2E_CHILD) on NODE, in its IKE SA with SPIS if given
# (a with several road warriors), then b must follow
lc_rekey_child() {
	local child=${2:-$E2E_CHILD} id args desc
	desc="CHILD rekey of $child by $1${4:+ (IKE SA $4)}"
	args=(--child "$child")
	if [ -n "${4:-}" ]; then
		id=$(lc_uniqueid "$1" "$4") || e2e_fail "$desc: no IKE SA $4 on $1"
		args+=(--ike-id "$id")
	fi
	lc_rekey "$1" "${3:-peer}" "$desc" "${args[@]}" || return 1
	[ "$LC_ACTIVE" = b ] || lc_wait_synced "$desc"
}

# ------------------------------------------------------------------ traffic

# lc_ping_check NAME: report a stopped 10 pps ping and check its losses
# against LC_MAX_LOST
lc_ping_check() {
	local tx rx lost gap max=$((LC_MAX_LOST + LC_FAILOVER_MS / 100))
	read -r tx rx lost <<<"$(e2e_ping_stats "$1")"
	gap=$(e2e_ping_max_gap "$1")
	echo "ping $1 at 10 pps: transmitted=$tx received=$rx lost=$lost longest gap=${gap}ms"
	e2e_expect "ping $1: lost $lost across the failover, at most $max ($LC_MAX_LOST + $((LC_FAILOVER_MS / 100)) due during the harness's ${LC_FAILOVER_MS} ms); longest gap ${gap}ms" \
		_lc_lost_ok "$tx" "$lost" "$max"
}

_lc_lost_ok() { [ -n "$2" ] && [ "${1:-0}" -gt 0 ] && [ "$2" -le "$3" ]; }

# lc_reuse_check CAPTURE [NODE]: stop CAPTURE (on NODE, default peer) and
# check that no ESP (SPI, sequence) sent from the VIP appears twice in it
lc_reuse_check() {
	local reuse
	e2e_capture_stop "$1"
	reuse=$(sasync_esp_reuse "$(_e2e_pcap "$1")" "$E2E_VIP_EXT")
	echo "ESP packets from the VIP to ${2:-peer} with a reused (SPI, sequence): ${reuse:-none}" \
		"(ESP packets captured: $(e2e_capture_esp_count "$1"))"
	e2e_expect "no ESP (SPI, sequence) from the VIP reaches ${2:-the peer} twice" [ -z "$reuse" ]
}

# lc_failover: the sync link idle (b has everything a sent), then kill -9
# of a, VIPs to b, b promoted; b is the active node from now on
lc_failover() {
	local t0
	e2e_wait_for "a's sync frames all accepted by b" 10 sasync_sync_idle ||
		e2e_fail "sync link idle before the failover"
	t0=$(_e2e_now_ms)
	sasync_failover
	LC_FAILOVER_MS=$(($(_e2e_now_ms) - t0))
	echo "failover: kill -9 of a, VIPs to b, b promoted in ${LC_FAILOVER_MS} ms (harness)"
	LC_ACTIVE=b
	e2e_check "b is primary" eval '[ "$(sasync_status b role)" = primary ]'
}

# lc_reset: a new cluster in the same test (sasync_reset), a active again
lc_reset() {
	sasync_reset
	LC_ACTIVE=a
	LC_FAILOVER_MS=0
}

# lc_phase N: whether to run phase N (LC_PHASES, default all: "1 2 ...")
lc_phase() { [ -z "${LC_PHASES:-}" ] || [[ " $LC_PHASES " == *" $1 "* ]]; }

# lc_apply_failed: b's apply-failed counter (printed with the results)
lc_apply_failed() { sasync_stat b apply-failed; }

# ------------------------------------------------------ traffic, failover

# lc_streams_start SPEC...: 10 pps pings both ways per SPEC "NAME LAN_ADDR
# REMOTE_ADDR [NODE]" (lan LAN_ADDR <-> NODE, default peer, REMOTE_ADDR; for
# the peer NAME is the CHILD SA that carries them), named l2p-NAME and
# p2l-NAME; returns after about 10 s of them
lc_streams_start() {
	local spec name l p node t0 names=()
	for spec in "$@"; do
		read -r name l p node <<<"$spec"
		e2e_ping_start "l2p-$name" lan "$l" "$p"
		e2e_ping_start "p2l-$name" "${node:-peer}" "$p" "$l"
		names+=("l2p-$name" "p2l-$name")
	done
	t0=$(_e2e_now_ms)
	e2e_wait_for "10 s of pings, 50 replies on each" 20 \
		eval '[ $(($(_e2e_now_ms) - t0)) -ge 10000 ] && _lc_replies_all 50 "${names[@]}"' ||
		e2e_fail "pings through the tunnel before the failover"
	e2e_pass "pings both ways, ${#} pair(s), before the failover ($(_lc_replies_list "${names[@]}"))"
}

# lc_expect_resumed NAME...: wait (10 s at most) until each ping NAME has
# 20 replies more than now, then one check per ping
lc_expect_resumed() {
	local name
	local -A target=()
	for name in "$@"; do target[$name]=$(($(e2e_ping_replies "$name") + 20)); done
	e2e_wait_for "20 more replies on each ping" 10 _lc_reached target "$@"
	for name in "$@"; do
		e2e_expect "pings $name resume through b" [ "$(e2e_ping_replies "$name")" -ge "${target[$name]}" ]
	done
}

# _lc_reached ARRAY NAME...: each ping NAME has the replies ARRAY[NAME]
_lc_reached() {
	local -n _want=$1
	local name
	shift
	for name in "$@"; do
		[ "$(e2e_ping_replies "$name")" -ge "${_want[$name]}" ] || return 1
	done
}

_lc_replies_all() {
	local n=$1
	shift
	while [ $# -gt 0 ]; do
		[ "$(e2e_ping_replies "$1")" -ge "$n" ] || return 1
		shift
	done
}

_lc_replies_list() {
	local name out=""
	for name in "$@"; do out+="$name $(e2e_ping_replies "$name") replies, "; done
	echo "${out%, }"
}

# lc_add_host NODE ADDR: ADDR as a second host address on NODE (peer: lo,
# lan: lan0), for a ping that only one CHILD SA's selectors cover
lc_add_host() {
	local dev=lan0
	[ "$1" = peer ] && dev=lo
	ip -n "$(e2e_ns "$1")" addr add "$2/32" dev "$dev"
}

# lc_check_after_failover SPEC...: the IKEv2 failover of a site-to-site
# tunnel (peer's IKE SA "$E2E_CONN") whose CHILD SAs carry the pings of
# SPEC (see lc_streams_start), the same checks as test_failover.sh: pings
# both ways across kill -9 of a (at most LC_MAX_LOST lost each), the peer
# keeps its current IKE SA, RFC 6311 message ID sync, b rekeys each CHILD SA
# on its first outbound packet, no ESP (SPI, sequence) twice (capture "esp"
# on the peer, started by the caller), DPD from the peer answered, IKE
# rekeys by the peer and by b. Failures are counted, the test goes on.
lc_check_after_failover() {
	local spec child l p ike_before mark_peer mark_promoted n=$# names=()
	local -A before=()
	ike_before=$(lc_cur_ike peer)
	for spec in "$@"; do
		read -r child l p <<<"$spec"
		before[$child]=$(lc_child_spis peer "$child")
		names+=("l2p-$child" "p2l-$child")
	done
	echo "before the failover: peer's IKE SA $ike_before; CHILD SAs:" \
		"$(for c in "${!before[@]}"; do printf '%s (%s) ' "$c" "${before[$c]}"; done)"
	lc_streams_start "$@"
	mark_peer=$(lc_mark peer)

	lc_failover
	mark_promoted=$(lc_mark peer)
	lc_expect_resumed "${names[@]}"
	for child in "${names[@]}"; do e2e_ping_stop "$child"; done
	for child in "${names[@]}"; do lc_ping_check "$child"; done

	if lc_midsync_negotiated peer; then
		e2e_expect "b resynced message IDs with the peer (RFC 6311)" \
			e2e_wait_for "RFC 6311 message ID sync" 10 _lc_midsync_done ||
			ikev1_log_excerpt peer "MID sync|INFORMATIONAL|retransmit|verif|invalid|failed"
	else
		echo "    RFC 6311 not negotiated on the current IKE SA: the peer answered the" \
			"cluster's IKE_AUTH without N(MSG_ID_SYN_SUP) (charon announces it only" \
			"as IKE_AUTH initiator), so no message ID sync is expected"
	fi
	e2e_expect "peer kept its IKE SA, the current generation ($ike_before)" \
		eval '[ "$(lc_cur_ike peer)" = "$ike_before" ]' ||
		{ lc_show peer; ikev1_log_excerpt peer "IKE_SA|DELETE|deleting"; }
	e2e_expect "peer started no new IKE SA since the failover (no IKE_SA_INIT)" \
		eval '[ "$(lc_count_since peer "$mark_peer" "generating IKE_SA_INIT request")" -eq 0 ]' ||
		ikev1_log_excerpt peer "initiating IKE_SA|IKE_SA_INIT"
	e2e_expect "b forced a rekey of each of the $n CHILD SA(s) on its first outbound packet, and of no other" \
		eval '[ "$(e2e_count_in_log b "first outbound packet on restored CHILD_SA")" -eq $n ] &&
			  [ "$(sasync_stat b forced-rekeys)" -ge $n ]' ||
		ikev1_log_excerpt b "first outbound|sasync.*rekey|CREATE_CHILD_SA"
	for child in "${!before[@]}"; do
		e2e_expect "CHILD SA $child rekeyed on the peer (was ${before[$child]})" \
			e2e_wait_for "CHILD SA $child rekeyed on the peer" 10 \
			lc_rekeyed peer "$child" "${before[$child]}" ||
			ikev1_log_excerpt peer "CREATE_CHILD_SA|rekey|retransmit|failed"
		e2e_expect "the peer holds one INSTALLED CHILD SA $child (b rekeyed only the current one)" \
			[ "$(lc_installed_count peer "$child")" -eq 1 ] ||
			ikev1_log_excerpt b "first outbound packet on restored"
	done
	e2e_expect "b and the peer hold the same SAs" \
		e2e_wait_for "b and the peer agree" 10 lc_side_on_active peer ||
		{ lc_show peer ESTABLISHED mirror; lc_show b; }
	lc_reuse_check esp

	# DPD from the peer: an empty INFORMATIONAL once the pings stopped
	local dpd_sent info_rx
	dpd_sent=$(e2e_count_in_log peer "sending DPD request")
	info_rx=$(e2e_count_in_log peer "parsed INFORMATIONAL response")
	e2e_expect "peer sends a DPD request to b" \
		e2e_wait_for "DPD request from the peer" 15 \
		eval '[ "$(e2e_count_in_log peer "sending DPD request")" -gt "$dpd_sent" ]'
	e2e_expect "b answers the peer's DPD" \
		e2e_wait_for "DPD answered by b" 10 \
		eval '[ "$(e2e_count_in_log peer "parsed INFORMATIONAL response")" -gt "$info_rx" ]' ||
		{ ikev1_log_excerpt peer "DPD|INFORMATIONAL|retransmit|verif|invalid"
		  ikev1_log_excerpt b "INFORMATIONAL|verif|invalid|decrypt|failed"; }
	e2e_expect "peer retransmitted no request it sent after b's promotion" \
		lc_no_retransmit peer "$mark_promoted" ||
		ikev1_log_excerpt peer "retransmit"

	lc_rekey_ike peer
	lc_rekey_ike b
	for spec in "$@"; do
		read -r child l p <<<"$spec"
		e2e_expect "traffic through $child after the IKE rekeys (lan -> peer, peer -> lan)" \
			eval 'e2e_wait_ping lan "$l" "$p" 5 && e2e_wait_ping peer "$p" "$l" 5'
	done
}

# lc_midsync_negotiated NODE: the IKE_AUTH that created NODE's current IKE
# SA lineage (the last one in its log) agreed on RFC 6311 (rekeyed IKE SAs
# inherit it). A stock charon announces support only as IKE_AUTH initiator:
# when the cluster reauthenticates, the peer's response has no notify.
lc_midsync_negotiated() {
	grep -E "(parsed|generating) IKE_AUTH response" "$(e2e_log "$1")" | tail -n 1 |
		grep -q 'N(MSG_ID_SYN_SUP)'
}

# lc_no_retransmit NODE LINE: NODE retransmitted no IKE request that it
# first sent at or after LINE of its log (a DPD sent while no node held the
# VIP is retransmitted, rightly)
lc_no_retransmit() {
	tail -n "+$2" "$(e2e_log "$1")" | awk '
		/generating [A-Z_]+ request [0-9]+ / {
			for (i = 1; i <= NF; i++) if ($i == "request") sent[$(i + 1)] = 1
		}
		/retransmit [0-9]+ of request with message ID [0-9]+/ {
			if ($NF in sent) bad = 1
		}
		END { exit bad }'
}

_lc_midsync_done() {
	[ "$(sasync_stat b mid-sync-rfc6311)" -ge 1 ] &&
		[ "$(e2e_count_in_log peer "responder requested MID sync")" -ge 1 ]
}

# lc_check_after_failover_v1 CHILD LAN_ADDR PEER_ADDR: the IKEv1 failover of
# the peer's Main Mode tunnel, the same checks as test_ikev1_failover.sh:
# only the peer sends across the failover (a LAN packet could force the
# Quick Mode rekey before the peer's ESP reached the restored SA), b accepts
# its ESP on the restored IPsec SA (needs E2E_LOG_EXTRA with esp = 2), pings
# resume (at most LC_MAX_LOST lost), b forces a Quick Mode rekey on its first
# outbound packet, the peer keeps its current ISAKMP SA (no Main Mode since),
# no ESP (SPI, sequence) twice (capture "esp"), DPD from the peer (needs its
# dpd_delay) acknowledged; then Quick Mode rekeys and reauthentications by
# the peer and by b.
lc_check_after_failover_v1() {
	local child=$1 l=$2 p=$3 ike_before child_before mark_peer acks sent trouble
	ike_before=$(lc_cur_ike peer)
	child_before=$(lc_child_spis peer "$child")
	echo "before the failover: peer's ISAKMP SA $ike_before, IPsec SA $child ($child_before)"
	lc_streams_start "$child $l $p"
	mark_peer=$(lc_mark peer)
	e2e_ping_stop "l2p-$child"

	lc_failover
	e2e_expect "b accepts inbound ESP on the restored IPsec SA" \
		e2e_wait_for "inbound ESP accepted on b's restored SA" 10 \
		ikev1_took_inbound b "${child_before#* }" ||
		ikev1_log_excerpt b "sasync|CHILD_SA|QUICK_MODE"
	e2e_expect "pings peer -> lan resume through b" \
		e2e_wait_ping_replies "p2l-$child" 20 10
	e2e_ping_start "l2p2-$child" lan "$l" "$p"
	e2e_expect "pings lan -> peer flow through b" \
		e2e_wait_ping_replies "l2p2-$child" 20 10
	e2e_ping_stop "l2p2-$child"
	e2e_ping_stop "p2l-$child"
	e2e_ping_report "l2p-$child"
	lc_ping_check "p2l-$child"
	lc_ping_check "l2p2-$child"

	e2e_expect "b forced a Quick Mode rekey on the first outbound packet" \
		eval '[ "$(e2e_count_in_log b "first outbound packet on restored CHILD_SA")" -ge 1 ] &&
			  [ "$(sasync_stat b forced-rekeys)" -ge 1 ]' ||
		ikev1_log_excerpt b "sasync|QUICK_MODE|CHILD_SA"
	e2e_expect "b forced one Quick Mode only, for the current IPsec SA (not for those a had rekeyed)" \
		[ "$(e2e_count_in_log b "first outbound packet on restored CHILD_SA")" -eq 1 ] ||
		ikev1_log_excerpt b "first outbound packet on restored"
	e2e_expect "peer has a new IPsec SA $child from a Quick Mode with b (was $child_before)" \
		e2e_wait_for "new IPsec SA on the peer" 10 lc_rekeyed peer "$child" "$child_before" ||
		ikev1_log_excerpt peer "QUICK_MODE|CHILD_SA|INFORMATIONAL_V1|retransmit"
	e2e_expect "the peer holds one INSTALLED IPsec SA $child (b rekeyed only the current one; it has $(lc_installed_count peer "$child"))" \
		[ "$(lc_installed_count peer "$child")" -eq 1 ] ||
		ikev1_log_excerpt b "first outbound packet on restored"
	e2e_expect "peer kept its current ISAKMP SA ($ike_before), which holds the IPsec SAs" \
		eval '[ "$(lc_cur_ike peer)" = "$ike_before" ]' ||
		{ lc_show peer; ikev1_log_excerpt peer "IKE_SA|Main Mode|DELETE"; }
	e2e_expect "peer ran no Main Mode since the failover" \
		eval '[ "$(lc_count_since peer "$mark_peer" "initiating (Main|Aggressive) Mode")" -eq 0 ]' ||
		ikev1_log_excerpt peer "initiating (Main|Aggressive) Mode"
	e2e_expect "b and the peer hold the same SAs" \
		e2e_wait_for "b and the peer agree" 10 lc_side_on_active peer ||
		{ lc_show peer ESTABLISHED mirror; lc_show b "$LC_LIVE"; }
	lc_reuse_check esp

	# DPD from the peer (its dpd_delay without inbound traffic)
	sent=$(ikev1_dpd_sent peer)
	acks=$(ikev1_dpd_acks peer)
	e2e_expect "peer sends R_U_THERE to b" \
		e2e_wait_for "peer sends a DPD" 15 eval '[ "$(ikev1_dpd_sent peer)" -gt "$sent" ]'
	e2e_expect "peer receives R_U_THERE_ACK from b, twice" \
		e2e_wait_for "2 DPD acks on the peer" 15 eval '[ "$(ikev1_dpd_acks peer)" -ge $((acks + 2)) ]' ||
		{ ikev1_log_excerpt peer "DPD|INFORMATIONAL_V1|decrypt|HASH|invalid"
		  ikev1_log_excerpt b "DPD|INFORMATIONAL_V1|decrypt|HASH|invalid"; }
	trouble=$(ikev1_dpd_trouble peer "$mark_peer")
	e2e_expect "peer: no DPD timeout, invalid DPD sequence or retransmit since the failover" \
		[ -z "$trouble" ] || awk '{ print "    " $0 }' <<<"$trouble"

	lc_rekey_child peer "$child"
	lc_rekey_child b "$child"
	lc_reauth peer
	lc_reauth b
	e2e_expect "traffic through $child after the rekeys (lan -> peer, peer -> lan)" \
		eval 'e2e_wait_ping lan "$l" "$p" 5 && e2e_wait_ping peer "$p" "$l" 5'
}
