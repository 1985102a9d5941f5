# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Helpers of the churn soak and the fault tests (test_churn_soak.sh,
# test_faults.sh), on top of many.sh: a view of a node's SAs, the comparison
# of the active node's SAs with what the peer holds and with a standby's,
# and the kernel state next to charon's view.
#
# A view (soak_view) has one line per IKE SA and per CHILD SA, in any state:
#   ike NAME ISPI RSPI STATE
#   child ISPI RSPI NAME STATE SPI_IN SPI_OUT REQID REMOTE_TS
# On the peer (mirror) SPI_IN and SPI_OUT are swapped, so its lines read
# like the cluster's, and REQID is "-" (reqids are local to each side).

# shellcheck source=tests/e2e/many.sh
. "$(dirname "${BASH_SOURCE[0]}")/many.sh"

# soak_view NODE [mirror]: the view of NODE's SAs (see above), sorted
soak_view() {
	lc_raw "$1" | awk -v mirror="${2:-}" "$_LC_AWK_KV"'
		/^list-sa event \{/ {
			split_sa()
			spis = kv(ike, "initiator-spi") " " kv(ike, "responder-spi")
			print "ike " name " " spis " " kv(ike, "state")
			kids = line
			if (!sub(/.* child-sas /, "", kids))
				kids = ""
			while (match(kids, /\{name=[^}]*\}/)) {
				c = substr(kids, RSTART, RLENGTH)
				kids = substr(kids, RSTART + RLENGTH)
				i = kv(c, "spi-in")
				o = kv(c, "spi-out")
				r = mirror ? "-" : kv(c, "reqid")
				ts = kv(c, "remote-ts")
				if (mirror)
					ts = kv(c, "local-ts")
				gsub(/[\[\]]/, "", ts)
				print "child " spis " " kv(c, "name") " " kv(c, "state") " " \
					(mirror ? o " " i : i " " o) " " r " " ts
			}
		}' | sort
}

# soak_settled VIEW: no IKE SA of VIEW in another state than ESTABLISHED or
# PASSIVE, no CHILD SA in another than INSTALLED (nothing in flight)
soak_settled() {
	! awk '($1 == "ike" && $5 != "ESTABLISHED" && $5 != "PASSIVE") ||
		($1 == "child" && $5 != "INSTALLED") { bad = 1 } END { exit !bad }' <<<"$1"
}

# soak_ikes VIEW STATE_ERE: "NAME ISPI RSPI" of VIEW's IKE SAs in a state
soak_ikes() { awk -v s="^($2)\$" '$1 == "ike" && $5 ~ s { print $2, $3, $4 }' <<<"$1" | sort; }

# soak_children VIEW STATE_ERE: "ISPI RSPI NAME SPI_IN SPI_OUT" of VIEW's
# CHILD SAs in a state
soak_children() {
	awk -v s="^($2)\$" '$1 == "child" && $5 ~ s { print $2, $3, $4, $6, $7 }' <<<"$1" | sort
}

# soak_dups VIEW: "NAME count" of each connection with more than one
# ESTABLISHED (or PASSIVE) IKE SA, and of each CHILD SA name INSTALLED more
# than once
soak_dups() {
	awk '$1 == "ike" && ($5 == "ESTABLISHED" || $5 == "PASSIVE") { n["ike " $2]++ }
		$1 == "child" && $5 == "INSTALLED" { n["child " $4]++ }
		END { for (k in n) if (n[k] > 1) print k, n[k] }' <<<"$1" | sort
}

# soak_reqid_clash VIEW: reqids that two INSTALLED CHILD SAs of different
# names share (each name has its own selectors, so its own reqid)
soak_reqid_clash() {
	awk '$1 == "child" && $5 == "INSTALLED" {
			if (($8 in name) && name[$8] != $4) print "reqid " $8 " " name[$8] " " $4
			name[$8] = $4
		}' <<<"$1" | sort -u
}

# soak_routes NODE: destinations of the routes charon installed (table 220,
# via the TUN device of kernel-libipsec)
soak_routes() {
	ip -n "$(e2e_ns "$1")" -4 route show table 220 2>/dev/null |
		awk '{ d = $1; if (d !~ /\//) d = d "/32"; print d }' | sort
}

# soak_xfrm NODE: XFRM states and policies in NODE's kernel (kernel-libipsec
# keeps its SAs in charon: any is stale)
soak_xfrm() {
	{ ip -n "$(e2e_ns "$1")" xfrm state; ip -n "$(e2e_ns "$1")" xfrm policy; } 2>/dev/null |
		grep -c '^src'
}

# soak_compare ACTIVE [STANDBY]: compare the active node's SAs with the
# peer's, the kernel routes with the active node's CHILD SAs, and the
# standby's SAs with the active node's. Sets SOAK_LOST SOAK_STALE SOAK_DUP
# SOAK_KERNEL SOAK_STANDBY (counts) and SOAK_DIFF (the differing lines).
soak_compare() {
	local act=$1 sb=${2:-} pv av sv lines
	SOAK_LOST=0 SOAK_STALE=0 SOAK_DUP=0 SOAK_KERNEL=0 SOAK_STANDBY=0 SOAK_DIFF=""
	pv=$(soak_view peer mirror) || { SOAK_LOST=1; SOAK_DIFF="no listing from the peer"; return; }
	av=$(soak_view "$act") || { SOAK_LOST=1; SOAK_DIFF="no listing from $act"; return; }
	# lost: held by the peer, not live on the active node
	lines=$(comm -23 <(soak_ikes "$pv" ESTABLISHED) <(soak_ikes "$av" ESTABLISHED) | sed 's/^/lost ike /')
	lines+=$'\n'$(comm -23 <(soak_children "$pv" INSTALLED) <(soak_children "$av" INSTALLED) |
		sed 's/^/lost child /')
	SOAK_LOST=$(grep -c '^lost' <<<"$lines")
	SOAK_DIFF+=$lines
	# stale: on the active node in any state, unknown to the peer
	lines=$(comm -13 <(soak_ikes "$pv" '.*') <(soak_ikes "$av" '.*') | sed 's/^/stale ike /')
	lines+=$'\n'$(comm -13 <(soak_children "$pv" '.*') <(soak_children "$av" '.*') |
		sed 's/^/stale child /')
	SOAK_STALE=$(grep -c '^stale' <<<"$lines")
	SOAK_DIFF+=$'\n'$lines
	lines=$(soak_dups "$pv" | sed 's/^/duplicated on the peer: /')
	lines+=$'\n'$(soak_dups "$av" | sed "s/^/duplicated on $act: /")
	lines+=$'\n'$(soak_reqid_clash "$av" | sed "s/^/shared on $act: /")
	SOAK_DUP=$(grep -c '^\(duplicated\|shared\)' <<<"$lines")
	SOAK_DIFF+=$'\n'$lines
	# kernel: a route per remote selector of an INSTALLED CHILD SA, no XFRM
	lines=$(comm -3 <(awk '$1 == "child" && $5 == "INSTALLED" { print $9 }' <<<"$av" | sort -u) \
		<(soak_routes "$act") | awk -F'\t' -v n="$act" '
			$1 != "" { print "kernel: no route on " n " for " $1 }
			$2 != "" { print "kernel: stale route on " n " to " $2 }')
	[ "$(soak_xfrm "$act")" = 0 ] || lines+=$'\n'"kernel: $(soak_xfrm "$act") XFRM entries on $act"
	SOAK_KERNEL=$(grep -c '^kernel' <<<"$lines")
	SOAK_DIFF+=$'\n'$lines
	[ -n "$sb" ] || return 0
	# the standby: the same IKE and CHILD SAs, passive (reqids are its own)
	sv=$(soak_view "$sb") || { SOAK_STANDBY=1; SOAK_DIFF+=$'\n'"no listing from $sb"; return; }
	lines=$(comm -3 <(soak_ikes "$av" ESTABLISHED) <(soak_ikes "$sv" PASSIVE) | awk -F'\t' -v n="$sb" '
		$1 != "" { print "standby " n " lacks ike " $1 }
		$2 != "" { print "standby " n " has stale ike " $2 }')
	lines+=$'\n'$(comm -3 <(soak_children "$av" INSTALLED) <(soak_children "$sv" INSTALLED) |
		awk -F'\t' -v n="$sb" '
		$1 != "" { print "standby " n " lacks child " $1 }
		$2 != "" { print "standby " n " has stale child " $2 }')
	lines+=$'\n'$(awk -v n="$sb" '$1 == "ike" && $5 != "PASSIVE" {
		print "standby " n " has ike in state " $5 ": " $2, $3, $4 }' <<<"$sv")
	# a CHILD SA it lacks INSTALLED may be there in another state
	lines+=$'\n'$(awk '$1 == "child" && $5 != "INSTALLED" {
		print $2, $3, $4, $6, $7 "\t" $5 }' <<<"$sv" | sort |
		join -t $'\t' <(soak_children "$av" INSTALLED) - |
		awk -F'\t' -v n="$sb" '{ print "  (" n " holds " $1 " in state " $2 ")" }')
	lines+=$'\n'$(soak_reqid_clash "$sv" | sed "s/^/standby $sb: shared /")
	SOAK_STANDBY=$(grep -c '^standby' <<<"$lines")
	SOAK_DIFF+=$'\n'$lines
	[ "$(soak_xfrm "$sb")" = 0 ] ||
		{ SOAK_KERNEL=$((SOAK_KERNEL + 1)); SOAK_DIFF+=$'\n'"kernel: XFRM entries on $sb"; }
	return 0
}

# soak_mismatches: the sum of the counts of the last soak_compare
soak_mismatches() { echo $((SOAK_LOST + SOAK_STALE + SOAK_DUP + SOAK_KERNEL + SOAK_STANDBY)); }

# soak_agree ACTIVE [STANDBY]: soak_compare finds nothing
soak_agree() { soak_compare "$@"; [ "$(soak_mismatches)" = 0 ]; }

# soak_print_diff [MAX]: the lines of the last soak_compare, indented
soak_print_diff() {
	grep -v '^$' <<<"$SOAK_DIFF" | head -n "${1:-20}" | sed 's/^/    /'
	soak_explain
}

# soak_explain: the last log lines of the nodes and the peer that name the
# CHILD SPIs of the mismatches (8 hex digits), so that a run that found one
# (in CI, without its directory) can be read from its output
soak_explain() {
	local spis n
	spis=$(grep -v '^$' <<<"$SOAK_DIFF" | grep -oE '\b[0-9a-f]{8}\b' | sort -u | head -n 8)
	[ -n "$spis" ] || return 0
	for n in a b peer; do
		echo "    $n's log lines naming $(tr '\n' ' ' <<<"$spis"):"
		cat "$E2E_DIR/$n"/charon*.log 2>/dev/null | grep -F -f <(echo "$spis") |
			tail -n 30 | cut -c1-220 | sed 's/^/      /'
	done
}
