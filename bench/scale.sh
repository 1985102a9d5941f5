#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Benchmarks B2 to B5 of issue 10 at BENCH_TUNNELS tunnels, with plain
# charon (no HA plugin), strongSwan's `ha` plugin and sasync in one
# invocation. See bench/README.md.
#
# Workload (tests/e2e/scale.sh, the harness of test_scale.sh): N IKEv2
# tunnels, one CHILD SA each, from the peer to the VIP (the peer's charon
# initiates each as swanctl loads its connection), charon's DoS limits lifted.
# Per run and scenario:
#   set-up   a (plain: alone; ha, sasync: with b as standby) until the peer
#            has all N CHILD SAs and b holds them all.
#            B4: CPU time of a's charon per tunnel (until b held all, the
#                sync included), set-up rate (tunnels/s, from the peer's log)
#            B5: RSS growth per tunnel of a's and b's charon
#            B2: lag, from the last tunnel up on the peer to b's last apply
#   resync   (ha, sasync) b killed and started again: time from its start to
#            its last apply once it holds exactly a's SAs (B2), CHILD SAs the
#            resync had rekeyed on the peer (ha rekeys every one)
#   failover (ha, sasync) a 10 pps ping from the LAN through one random
#            tunnel; after BENCH_WARMUP replies kill -9 of a, VIPs to b, b
#            activated (ha: +1 on its FIFO; sasync: sasyncctl promote). B3:
#            kill -> first reply through b, idle tunnels rekeyed (CHILD SPIs
#            changed on the peer, the pinged tunnel not counted), IKE SAs the
#            peer kept, IKE requests it received in BENCH_OBSERVE_S seconds
# Prints every run, then per benchmark the medians and the ratios against the
# baseline (plain charon for B4/B5, ha for B2/B3); writes the raw values
# (CSV) and the medians (JSON) to BENCH_OUT.
#
# A benchmark, not a test: it asserts nothing about the numbers. Exit status
# 1 if a scenario cannot be set up, 2 on bad settings.
#
# Usage (root, after `make`):   bash bench/scale.sh
# Environment:
#   BENCH_TUNNELS=1000      N (1 .. 64000); 10000 is the long mode (about
#                           10 min of set-up per run on 2 CPUs)
#   BENCH_RUNS=3            runs per scenario (median over them)
#   BENCH_SCENARIOS="plain ha sasync"
#   BENCH_WARMUP=20         replies through a on the pinged tunnel first
#   BENCH_OBSERVE_S=5       seconds watched after the activation
#   BENCH_OUT=bench/results where scale-N<N>.csv and .json go
#   BENCH_KEEP=1            keep logs (E2E_KEEP=1)
#   E2E_PREFIX=bench        namespace prefix (use your own in parallel)
#   E2E_PRELOAD=...         sasync plugin (default plugin/.libs/...so)
# checks run through eval in single quotes
# shellcheck disable=SC2016
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
: "${BENCH_TUNNELS:=1000}"
: "${BENCH_RUNS:=3}"
: "${BENCH_SCENARIOS:=plain ha sasync}"
: "${BENCH_WARMUP:=20}"
: "${BENCH_OBSERVE_S:=5}"
: "${BENCH_OUT:=$TOP/bench/results}"
: "${BENCH_KEEP:=0}"
: "${E2E_PREFIX:=bench}"
: "${SASYNC_CTL:=$TOP/tools/sasyncctl}"
BENCH_SASYNC_SO=${E2E_PRELOAD:-$TOP/plugin/.libs/libstrongswan-sasync.so}
E2E_PRELOAD=                    # set per scenario
E2E_KEEP=$BENCH_KEEP
SCALE_TUNNELS=$BENCH_TUNNELS

# shellcheck source=tests/e2e/scale.sh
. "$TOP/tests/e2e/scale.sh"
# shellcheck source=bench/ha.sh
. "$TOP/bench/ha.sh"

_usage_error() { echo "scale: $*" >&2; exit 2; }
if ! [[ $BENCH_TUNNELS =~ ^[1-9][0-9]*$ ]] || [ "$BENCH_TUNNELS" -gt 64000 ]; then
	_usage_error "BENCH_TUNNELS must be 1 .. 64000"
fi
[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || _usage_error "BENCH_RUNS must be a positive integer"
[[ $BENCH_WARMUP =~ ^[1-9][0-9]*$ ]] || _usage_error "BENCH_WARMUP must be a positive integer"
[[ $BENCH_OBSERVE_S =~ ^[1-9][0-9]*$ ]] || _usage_error "BENCH_OBSERVE_S must be a positive integer"
for s in $BENCH_SCENARIOS; do
	case $s in
	plain) ;;
	ha) [ -f "$BENCH_HA_SO" ] || _usage_error "no $BENCH_HA_SO (libcharon-extra-plugins)" ;;
	sasync)
		[ -f "$BENCH_SASYNC_SO" ] || _usage_error "no $BENCH_SASYNC_SO (run make)"
		[ -x "$SASYNC_CTL" ] || _usage_error "no $SASYNC_CTL (run make)"
		;;
	*) _usage_error "unknown scenario '$s'" ;;
	esac
done

N=$BENCH_TUNNELS
SYNC_TIMEOUT=$((30 + N / 50))
mkdir -p "$BENCH_OUT" || _usage_error "cannot create $BENCH_OUT"
CSV=$BENCH_OUT/scale-N$N.csv
JSON=$BENCH_OUT/scale-N$N.json
echo "scenario,run,key,value" >"$CSV"
_put() { echo "$1,$2,$3,$4" >>"$CSV"; }
_get() { awk -F, -v s="$1" -v r="$2" -v k="$3" '$1 == s && $2 == r && $3 == k { print $4 }' "$CSV"; }

# ---------------------------------------------------------------- helpers

# _apply_re SCENARIO: the line b logs per CHILD SA it installed
_apply_re() {
	if [ "$1" = ha ]; then echo "installed HA CHILD_SA"; else echo "sasync: restored CHILD_SA"; fi
}

# _last_apply SCENARIO: time of day (ms) of b's last CHILD SA install
_last_apply() { grep -E -- "$(_apply_re "$1")" "$(e2e_log b)" | tail -n 1 | _e2e_tod_ms; }

# _b_holds SCENARIO: b holds exactly a's N tunnels (PASSIVE), a's send
# queue empty (sasync)
_b_holds() {
	local a
	if [ "$1" = sasync ]; then
		scale_b_holds_all && [ "$(sasync_status a queue-depth)" = 0 ] || return 1
	fi
	a=$(scale_table a ESTABLISHED) || return 1
	[ "$(scale_counts "$a")" = "$N $N" ] && [ "$(scale_table b PASSIVE)" = "$a" ]
}

# _b_missing: "IKE CHILD" SAs of a's that b does not hold (PASSIVE)
_b_missing() {
	comm -23 <(scale_table a ESTABLISHED) <(scale_table b PASSIVE) |
		awk '{ n[$1]++ } END { printf "%d %d\n", n["ike"], n["child"] }'
}

# _wait_b SCENARIO: until b holds all of a's SAs (0), or b installed no
# CHILD SA for 5 s (1: the ha plugin loses records over UDP, and nothing
# would repair them), or SYNC_TIMEOUT. It reads b's log until b logged N
# installs (a listing of N SAs every poll would slow b's apply down) and
# only then compares the listings. CPU_A_SYNCED: the CPU time of a's
# charon (pid $pa) when b had logged N installs, before the listings, which
# cost a's charon CPU of their own.
_wait_b() {
	local deadline last
	CPU_A_SYNCED=
	deadline=$(($(_e2e_now_ms) + SYNC_TIMEOUT * 1000))
	while [ "$(_e2e_now_ms)" -lt "$deadline" ]; do
		if [ "$(e2e_count_in_log b "$(_apply_re "$1")")" -ge "$N" ]; then
			[ -n "$CPU_A_SYNCED" ] || CPU_A_SYNCED=$(scale_cpu_ms "$pa")
			_b_holds "$1" && return 0
		fi
		last=$(_last_apply "$1")
		if [ -n "$last" ] && [ "$(_ms_since "$last" "$(e2e_tod_ms)")" -gt 5000 ]; then
			_b_holds "$1"
			return
		fi
		sleep 0.2
	done
	return 1
}

# _start_b SCENARIO: b's charon as standby with the cluster's connection
_start_b() {
	if [ "$1" = ha ]; then
		scale_node_start b "$(ha_conf b)"
	else
		scale_node_start b "$(sasync_conf b standby)"
	fi
}

# _ms_since TOD_FROM TOD_TO: TOD_TO - TOD_FROM across midnight
_ms_since() { echo $((($2 - $1 + 86400000) % 86400000)); }

# _per N VALUE: VALUE / N with 2 decimals
_per() { awk -v n="$1" -v v="$2" 'BEGIN { printf "%.2f\n", v / n }'; }

# --------------------------------------------------------------- one run

bench_run() {
	local sc=$1 run=$2 pa pb cpu0 cpu1 ra0 rb0=0 t_up t sample before after mark tod
	local changed reqs peak mi mc
	E2E_PRELOAD=
	[ "$sc" = sasync ] && E2E_PRELOAD=$BENCH_SASYNC_SO
	scale_topo
	case $sc in
	plain) scale_node_start a ;;
	ha)
		scale_node_start a "$(ha_conf a)"
		ha_take_segment a || e2e_fail "ha: a took segment 1"
		_start_b ha
		e2e_wait_for "a answered b's resync request" 5 \
			eval '[ "$(e2e_count_in_log a "resyncing HA segment")" -ge 1 ]' ||
			e2e_fail "ha resync between a and b"
		;;
	sasync)
		scale_node_start a "$(sasync_conf a primary)"
		_start_b sasync
		e2e_wait_for "sync link up" 10 ikev1_link_up || e2e_fail "sync link up"
		;;
	esac
	pa=$(e2e_charon_pid a)
	cpu0=$(scale_cpu_ms "$pa")
	ra0=$(scale_rss_kib "$pa")
	if [ "$sc" != plain ]; then
		pb=$(e2e_charon_pid b)
		rb0=$(scale_rss_kib "$pb")
	fi

	# ---- set-up (B4, B5, B2 lag)
	scale_initiate
	scale_wait_up || e2e_fail "$sc: $N tunnels up on the peer"
	# a's CPU up to here (plain) or until b held all (below), before any
	# listing of a's SAs: a listing of N SAs is CPU of a's of its own, and
	# the checks below list a once (plain) or twice and ask its status
	# (ha, sasync)
	cpu1=$(scale_cpu_ms "$pa")
	_put "$sc" "$run" setup_rate "$(awk -v n="$N" -v ms="$SCALE_UP_MS" 'BEGIN { printf "%.1f", n * 1000 / (ms ? ms : 1) }')"
	_put "$sc" "$run" setup_ms "$SCALE_UP_MS"
	if [ "$sc" != plain ]; then
		if _wait_b "$sc"; then
			t_up=$(scale_log_nth peer "$SCALE_CHILD_UP" "$N")
			t=$(_last_apply "$sc")
			_put "$sc" "$run" lag_ms $((t - t_up))
		else
			_put "$sc" "$run" lag_ms inf
		fi
		cpu1=${CPU_A_SYNCED:-$(scale_cpu_ms "$pa")}
		read -r mi mc <<<"$(_b_missing)"
		_put "$sc" "$run" missing_ike "$mi"
		_put "$sc" "$run" missing_child "$mc"
		_put "$sc" "$run" rss_b_kib "$(_per "$N" $(($(scale_rss_kib "$pb") - rb0)))"
	else
		e2e_wait_for "a lists all" 20 eval '[ "$(scale_counts "$(scale_table a ESTABLISHED)")" = "$N $N" ]' ||
			e2e_fail "plain: a holds the $N tunnels"
	fi
	_put "$sc" "$run" cpu_a_ms "$(_per "$N" $((cpu1 - cpu0)))"
	_put "$sc" "$run" rss_a_kib "$(_per "$N" $(($(scale_rss_kib "$pa") - ra0)))"

	if [ "$sc" != plain ]; then
		# ---- resync (B2)
		before=$(scale_table peer ESTABLISHED mirror names)
		e2e_charon_kill b KILL 2>/dev/null
		tod=$(e2e_tod_ms)
		_start_b "$sc"
		if _wait_b "$sc"; then
			_put "$sc" "$run" resync_ms "$(_ms_since "$tod" "$(_last_apply "$sc")")"
		else
			_put "$sc" "$run" resync_ms inf
		fi
		read -r mi mc <<<"$(_b_missing)"
		_put "$sc" "$run" resync_missing_ike "$mi"
		_put "$sc" "$run" resync_missing_child "$mc"
		after=$(scale_table peer ESTABLISHED mirror names)
		_put "$sc" "$run" resync_rekeyed "$(scale_changed "$(grep '^child ' <<<"$before")" \
			"$(grep '^child ' <<<"$after")" | grep -c .)"

		# ---- failover (B3)
		sample=$(scale_sample 1)
		scale_pings_start "$sample"
		e2e_wait_for "$BENCH_WARMUP replies through a" $((BENCH_WARMUP / 5 + 10)) \
			scale_pings_replied "$sample" "$BENCH_WARMUP" || e2e_fail "$sc: traffic through a"
		before=$(scale_table peer ESTABLISHED mirror names)
		mark=$(scale_log_lines peer)
		scale_kill_a
		e2e_vip_move a b
		tod=$(e2e_tod_ms)
		if [ "$sc" = ha ]; then ha_ctl b +1; else sasync_ctl b promote >/dev/null; fi
		_put "$sc" "$run" activate_ms $(($(_e2e_now_ms) - SCALE_T_DEAD))
		if e2e_wait_for "a reply through b" 30 scale_pings_all_after "$sample" "$SCALE_T_DEAD"; then
			_put "$sc" "$run" first_reply_ms "$(scale_reply_after "s$sample" "$SCALE_T_DEAD")"
		else
			_put "$sc" "$run" first_reply_ms inf
		fi
		e2e_wait_for "$BENCH_OBSERVE_S s after the activation" $((BENCH_OBSERVE_S + 2)) \
			eval '[ "$(_ms_since "$tod" "$(e2e_tod_ms)")" -ge $((BENCH_OBSERVE_S * 1000)) ]'
		scale_pings_stop "$sample"
		after=$(scale_table peer ESTABLISHED mirror names)
		changed=$(scale_changed "$(grep '^child ' <<<"$before")" "$(grep '^child ' <<<"$after")")
		_put "$sc" "$run" idle_rekeyed "$(grep -vx "s$sample" <<<"$changed" | grep -c .)"
		_put "$sc" "$run" ike_kept "$(comm -12 <(grep '^ike ' <<<"$before") <(grep '^ike ' <<<"$after") | grep -c .)"
		read -r reqs peak <<<"$(scale_peer_ike_requests "$tod" "$BENCH_OBSERVE_S")"
		_put "$sc" "$run" peer_requests "$reqs"
		_put "$sc" "$run" peer_requests_peak "$peak"
		_put "$sc" "$run" peer_inits "$(tail -n "+$mark" "$(e2e_log peer)" | grep -c "initiating IKE_SA")"
	fi
	for n in b a peer; do e2e_charon_kill "$n" KILL 2>/dev/null; done
	_print_run "$sc" "$run"
	[ "$BENCH_KEEP" = 1 ] && cp -a "$E2E_DIR" "$BENCH_OUT/scale-N$N-$sc-$run"
	sasync_reset
}

_print_run() {
	local sc=$1 run=$2 k line=""
	for k in setup_rate cpu_a_ms rss_a_kib rss_b_kib lag_ms missing_ike missing_child \
		resync_ms resync_missing_ike resync_missing_child resync_rekeyed \
		activate_ms first_reply_ms idle_rekeyed ike_kept peer_requests peer_requests_peak peer_inits; do
		[ -n "$(_get "$sc" "$run" "$k")" ] && line+=" $k=$(_get "$sc" "$run" "$k")"
	done
	echo "$sc run $run (N=$N):$line"
}

# ---------------------------------------------------------------- summary

# _median SCENARIO KEY ("inf" sorts last, "-" if none)
_median() {
	awk -F, -v s="$1" -v k="$2" '$1 == s && $3 == k { print ($4 == "inf" ? 1e18 : $4) }' "$CSV" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (!NR) { print "-"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			if (m >= 1e18) print "inf"; else if (m == int(m)) print m; else printf "%.2f\n", m }'
}

# _ratio A B: A/B, "-" when either is missing or B is 0
_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || a == "inf" || b == "inf" || a < 0 || b <= 0) print "-"
		else printf "%.2fx\n", a / b }'
}

# _row LABEL KEY BASE: medians of each scenario and the ratio sasync/BASE
_row() {
	local label=$1 key=$2 base=$3 sc cells=()
	for sc in plain ha sasync; do cells+=("$(_median "$sc" "$key")"); done
	printf '%-46s %-10s %-10s %-10s %s\n' "$label" "${cells[@]}" \
		"$(_ratio "$(_median sasync "$key")" "$(_median "$base" "$key")")"
}

bench_summary() {
	echo
	echo "== N = $N tunnels, median of $BENCH_RUNS run(s); ratio = sasync / baseline"
	printf '%-46s %-10s %-10s %-10s %s\n' "" plain ha sasync ratio
	echo "B2 sync to the standby (baseline ha)"
	_row "  resync to a restarted b (ms)" resync_ms ha
	_row "  CHILD SAs b lacks after the resync" resync_missing_child ha
	_row "  CHILD SAs rekeyed by the resync" resync_rekeyed ha
	_row "  lag: last up on the peer -> b held all (ms)" lag_ms ha
	_row "  CHILD SAs b lacks after the set-up" missing_child ha
	echo "B3 failover, one random tunnel pinged (baseline ha)"
	_row "  kill -> first reply via b (ms)" first_reply_ms ha
	_row "  kill -> b activated (harness, ms)" activate_ms ha
	_row "  idle tunnels rekeyed" idle_rekeyed ha
	_row "  IKE SAs the peer kept" ike_kept ha
	_row "  IKE requests to the peer in ${BENCH_OBSERVE_S} s" peer_requests ha
	_row "  ... at most in one second" peer_requests_peak ha
	echo "B4 cost on the active (baseline plain)"
	_row "  CPU of a's charon per tunnel (ms)" cpu_a_ms plain
	_row "  set-up rate (tunnels/s)" setup_rate plain
	echo "B5 memory per tunnel (baseline plain)"
	_row "  RSS growth of a's charon (KiB/tunnel)" rss_a_kib plain
	_row "  RSS growth of b's charon (KiB/tunnel)" rss_b_kib plain
	printf '%-46s %s KiB/tunnel\n' "  sasync's overhead on a (sasync - plain)" \
		"$(awk -v s="$(_median sasync rss_a_kib)" -v p="$(_median plain rss_a_kib)" \
			'BEGIN { if (s == "-" || p == "-") print "-"; else printf "%.2f\n", s - p }')"
}

# bench_json: the medians, the date and the machine
bench_json() {
	local sc k first=1
	{
		printf '{\n  "bench": "scale",\n  "tunnels": %d,\n  "runs": %d,\n' "$N" "$BENCH_RUNS"
		printf '  "date": "%s",\n  "machine": "%s, %s CPUs",\n  "medians": {' "$(date -u +%Y-%m-%dT%H:%MZ)" \
			"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(nproc)"
		for sc in $BENCH_SCENARIOS; do
			[ $first = 1 ] || printf ','
			first=0
			printf '\n    "%s": {' "$sc"
			awk -F, -v s="$sc" 'NR > 1 && $1 == s { print $3 }' "$CSV" | awk '!seen[$0]++' |
				while read -r k; do echo "\"$k\": \"$(_median "$sc" "$k")\""; done | paste -sd, | sed 's/,/, /g'
			printf '}'
		done
		printf '\n  }\n}\n'
	} >"$JSON"
}

# --------------------------------------------------------------------- main

e2e_init
echo "scale: N=$N, scenarios '$BENCH_SCENARIOS', $BENCH_RUNS run(s) each, prefix $E2E_PREFIX"
for run in $(seq 1 "$BENCH_RUNS"); do
	for sc in $BENCH_SCENARIOS; do
		bench_run "$sc" "$run"
	done
done
bench_summary
bench_json
echo
echo "scale: raw values in $CSV, medians in $JSON; done in $(e2e_elapsed) s"
