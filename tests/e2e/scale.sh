# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# SCALE_* results are read by the scripts that source this file, and checks
# run through eval in single quotes:
# shellcheck disable=SC2034,SC2016
#
# Thousands of tunnels between the peer and the cluster (test_scale.sh and
# the benchmarks bench/scale.sh), on top of lifecycle.sh: SCALE_TUNNELS
# IKEv2 connections on the peer, s1 .. sN, each with its own identity
# (pI@test) and one CHILD SA that protects the LAN 198.18.2.0/24 <-> one
# address of the peer's lo (scale_addr I, in 198.19.0.0/16), so a ping picks
# exactly one tunnel. The cluster serves them all with one connection
# ("scale", remote identity %any) whose remote traffic selector 198.19.0.0/16
# is narrowed to each peer's /32, as a gateway of road warriors would.
# Generated configurations go to $E2E_DIR/gen.

# shellcheck source=tests/e2e/lifecycle.sh
. "$(dirname "${BASH_SOURCE[0]}")/lifecycle.sh"

: "${SCALE_TUNNELS:=1000}"
# seconds the peer may take to set all tunnels up (grows with N)
: "${SCALE_UP_TIMEOUT:=$((60 + SCALE_TUNNELS / 10))}"
SCALE_NET=198.19.0.0/16
# every tunnel comes from the peer's one address, thousands at once: charon's
# DoS protection (per-address half-open limit block_threshold = 5, cookies
# beyond cookie_threshold = 10 half-open SAs) would drop most IKE_SA_INITs,
# and a responder's half-open limit (init_limit_half_open) must stay off.
# charon's IKE SA table has one bucket by default (ikesa_table_size = 1): a
# linked list, so every checkout compares IKE SA ids with all N SAs (35 % of
# b's CPU in a resync of 1,000, profiled); a gateway of thousands sizes it
E2E_CHARON_CONF="$E2E_CHARON_CONF
	dos_protection = no
	init_limit_half_open = 0
	ikesa_table_size = 4096
	ikesa_table_segments = 16"

# scale_addr I: the peer's address of tunnel I (1..65000): 250 per /24
scale_addr() {
	local j=$(($1 - 1))
	echo "198.19.$((j / 250)).$((j % 250 + 1))"
}

# scale_gen_peer N START_ACTION: the peer's swanctl.conf, N connections;
# awk, since a shell loop over 10,000 tunnels takes seconds
scale_gen_peer() {
	awk -v n="$1" -v start="$2" -v me="$E2E_PEER_EXT" -v vip="$E2E_VIP_EXT" \
		-v ike="$E2E_IKE_PROPOSAL" -v esp="$E2E_ESP_PROPOSAL" -v lan="$E2E_LAN_NET" \
		-v psk="$E2E_PSK" 'BEGIN {
		print "connections {"
		for (i = 1; i <= n; i++) {
			j = i - 1
			printf "\ts%d {\n\t\tversion = 2\n\t\tlocal_addrs = %s\n\t\tremote_addrs = %s\n", i, me, vip
			printf "\t\tproposals = %s\n\t\trekey_time = 24h\n\t\tdpd_delay = 0s\n\t\tmobike = no\n", ike
			printf "\t\tlocal { auth = psk\n\t\t\tid = p%d@test }\n", i
			printf "\t\tremote { auth = psk\n\t\t\tid = cluster@test }\n"
			printf "\t\tchildren {\n\t\t\ts%d {\n", i
			printf "\t\t\t\tlocal_ts = 198.19.%d.%d/32\n\t\t\t\tremote_ts = %s\n", int(j / 250), j % 250 + 1, lan
			printf "\t\t\t\tesp_proposals = %s\n\t\t\t\trekey_time = 24h\n", esp
			printf "\t\t\t\tstart_action = %s\n\t\t\t}\n\t\t}\n\t}\n", start
		}
		print "}"
		printf "secrets {\n\tike-scale {\n\t\tid = cluster@test\n\t\tsecret = \"%s\"\n\t}\n}\n", psk
	}'
}

# scale_gen_cluster: the cluster's swanctl.conf, one connection for all
scale_gen_cluster() {
	cat <<EOF
connections {
	scale {
		version = 2
		local_addrs = $E2E_VIP_EXT
		proposals = $E2E_IKE_PROPOSAL
		rekey_time = 24h
		dpd_delay = 0s
		mobike = no
		local { auth = psk
			id = cluster@test }
		remote { auth = psk
			id = %any }
		children {
			scale {
				local_ts = $E2E_LAN_NET
				remote_ts = $SCALE_NET
				esp_proposals = $E2E_ESP_PROPOSAL
				rekey_time = 24h
			}
		}
	}
}
secrets {
	ike-scale {
		id = cluster@test
		secret = "$E2E_PSK"
	}
}
EOF
}

# scale_topo: topology, the N tunnel addresses on the peer's lo, the LAN
# host's route to them, the peer's charon, the cluster's configuration
scale_topo() {
	local i
	e2e_topo_up || e2e_fail "topology up"
	for ((i = 0; i < SCALE_TUNNELS; i++)); do
		echo "addr add 198.19.$((i / 250)).$((i % 250 + 1))/32 dev lo"
	done | ip -n "$(e2e_ns peer)" -batch - || e2e_fail "tunnel addresses on the peer"
	ip -n "$(e2e_ns lan)" route add "$SCALE_NET" via "$E2E_VIP_LAN" dev lan0 ||
		e2e_fail "LAN route to the tunnel addresses"
	mkdir -p "$E2E_DIR/gen"
	scale_gen_cluster >"$E2E_DIR/gen/scale-cluster.conf"
	e2e_charon_start peer || e2e_fail "charon on peer"
}

# scale_node_start NODE [SNIPPET]: NODE's charon (with SNIPPET, e.g.
# sasync_conf) and the cluster's connection
scale_node_start() {
	e2e_charon_start "$1" "${2:-}" || e2e_fail "charon on $1"
	e2e_swanctl_load "$1" "$E2E_DIR/gen/scale-cluster.conf" ||
		e2e_fail "load the cluster's connection on $1"
}

# scale_initiate: the peer loads its N connections with start_action =
# start, so its charon initiates each as it is loaded (swanctl loads them
# one by one over one vici connection: that paces the set-up, with no
# process per tunnel). Sets SCALE_T_INIT (ms since the epoch, before the
# load) and SCALE_LOAD_MS (how long the load took).
scale_initiate() {
	scale_gen_peer "$SCALE_TUNNELS" start >"$E2E_DIR/gen/scale-peer.conf"
	SCALE_T_INIT=$(_e2e_now_ms)
	SCALE_TOD_INIT=$(e2e_tod_ms)
	e2e_swanctl_load peer "$E2E_DIR/gen/scale-peer.conf" ||
		e2e_fail "load the peer's $SCALE_TUNNELS connections"
	SCALE_LOAD_MS=$(($(_e2e_now_ms) - SCALE_T_INIT))
}

# scale_log_nth NODE ERE N [FROM_LINE]: time of day in ms of the N-th line
# matching ERE in NODE's log (from FROM_LINE on); fails if there are fewer
scale_log_nth() {
	tail -n "+${4:-1}" "$(e2e_log "$1")" 2>/dev/null | grep -E -- "$2" |
		sed -n "${3}{p;q}" | _e2e_tod_ms
}

# scale_log_lines NODE: lines in NODE's log so far (a mark for scale_log_nth)
scale_log_lines() { wc -l <"$(e2e_log "$1")"; }

# the peer logs this once per CHILD SA it set up or rekeyed
SCALE_CHILD_UP="CHILD_SA s[0-9]+\{[0-9]+\} established"

# scale_peer_children_up: CHILD SAs the peer logged as established so far
scale_peer_children_up() { e2e_count_in_log peer "$SCALE_CHILD_UP"; }

# scale_wait_up: until the peer logged all N CHILD SAs established; sets
# SCALE_UP_MS (from the start of the load to the N-th one, from the log)
scale_wait_up() {
	local t
	e2e_wait_for "$SCALE_TUNNELS CHILD SAs up on the peer" "$SCALE_UP_TIMEOUT" \
		eval '[ "$(scale_peer_children_up)" -ge "$SCALE_TUNNELS" ]' || return 1
	t=$(scale_log_nth peer "$SCALE_CHILD_UP" "$SCALE_TUNNELS") || return 1
	SCALE_UP_MS=$(((t - SCALE_TOD_INIT + 86400000) % 86400000))
}

# scale_table NODE STATES [mirror [names]]: one line per IKE SA in STATES
# (ERE) with its INSTALLED CHILD SAs, sorted:
#   ike ISPI RSPI
#   child ISPI RSPI SPI_IN SPI_OUT
# from the cluster's point of view (mirror: a peer's in/out swapped); with
# "names" each line ends with the IKE SA's name (the peer's sI)
scale_table() {
	lc_raw "$1" | awk -v want="^($2)\$" -v mirror="${3:-}" -v names="${4:-}" "$_LC_AWK_KV"'
		/^list-sa event \{/ {
			split_sa()
			if (kv(ike, "state") !~ want)
				next
			spis = kv(ike, "initiator-spi") " " kv(ike, "responder-spi")
			tail = names ? " " name : ""
			print "ike " spis tail
			kids = line
			if (!sub(/.* child-sas /, "", kids))
				kids = ""
			while (match(kids, /\{name=[^}]*\}/)) {
				c = substr(kids, RSTART, RLENGTH)
				kids = substr(kids, RSTART + RLENGTH)
				if (kv(c, "state") != "INSTALLED")
					continue
				i = kv(c, "spi-in")
				o = kv(c, "spi-out")
				print "child " spis " " (mirror ? o " " i : i " " o) tail
			}
		}' | sort
}

# scale_counts TABLE: "IKE CHILD" lines in a scale_table output
scale_counts() {
	awk '{ n[$1]++ } END { printf "%d %d\n", n["ike"], n["child"] }' <<<"$1"
}

# scale_passive NODE: "IKE CHILD" SAs a sasync standby holds (ha-status,
# cheaper than a listing)
scale_passive() {
	local out
	out=$(sasync_ctl "$1" --raw status) || return 1
	echo "$(grep -oE 'ike-sas-passive=[0-9]+' <<<"$out" | cut -d= -f2)" \
		"$(grep -oE 'child-sas-passive=[0-9]+' <<<"$out" | cut -d= -f2)"
}

# scale_b_holds_all: b holds N passive IKE and CHILD SAs (sasync)
scale_b_holds_all() { [ "$(scale_passive b)" = "$SCALE_TUNNELS $SCALE_TUNNELS" ]; }

# scale_sample K: K distinct random tunnel numbers, sorted
scale_sample() { shuf -i "1-$SCALE_TUNNELS" -n "$1" | sort -n; }

# scale_cpu_ms PID: user + system CPU time of PID in ms (clock ticks)
scale_cpu_ms() {
	local stat f
	stat=$(cat "/proc/$1/stat") || return 1
	read -ra f <<<"${stat##*) }"
	echo $(((f[11] + f[12]) * 1000 / $(getconf CLK_TCK)))
}

# scale_rss_kib PID: resident memory of PID in KiB
scale_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# scale_peer_ike_requests FROM_TOD_MS SECONDS: IKE requests the peer
# received (parsed, or retransmits of one) from FROM_TOD_MS on, for
# SECONDS, as "total max_per_second"
scale_peer_ike_requests() {
	awk -v from="$1" -v secs="$2" '
		/parsed [A-Z_]+ request|received retransmit of request/ {
			split($1, t, /[:.]/)
			ms = ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4]
			d = (ms - from + 86400000) % 86400000
			if (d >= secs * 1000) next
			n++
			b[int(d / 1000)]++
		}
		END { m = 0; for (s in b) if (b[s] > m) m = b[s]; printf "%d %d\n", n, m }' \
		"$(e2e_log peer)"
}

# ------------------------------------------------------------- failover

# scale_pings_start LIST: a 10 pps ping from the LAN host through each
# tunnel in LIST (numbers), named s<I>
scale_pings_start() {
	local i
	for i in $1; do
		e2e_ping_start "s$i" lan "$E2E_LAN_HOST" "$(scale_addr "$i")"
	done
}

# scale_pings_stop LIST
scale_pings_stop() {
	local i
	for i in $1; do e2e_ping_stop "s$i"; done
}

# scale_pings_replied LIST COUNT: each ping of LIST has COUNT replies
scale_pings_replied() {
	local i
	for i in $1; do
		[ "$(e2e_ping_replies "s$i")" -ge "$2" ] || return 1
	done
}

# scale_reply_after NAME T_MS: ms from T_MS (since the epoch) to the first
# reply of ping NAME stamped after it; fails if there is none
scale_reply_after() {
	tr -d '[]' <"$(_e2e_ping_log "$1")" | awk -v t="$2" '
		/bytes from/ && $1 * 1000 > t { printf "%d\n", $1 * 1000 - t; f = 1; exit }
		END { exit !f }'
}

# scale_pings_all_after LIST T_MS: every ping of LIST got a reply after T_MS
scale_pings_all_after() {
	local i
	for i in $1; do scale_reply_after "s$i" "$2" >/dev/null || return 1; done
}

# scale_kill_a: kill -9 of a's charon; sets SCALE_T_DEAD (ms since the
# epoch, once the process is gone: every reply after it went through b)
scale_kill_a() {
	e2e_charon_kill a KILL 2>/dev/null
	SCALE_T_DEAD=$(_e2e_now_ms)
}

# scale_median: median of the numbers on stdin ("-" if none)
scale_median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) { print "-"; exit }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		if (m == int(m)) print m; else printf "%.1f\n", m }'
}

# scale_changed BEFORE AFTER: names (the last field) of the lines of
# scale_table ... mirror names output BEFORE that AFTER no longer has,
# one per line, sorted and unique
scale_changed() {
	comm -23 <(echo "$1") <(echo "$2") | awk '{ print $NF }' | sort -u
}
