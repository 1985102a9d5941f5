#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Debian package on a clean system: build strongswan-sasync_*.deb
# (scripts/build-deb.sh, unit tests skipped: make check runs them), install
# it with "apt-get install ./strongswan-sasync_*.deb" into a fresh minimal
# Debian tree (the debootstrap base scripts/setup.sh caches, unpacked anew;
# apt takes strongSwan from the archive), start the packaged charon there
# without LD_PRELOAD, in a network namespace and a mount namespace with a
# tmpfs /run, and check it loads the plugin with sync enabled and answers
# "swanctl --stats" on the plugin's socket; then dpkg -r and dpkg -P and
# check the files are gone.
#
# Usage (as root): bash tests/e2e/test_package.sh
# Environment:
#   SASYNC_PKG_MODE=auto|chroot|host
#                 chroot: the fresh Debian tree (needs the cached base,
#                 scripts/setup.sh makes it); host: this machine's own
#                 strongSwan (refuses to run if strongswan-sasync or one of
#                 its files is there already, and purges the package at the
#                 end, also on failure); auto (default): chroot if the base
#                 is cached, else host
#   SASYNC_DEB=PATH  test this .deb instead of building one
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$E2E_LIB_DIR/../.." && pwd)
: "${SASYNC_PKG_MODE:=auto}"
: "${SASYNC_DEB:=}"
CHROOT_BASE=${SASYNC_CACHE:-/var/cache/strongswan-sasync}/chroot-base.tar.zst
PKG=strongswan-sasync
PLUGIN=/usr/lib/ipsec/plugins/libstrongswan-sasync.so
CONF=/etc/strongswan.d/charon/sasync.conf
CTL=/usr/sbin/sasyncctl
MANS=(/usr/share/man/man8/sasyncctl.8.gz /usr/share/man/man8/strongswan-sasync.8.gz)
URI=unix:///var/run/charon-sasync.vici
# a key as the plugin wants one: 32 random bytes, here fixed
SECRET=0x27bb41b1b37236ab53f18642b83735e8907c344d1cfcdfdcf83480f7a75aced1
# the partner: nobody listens there, the link keeps trying, sync stays on
PARTNER=198.18.2.12

R=""              # root of the system under test ("" = this machine)
TDIR=""           # the test's directory, as seen inside R
HOST_INSTALLED=0  # host mode: we installed the package, purge it at exit

# ---- running things in the system under test

# in_root CMD...: CMD in R (chrooted, with /proc, in a mount namespace of
# its own so nothing stays mounted), or here in host mode
in_root() {
	if [ -n "$R" ]; then
		# shellcheck disable=SC2016 # $0 and $@ are for the inner sh
		unshare -m --propagation private sh -c \
			'mount -t proc pk-proc "$0/proc" && exec chroot "$0" "$@"' "$R" "$@"
	else
		"$@"
	fi
}

# in_charon CMD...: CMD in charon's network and mount namespaces and root
in_charon() {
	local pid
	pid=$(e2e_charon_pid a) || { echo "no charon" >&2; return 1; }
	nsenter -t "$pid" -n -m -r -w "$@"
}

# ---- set-up

# unpack the cached minimal Debian tree; apt gets this machine's sources
# (binary only) and configuration, so it uses the same archive and proxy
chroot_up() {
	local f
	R=$E2E_DIR/root
	mkdir -p "$R" || return 1
	zstd -q -dc "$CHROOT_BASE" | tar -C "$R" --numeric-owner -xf - || return 1
	rm -f "$R/etc/apt/sources.list" "$R"/etc/apt/sources.list.d/*
	[ -f /etc/apt/sources.list ] &&
		grep -v '^[[:space:]]*deb-src' /etc/apt/sources.list >"$R/etc/apt/sources.list"
	for f in /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] && grep -v '^[[:space:]]*deb-src' "$f" >"$R/etc/apt/sources.list.d/${f##*/}"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && sed 's/^Types:.*/Types: deb/' "$f" >"$R/etc/apt/sources.list.d/${f##*/}"
	done
	for f in /etc/apt/apt.conf.d/*; do
		[ -f "$f" ] && cp "$f" "$R/etc/apt/apt.conf.d/"
	done
	cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null
	# maintainer scripts must not start daemons in there
	printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d" &&
		chmod 755 "$R/usr/sbin/policy-rc.d"
}

# host mode touches this machine: only when none of the package is there
host_untouched() {
	local f
	if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
		echo "host mode: $PKG is installed here already" >&2
		return 1
	fi
	for f in "$PLUGIN" "$CONF" "$CTL" "${MANS[@]}"; do
		[ -e "$f" ] && { echo "host mode: $f exists already" >&2; return 1; }
	done
	return 0
}

pkg_cleanup() {
	e2e_charon_kill a
	if [ "$HOST_INSTALLED" = 1 ]; then
		dpkg -P "$PKG" >/dev/null 2>&1 ||
			echo "test_package: could not purge $PKG (dpkg -P $PKG)" >&2
		HOST_INSTALLED=0
	fi
}

# ---- checks

# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
pkg_status() { in_root dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null; }
pkg_installed() { [ "$(pkg_status)" = "ii " ]; }
# removed, its conffile kept
pkg_removed() { [ "$(pkg_status)" = "rc " ] && files_there "$CONF"; }
# purged: dpkg forgot it (or knows it only as not installed)
pkg_purged() {
	local st
	st=$(pkg_status)
	files_gone "$CONF" && { [ -z "$st" ] || [ "$st" = "pn " ]; }
}
deb_named() { [[ $(basename "$DEB") == "${PKG}"_*_"$(dpkg --print-architecture)".deb ]]; }
no_strongswan() { ! in_root dpkg-query -W libstrongswan >/dev/null 2>&1; }

# Depends: the upstream version built against, >= and << VERSION.
pins_upstream() {
	local dep up
	dep=$(dpkg-deb -f "$DEB" Depends)
	up=$(dpkg-query -W -f='${Version}' libstrongswan | sed 's/-[^-]*$//')
	echo "Depends: $dep"
	[[ $dep == *"libstrongswan (>= $up)"* && $dep == *"libstrongswan (<< $up.)"* &&
		$dep == *"strongswan-libcharon (>= $up)"* &&
		$dep == *"strongswan-libcharon (<< $up.)"* ]]
}

mode_of() { in_root stat -c '%a %U:%G' "$1"; }
files_there() { local f; for f in "$@"; do [ -f "$R$f" ] || return 1; done; }
files_gone() { local f; for f in "$@"; do [ ! -e "$R$f" ] || return 1; done; }

man_pages_ok() {
	local m
	for m in "${MANS[@]}"; do
		zcat "$R$m" | grep -q '^\.TH ' || return 1
	done
}

ctl_help() {
	local out
	out=$(in_root "$CTL" --help) && [[ $out == usage:\ sasyncctl* ]] &&
		[[ $out == *"--uri URI"* ]]
}

charon_loaded_sasync() {
	grep 'loaded plugins:' "$R$TDIR/charon.log" | grep -qw sasync &&
		grep -q 'sasync: started as standby, SA sync enabled' "$R$TDIR/charon.log"
}

# the packaged .so is the one mapped, and nothing was preloaded
charon_maps_package() {
	local pid
	pid=$(e2e_charon_pid a) || return 1
	grep -q "usr/lib/ipsec/plugins/libstrongswan-sasync.so$" "/proc/$pid/maps" &&
		! tr '\0' '\n' <"/proc/$pid/environ" | grep -q '^LD_PRELOAD='
}

stats_ha() {
	local out
	# stderr: swanctl of the tree complains about the plugins Debian's
	# strongswan.d lists for it that are not installed there
	out=$(in_charon swanctl --stats --raw --uri "$URI" 2>"$E2E_DIR/swanctl.err") ||
		{ cat "$E2E_DIR/swanctl.err" >&2; return 1; }
	echo "swanctl --stats: ${out:0:160}..."
	[[ $out == *" ha {"*"resync="*"sync-tx="*"}"* ]]
}

ctl_sync_enabled() {
	in_charon "$CTL" --uri "$URI" --raw status | grep -qE '(^| )sync=enabled( |$)'
}

# ---- charon

write_conf() {
	mkdir -p "$R$TDIR" || return 1
	cat >"$R$TDIR/strongswan.conf" <<EOF
# generated by tests/e2e/test_package.sh
charon {
	load_modular = yes
	filelog {
		pk {
			path = $TDIR/charon.log
			time_format = %H:%M:%S
			append = no
			flush_line = yes
			default = 1
			app = 2
		}
	}
	plugins {
		include $CONF
		sasync {
			local = 127.0.0.1
			peers = $PARTNER
			secret = $SECRET
		}
		random { load = yes }
		nonce { load = yes }
		aes { load = yes }
		sha2 { load = yes }
		hmac { load = yes }
		kdf { load = yes }
		gcm { load = yes }
		openssl { load = yes }
		kernel-netlink { load = yes }
		socket-default { load = yes }
		vici { load = yes }
	}
}
EOF
}

charon_ready() {
	[ "$(cat "/proc/$1/comm" 2>/dev/null)" = charon ] &&
		[ -S "/proc/$1/root/run/charon-sasync.vici" ]
}

# charon of R in namespace pk-a, with a tmpfs /run (and /proc) of its own
charon_start() {
	local pid
	# shellcheck disable=SC2016 # $0 and $@ are for the inner sh
	ip netns exec "$(e2e_ns a)" unshare -m --propagation private sh -c '
		mount -t tmpfs -o mode=0755 pk-run "$0/run" || exit 1
		[ -z "$0" ] && exec "$@"
		mount -t proc pk-proc "$0/proc" && exec chroot "$0" "$@"' "$R" \
		env -u LD_PRELOAD "STRONGSWAN_CONF=$TDIR/strongswan.conf" /usr/lib/ipsec/charon \
		>"$E2E_DIR/charon.out" 2>&1 </dev/null {_E2E_LOCK_FD}>&- &
	pid=$!
	_e2e_track charon-a "$pid"
	e2e_wait_for "packaged charon (sasync socket)" 15 \
		eval "charon_ready $pid || ! _e2e_alive $pid"
	charon_ready "$pid" || { cat "$E2E_DIR/charon.out" >&2; return 1; }
}

# ---- test

e2e_init
trap 'pkg_cleanup; e2e_teardown' EXIT

case $SASYNC_PKG_MODE in
auto) if [ -s "$CHROOT_BASE" ]; then mode=chroot; else mode=host; fi ;;
chroot | host) mode=$SASYNC_PKG_MODE ;;
*) e2e_fail "SASYNC_PKG_MODE is auto, chroot or host, not '$SASYNC_PKG_MODE'" ;;
esac
if [ "$mode" = chroot ] && [ ! -s "$CHROOT_BASE" ]; then
	e2e_fail "no chroot base $CHROOT_BASE (bash scripts/setup.sh --chroot-base makes it)"
fi
echo "mode: $mode$([ "$mode" = host ] && [ "$SASYNC_PKG_MODE" = auto ] &&
	echo " (no chroot base $CHROOT_BASE: scripts/setup.sh makes it)")"

if [ -n "$SASYNC_DEB" ]; then
	DEB=$(realpath "$SASYNC_DEB")
else
	DEB=$(DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" \
		bash "$TOP/scripts/build-deb.sh" "$E2E_DIR/deb" 2>"$E2E_DIR/build.log" | tail -n 1)
	[ -f "$DEB" ] || { tail -n 30 "$E2E_DIR/build.log"; e2e_fail "scripts/build-deb.sh"; }
	echo "built $(basename "$DEB") in $(e2e_elapsed)s"
fi
e2e_check "package file is ${PKG}_<version>_<arch>.deb" deb_named
e2e_check "Depends pins libstrongswan and strongswan-libcharon to the upstream version built against" \
	pins_upstream

if [ "$mode" = chroot ]; then
	chroot_up || e2e_fail "unpack the chroot base into $E2E_DIR/root"
	TDIR=/sasync-test
	ln -s "$R$TDIR" "$E2E_DIR/a"    # e2e_log a, for the log dump on failure
	e2e_check "fresh tree has no strongSwan" no_strongswan
	cp "$DEB" "$R/tmp/" || e2e_fail "copy the .deb into the tree"
	in_root apt-get update -qq >"$E2E_DIR/apt.log" 2>&1 ||
		{ tail -n 20 "$E2E_DIR/apt.log"; e2e_fail "apt-get update in the tree"; }
	in_deb=/tmp/$(basename "$DEB")
else
	e2e_check "host mode: no $PKG on this machine yet" host_untouched
	TDIR=$E2E_DIR/a
	in_deb=$DEB
	HOST_INSTALLED=1
fi
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$in_deb" \
	>>"$E2E_DIR/apt.log" 2>&1 ||
	{ tail -n 20 "$E2E_DIR/apt.log"; e2e_fail "apt-get install $in_deb"; }
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
echo "installed in $(e2e_elapsed)s: $(in_root dpkg-query -W -f='${Package} ${Version}, ' \
	"$PKG" libstrongswan strongswan-libcharon strongswan-charon strongswan-swanctl)"
e2e_check "apt-get install ./$(basename "$DEB")" pkg_installed
e2e_check "plugin, sasyncctl, snippet and man pages installed" files_there "$PLUGIN" "$CTL" "$CONF" "${MANS[@]}"
e2e_check "$CONF is mode 0600 root:root" [ "$(mode_of "$CONF")" = "600 root:root" ]
e2e_check "man pages are roff" man_pages_ok
e2e_check "sasyncctl --help" ctl_help

_e2e_node_up a || e2e_fail "namespace $(e2e_ns a)"
write_conf || e2e_fail "strongswan.conf"
charon_start || e2e_fail "packaged charon with the sasync plugin"
e2e_check "charon loaded the sasync plugin, sync enabled (log)" charon_loaded_sasync
e2e_check "the packaged plugin is mapped, no LD_PRELOAD" charon_maps_package
e2e_check "swanctl --stats --raw --uri $URI has the ha section" stats_ha
e2e_check "sasyncctl status: sync enabled" ctl_sync_enabled
e2e_charon_kill a

in_root dpkg -r "$PKG" >>"$E2E_DIR/apt.log" 2>&1 || e2e_fail "dpkg -r $PKG"
e2e_check "dpkg -r: plugin, sasyncctl and man pages gone" files_gone "$PLUGIN" "$CTL" "${MANS[@]}"
e2e_check "dpkg -r: the snippet (conffile) stays" pkg_removed
in_root dpkg -P "$PKG" >>"$E2E_DIR/apt.log" 2>&1 || e2e_fail "dpkg -P $PKG"
HOST_INSTALLED=0
e2e_check "dpkg -P: snippet gone, package unknown to dpkg" pkg_purged

echo "package test runtime: $(e2e_elapsed)s"
e2e_summary
