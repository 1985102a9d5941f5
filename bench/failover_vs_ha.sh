#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Benchmark: one gateway failover, measured with strongSwan's own `ha` plugin
# and with sasync, in one invocation. See bench/README.md.
#
# Scenario (the same for both, on the tests/e2e harness): IKEv2 PSK tunnel
# from the peer to the VIP held by node a; 10 pps pings both ways between the
# LAN host and the peer's subnet until each has BENCH_WARMUP replies (so a's
# outbound ESP sequence numbers are well above zero); kill -9 of a's charon;
# VIPs moved to b; b activated (ha: "+1" on its control FIFO; sasync:
# sasyncctl promote). Then pings keep running until both directions have
# resumed (at most BENCH_RECOVERY_S) and BENCH_TAIL_S more seconds.
#
# Measured per run: pings lost each way, longest gap between replies, time
# from a's death to the first reply through b (resumed within 10 s or not),
# whether the peer kept its IKE SA, ESP packets from the VIP whose
# (SPI, sequence) the peer had already seen (capture on the peer's ext0),
# ESP packets the peer's replay check dropped (its log), a's highest outbound
# sequence number. Prints every run, then a table of medians and ha/sasync
# ratios.
#
# A benchmark, not a test: it asserts nothing about the numbers. It exits 1
# if a scenario cannot be set up (charon does not start, no tunnel, the
# standby never gets the SAs, no traffic before the failover), 2 on bad
# settings or missing tools.
#
# Usage (root, after `make`):   bash bench/failover_vs_ha.sh
# Environment:
#   BENCH_RUNS=3            runs per scenario (median over them)
#   BENCH_LIFECYCLE=0       1: before the pings, the SAs live a while: IKE
#                           rekey by the peer, CHILD rekey by the peer,
#                           CHILD rekey by a, IKE rekey by a (each synced to
#                           b before the next), so the failover hits
#                           later generations, not first ones
#   BENCH_SCENARIOS="ha sasync"
#   BENCH_WARMUP=40         replies each way before the failover (~4 s)
#   BENCH_RECOVERY_S=10     how long to wait for traffic after the failover
#   BENCH_TAIL_S=2          seconds of traffic kept after it resumed
#   BENCH_HA_SECRET=...     charon.plugins.ha.secret (empty: not set)
#   BENCH_HA_ACTIVATE=fifo  how b takes over with ha: "fifo" writes +1 to its
#                           control FIFO right after the VIP move (like
#                           sasyncctl promote); "monitor" leaves it to the
#                           plugin's heartbeat watchdog (2.1 s)
#   BENCH_KEEP=1            keep the per-run results and logs (E2E_KEEP=1)
#   E2E_PREFIX=bench        namespace prefix (use your own in parallel)
#   E2E_PRELOAD=...         sasync plugin (default plugin/.libs/...so)
#   SASYNC_CTL=...          sasyncctl (default tools/sasyncctl)
# The single-quoted strings handed to eval and e2e_wait_for expand when they
# run (which is also where n1 and n2 are read):
# shellcheck disable=SC2016,SC2034
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
: "${BENCH_RUNS:=3}"
: "${BENCH_LIFECYCLE:=0}"
: "${BENCH_SCENARIOS:=ha sasync}"
: "${BENCH_WARMUP:=40}"
: "${BENCH_RECOVERY_S:=10}"
: "${BENCH_TAIL_S:=2}"
: "${BENCH_HA_ACTIVATE:=fifo}"
: "${BENCH_KEEP:=0}"
: "${E2E_PREFIX:=bench}"
: "${SASYNC_CTL:=$TOP/tools/sasyncctl}"
BENCH_SASYNC_SO=${E2E_PRELOAD:-$TOP/plugin/.libs/libstrongswan-sasync.so}
E2E_PRELOAD=                    # set per scenario below
E2E_KEEP=$BENCH_KEEP

# shellcheck source=tests/e2e/sasync.sh
. "$TOP/tests/e2e/sasync.sh"
# shellcheck source=bench/ha.sh
. "$TOP/bench/ha.sh"

_bench_usage_error() { echo "failover_vs_ha: $*" >&2; exit 2; }
[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || _bench_usage_error "BENCH_RUNS must be a positive integer"
[[ $BENCH_WARMUP =~ ^[1-9][0-9]*$ ]] || _bench_usage_error "BENCH_WARMUP must be a positive integer"
[[ $BENCH_RECOVERY_S =~ ^[1-9][0-9]*$ ]] || _bench_usage_error "BENCH_RECOVERY_S must be a positive integer"
[[ $BENCH_TAIL_S =~ ^[0-9]+$ ]] || _bench_usage_error "BENCH_TAIL_S must be an integer"
[[ $BENCH_LIFECYCLE =~ ^[01]$ ]] || _bench_usage_error "BENCH_LIFECYCLE must be 0 or 1"
[[ $BENCH_HA_ACTIVATE =~ ^(fifo|monitor)$ ]] || _bench_usage_error "BENCH_HA_ACTIVATE must be fifo or monitor"
for s in $BENCH_SCENARIOS; do
	case $s in
	ha) [ -f "$BENCH_HA_SO" ] || _bench_usage_error "no $BENCH_HA_SO (libcharon-extra-plugins)" ;;
	sasync)
		[ -f "$BENCH_SASYNC_SO" ] || _bench_usage_error "no $BENCH_SASYNC_SO (run make)"
		[ -x "$SASYNC_CTL" ] || _bench_usage_error "no $SASYNC_CTL (run make)"
		;;
	*) _bench_usage_error "unknown scenario '$s'" ;;
	esac
done
command -v tshark >/dev/null || _bench_usage_error "tshark is missing"

# ------------------------------------------------------------ the ha plugin

# ha_failover: the counterpart of sasync_failover; with
# BENCH_HA_ACTIVATE=monitor b's watchdog takes the segment once a's
# heartbeats are missing for heartbeat_timeout
ha_failover() {
	e2e_charon_kill a KILL
	e2e_vip_move a b
	[ "$BENCH_HA_ACTIVATE" = monitor ] || ha_ctl b +1
}

# ------------------------------------------------------------- measurement

_bench_now() { local t=${EPOCHREALTIME/,/.}; echo "$t"; }

# Record the moment a's charon is gone: e2e_charon_kill returns once the
# process has exited, so every reply after that stamp went through b. The
# failover helpers are used unchanged; this wraps the kill they call.
eval "_bench_charon_kill_orig() $(declare -f e2e_charon_kill | tail -n +2)"
e2e_charon_kill() {
	_bench_charon_kill_orig "$@"
	BENCH_T_DEAD=$(_bench_now)
}

# _bench_replied_after NAME T: NAME's ping has a reply stamped after T
_bench_replied_after() {
	tr -d '[]' <"$(_e2e_ping_log "$1")" |
		awk -v t="$2" '/bytes from/ && $1 > t { f = 1; exit } END { exit !f }'
}

# _bench_ping_eval NAME T LIMIT: "lost resumed_ms" for a stopped ping. The
# outage is the gap around T (a's death); resumed_ms is the time from T to
# the first reply after it, or "inf" if none came within LIMIT seconds.
# Lost: echo requests up to the last answered one without a reply; with no
# recovery, every unanswered request.
_bench_ping_eval() {
	local log
	log=$(_e2e_ping_log "$1")
	tr -d '[]' <"$log" | awk -v t="$2" -v lim="$3" '
		/bytes from/ {
			seq = $0; sub(/.*icmp_seq=/, "", seq); sub(/ .*/, "", seq)
			seq += 0
			if (!(seq in got)) { got[seq] = 1; n++ }
			if (seq > max) max = seq
			if ($1 > t && first == "") first = $1
		}
		/packets transmitted/ { tx = $1 }
		END {
			if (first != "" && first - t <= lim) {
				printf "%d %d\n", max - n, (first - t) * 1000
			} else {
				printf "%d inf\n", tx - n
			}
		}'
}

# _bench_esp NAME: "a_last_seq reused" from the capture: a's highest outbound
# sequence number before its death, and the ESP packets from the VIP whose
# (SPI, sequence) had been on the wire before (sasync_esp_reuse prints one
# line "spi seq count" per pair seen more than once)
_bench_esp() {
	local pcap a_seq reused
	pcap=$(_e2e_pcap "$1")
	a_seq=$(tshark -r "$pcap" -n -d udp.port==4500,udpencap \
		-Y "esp && ip.src==$E2E_VIP_EXT && frame.time_epoch < $BENCH_T_DEAD" \
		-T fields -e esp.sequence 2>/dev/null | sort -n | tail -n 1)
	reused=$(sasync_esp_reuse "$pcap" "$E2E_VIP_EXT" | awk '{ n += $3 - 1 } END { print n + 0 }')
	echo "${a_seq:-0} $reused"
}

# _bench_installed_spis_in NODE: inbound SPIs of NODE's INSTALLED CHILD SAs
_bench_installed_spis_in() {
	e2e_sas_raw "$1" | grep -oE 'state=INSTALLED [^}]*' |
		grep -oE 'spi-in=[0-9a-f]+' | sed 's/^spi-in=//'
}

BENCH_RES=$(mktemp /tmp/bench-failover.XXXXXX)
_bench_put() { echo "$1 $2 $3 $4" >>"$BENCH_RES"; }   # scenario run key value

# _bench_alone_ike / _bench_alone_child BEFORE: a holds one IKE SA / one
# CHILD SA, other than BEFORE
_bench_alone_ike() {
	[ "$(e2e_sa_count a)" = 1 ] && [ -n "$(e2e_ike_spis a)" ] &&
		[ "$(e2e_ike_spis a)" != "$1" ]
}
_bench_alone_child() {
	[ "$(e2e_child_list a | wc -l)" = 1 ] && [ -n "$(e2e_child_spis a)" ] &&
		[ "$(e2e_child_spis a)" != "$1" ]
}

# _bench_rekey NODE ike|child SYNCED: rekey (not reauthenticate) the IKE or
# CHILD SA from NODE, wait for a to have the new one alone and for b to
# hold it (SYNCED: the scenario's check)
_bench_rekey() {
	local node=$1 what=$2 synced=$3 before name=$E2E_CHILD
	[ "$what" = ike ] && name=$E2E_CONN
	before=$(e2e_"$what"_spis a)
	e2e_swanctl "$node" --rekey --"$what" "$name" >/dev/null ||
		e2e_fail "$what rekey by $node"
	e2e_wait_for "$what rekey by $node done on a" 15 \
		_bench_alone_"$what" "$before" || e2e_fail "$what rekey by $node"
	# shellcheck disable=SC2086  # SYNCED is a command with arguments
	e2e_wait_for "b has it after the $what rekey by $node" 10 $synced ||
		e2e_fail "b synced after the $what rekey by $node"
}

# bench_lifecycle SYNCED: the lifecycle of BENCH_LIFECYCLE=1
bench_lifecycle() {
	_bench_rekey peer ike "$1"
	_bench_rekey peer child "$1"
	_bench_rekey a child "$1"
	_bench_rekey a ike "$1"
}

# bench_run SCENARIO RUN: one failover, results appended to $BENCH_RES
bench_run() {
	local sc=$1 run=$2 ike_before child_before t0 dir lost res a_seq reused
	local kept rekeyed n1 n2 ok_l2p ok_p2l inits_before
	t0=$(_e2e_now_ms)
	if [ "$sc" = ha ]; then
		E2E_PRELOAD=
		ha_cluster_up
		e2e_wait_for "b has the SAs (PASSIVE)" 10 ha_synced || e2e_fail "ha: SAs synced to b"
		[ "$BENCH_LIFECYCLE" = 1 ] && bench_lifecycle ha_synced
	else
		E2E_PRELOAD=$BENCH_SASYNC_SO
		sasync_cluster_up
		e2e_wait_for "b has the SAs" 10 sasync_synced a b || e2e_fail "sasync: SAs synced to b"
		[ "$BENCH_LIFECYCLE" = 1 ] && bench_lifecycle "sasync_synced a b"
	fi
	ike_before=$(e2e_ike_spis peer)
	child_before=$(e2e_child_spis peer)
	# an IKE rekey logs it too (BENCH_LIFECYCLE): none may follow the failover
	inits_before=$(e2e_count_in_log peer "initiating IKE_SA")
	e2e_capture_start esp peer ext0 udp port 4500 || e2e_fail "capture on peer"
	e2e_ping_start l2p lan "$E2E_LAN_HOST" "$E2E_PEER_HOST"
	e2e_ping_start p2l peer "$E2E_PEER_HOST" "$E2E_LAN_HOST"
	e2e_wait_for "$BENCH_WARMUP replies each way" $((BENCH_WARMUP / 5 + 10)) \
		eval '[ "$(e2e_ping_replies l2p)" -ge "$BENCH_WARMUP" ] && [ "$(e2e_ping_replies p2l)" -ge "$BENCH_WARMUP" ]' ||
		e2e_fail "$sc: traffic through a before the failover"

	BENCH_T_DEAD=
	if [ "$sc" = ha ]; then ha_failover; else sasync_failover; fi 2>/dev/null
	[ -n "$BENCH_T_DEAD" ] || e2e_fail "$sc: kill of a's charon not seen"

	# both directions back (or the limit), then a few seconds more
	ok_l2p=0 ok_p2l=0
	e2e_wait_for "lan -> peer through b" "$BENCH_RECOVERY_S" \
		_bench_replied_after l2p "$BENCH_T_DEAD" && ok_l2p=1
	e2e_wait_for "peer -> lan through b" \
		"$(awk -v t="$BENCH_T_DEAD" -v l="$BENCH_RECOVERY_S" -v n="$(_bench_now)" \
			'BEGIN { r = t + l - n; printf "%.1f", (r > 0.1 ? r : 0.1) }')" \
		_bench_replied_after p2l "$BENCH_T_DEAD" && ok_p2l=1
	if [ "$ok_l2p$ok_p2l" = 11 ] && [ "$BENCH_TAIL_S" -gt 0 ]; then
		n1=$(($(e2e_ping_replies l2p) + BENCH_TAIL_S * 10))
		n2=$(($(e2e_ping_replies p2l) + BENCH_TAIL_S * 10))
		e2e_wait_for "$BENCH_TAIL_S s more traffic" $((BENCH_TAIL_S + 3)) \
			eval '[ "$(e2e_ping_replies l2p)" -ge $n1 ] && [ "$(e2e_ping_replies p2l)" -ge $n2 ]'
	fi
	e2e_ping_stop l2p
	e2e_ping_stop p2l
	e2e_capture_stop esp

	for dir in l2p p2l; do
		read -r lost res <<<"$(_bench_ping_eval "$dir" "$BENCH_T_DEAD" "$BENCH_RECOVERY_S")"
		_bench_put "$sc" "$run" "lost_$dir" "$lost"
		_bench_put "$sc" "$run" "resume_$dir" "$res"
		if [ "$res" = inf ]; then
			_bench_put "$sc" "$run" "gap_$dir" inf
		else
			_bench_put "$sc" "$run" "gap_$dir" "$(e2e_ping_max_gap "$dir")"
		fi
	done
	kept=0
	[ "$(e2e_ike_spis peer)" = "$ike_before" ] &&
		[ "$(e2e_ike_field peer state)" = ESTABLISHED ] &&
		[ "$(e2e_sa_count peer)" -eq 1 ] &&
		[ "$(e2e_count_in_log peer "initiating IKE_SA")" -eq "$inits_before" ] &&
		kept=1
	_bench_put "$sc" "$run" ike_kept "$kept"
	# the peer keeps the old CHILD SA listed as DELETED for a while, so look
	# for an INSTALLED one with a new inbound SPI
	rekeyed=0
	_bench_installed_spis_in peer | grep -qvx "${child_before%% *}" && rekeyed=1
	_bench_put "$sc" "$run" child_rekeyed "$rekeyed"
	read -r a_seq reused <<<"$(_bench_esp esp)"
	_bench_put "$sc" "$run" a_seq "$a_seq"
	_bench_put "$sc" "$run" reused "$reused"
	_bench_put "$sc" "$run" replay_drops \
		"$(e2e_count_in_log peer "ESP sequence number verification failed")"
	if [ "$sc" = ha ] && [ "$run" = 1 ]; then
		BENCH_HA_NOTES=$(grep -hE "CLUSTERIP' failed|installing trap failed|can't install route.*IKE traffic|HA segment 1 activated|no heartbeat received" \
			"$(e2e_log a)" "$(e2e_log b)" 2>/dev/null | sed 's/^[0-9:.]* //' | sort | uniq -c)
	fi
	# measured: stop the charons at once (on SIGTERM the ha plugin closes its
	# IKE SAs and teardown would wait seconds for that)
	# (bash's "Killed" job notices for them are noise)
	for n in b peer; do e2e_charon_kill "$n" KILL 2>/dev/null; done
	_bench_put "$sc" "$run" seconds "$((($(_e2e_now_ms) - t0) / 1000))"
	_bench_print_run "$sc" "$run"
	if [ "$BENCH_KEEP" = 1 ]; then
		cp -a "$E2E_DIR" "$BENCH_RES.$sc-$run" 2>/dev/null
	fi
}

_bench_get() { awk -v s="$1" -v r="$2" -v k="$3" '$1 == s && $2 == r && $3 == k { print $4 }' "$BENCH_RES"; }

_bench_ms() {
	if [ "$1" = inf ]; then echo none; else awk -v v="$1" 'BEGIN { printf "%.1fs", v / 1000 }'; fi
}

_bench_print_run() {
	local sc=$1 run=$2
	_g() { _bench_get "$sc" "$run" "$1"; }
	printf '%-6s run %d: lost lan->peer %s peer->lan %s | gap %s / %s ms | first reply via b after %s / %s | IKE SA kept %s | CHILD rekeyed %s | a last seq %s, reused ESP %s, peer replay drops %s | %ss\n' \
		"$sc" "$run" "$(_g lost_l2p)" "$(_g lost_p2l)" "$(_g gap_l2p)" "$(_g gap_p2l)" \
		"$(_bench_ms "$(_g resume_l2p)")" "$(_bench_ms "$(_g resume_p2l)")" \
		"$([ "$(_g ike_kept)" = 1 ] && echo yes || echo NO)" \
		"$([ "$(_g child_rekeyed)" = 1 ] && echo yes || echo no)" \
		"$(_g a_seq)" "$(_g reused)" "$(_g replay_drops)" "$(_g seconds)"
}

# ------------------------------------------------------------------ summary

# _bench_median SCENARIO KEY: median over the runs ("inf" sorts last)
_bench_median() {
	awk -v s="$1" -v k="$2" '$1 == s && $3 == k { print ($4 == "inf" ? 1e18 : $4) }' "$BENCH_RES" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (!NR) { print "-"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			if (m >= 1e18) print "inf"; else if (m == int(m)) print m; else printf "%.1f\n", m }'
}

# _bench_count SCENARIO KEY: "yes/runs" for a 0/1 value
_bench_count() {
	awk -v s="$1" -v k="$2" '$1 == s && $3 == k { n++; y += $4 } END { printf "%d/%d\n", y, n }' "$BENCH_RES"
}

# _bench_resumed SCENARIO DIR: runs whose traffic came back within the limit
_bench_resumed() {
	awk -v s="$1" -v k="resume_$2" '$1 == s && $3 == k { n++; if ($4 != "inf") y++ } END { printf "%d/%d\n", y, n }' "$BENCH_RES"
}

# _bench_ratio HA SASYNC: ha/sasync, with the infinite cases spelled out
_bench_ratio() {
	awk -v h="$1" -v s="$2" 'BEGIN {
		if (h == "-" || s == "-") print "-"
		else if (h == "inf" && s == "inf") print "both: no recovery"
		else if (h == "inf") print "inf (ha: no recovery)"
		else if (s == "inf") print "0 (sasync: no recovery)"
		else if (s == 0 && h == 0) print "- (both 0)"
		else if (s == 0) print "inf (sasync: 0)"
		else printf "%.1fx\n", h / s }'
}

_bench_cell() { [ "$1" = inf ] && echo "no recovery" || echo "$1"; }

bench_summary() {
	local has_ha=0 has_sa=0 row key h s
	[[ " $BENCH_SCENARIOS " == *" ha "* ]] && has_ha=1
	[[ " $BENCH_SCENARIOS " == *" sasync "* ]] && has_sa=1
	echo
	echo "== failover: kill -9 of a's charon, VIPs to b, b activated; pings at 10 pps each way"
	echo "   median of $BENCH_RUNS run(s) per scenario; recovery limit ${BENCH_RECOVERY_S}s; ha activated by $BENCH_HA_ACTIVATE"
	printf '%-44s %-14s %-14s %s\n' "" ha sasync "ha/sasync"
	for row in "lost_l2p:pings lost, lan -> peer" "lost_p2l:pings lost, peer -> lan" \
		"gap_l2p:longest gap (ms), lan -> peer" "gap_p2l:longest gap (ms), peer -> lan" \
		"resume_l2p:first reply via b (ms), lan -> peer" "resume_p2l:first reply via b (ms), peer -> lan"; do
		key=${row%%:*}
		h=-; s=-
		[ $has_ha = 1 ] && h=$(_bench_median ha "$key")
		[ $has_sa = 1 ] && s=$(_bench_median sasync "$key")
		case $key in
		lost_* | gap_*) printf '%-44s %-14s %-14s %s\n' "${row#*:}" "$(_bench_cell "$h")" "$(_bench_cell "$s")" "$(_bench_ratio "$h" "$s")" ;;
		*) printf '%-44s %-14s %-14s\n' "${row#*:}" "$(_bench_cell "$h")" "$(_bench_cell "$s")" ;;
		esac
	done
	for row in "l2p:resumed within ${BENCH_RECOVERY_S} s, lan -> peer" "p2l:resumed within ${BENCH_RECOVERY_S} s, peer -> lan"; do
		h=-; s=-
		[ $has_ha = 1 ] && h=$(_bench_resumed ha "${row%%:*}")
		[ $has_sa = 1 ] && s=$(_bench_resumed sasync "${row%%:*}")
		printf '%-44s %-14s %-14s\n' "${row#*:}" "$h" "$s"
	done
	for row in "ike_kept:peer kept its IKE SA" "child_rekeyed:CHILD SA rekeyed after failover"; do
		h=-; s=-
		[ $has_ha = 1 ] && h=$(_bench_count ha "${row%%:*}")
		[ $has_sa = 1 ] && s=$(_bench_count sasync "${row%%:*}")
		printf '%-44s %-14s %-14s\n' "${row#*:}" "$h" "$s"
	done
	for row in "a_seq:a's last outbound ESP seq before death" \
		"reused:ESP from VIP with an already seen (SPI,seq)" \
		"replay_drops:ESP dropped by the peer's replay check" \
		"seconds:seconds per run"; do
		h=-; s=-
		[ $has_ha = 1 ] && h=$(_bench_median ha "${row%%:*}")
		[ $has_sa = 1 ] && s=$(_bench_median sasync "${row%%:*}")
		printf '%-44s %-14s %-14s\n' "${row#*:}" "$h" "$s"
	done
	if [ -n "${BENCH_HA_NOTES:-}" ]; then
		echo
		echo "ha plugin log lines (a and b, run 1):"
		echo "$BENCH_HA_NOTES"
	fi
}

# --------------------------------------------------------------------- main

e2e_init
trap 'e2e_teardown; [ "$BENCH_KEEP" = 1 ] && echo "bench: results in $BENCH_RES*" || rm -rf "$BENCH_RES" "$BENCH_RES".*' EXIT
echo "failover_vs_ha: scenarios '$BENCH_SCENARIOS', $BENCH_RUNS run(s) each, prefix $E2E_PREFIX"
first=1
for run in $(seq 1 "$BENCH_RUNS"); do
	for sc in $BENCH_SCENARIOS; do
		[ $first = 1 ] || sasync_reset
		first=0
		bench_run "$sc" "$run"
	done
done
bench_summary
echo
echo "failover_vs_ha: done in $(e2e_elapsed) s"
