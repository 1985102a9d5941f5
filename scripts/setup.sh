#!/bin/bash
# Installs the Debian packages strongswan-sasync needs and prepares the
# strongSwan header tree from the Debian source package (cached), and the
# minimal Debian tree tests/e2e/test_package.sh installs the package into.
# Usage: scripts/setup.sh [--no-install | --headers | --chroot-base]
#   (none)         everything
#   --no-install   the header tree only; changes nothing in apt
#   --headers      deb-src entries and the header tree (scripts/build-deb.sh)
#   --chroot-base  the minimal Debian tree only (needs debootstrap)
set -euo pipefail

CACHE=${SASYNC_CACHE:-/var/cache/strongswan-sasync}
HDR=$CACHE/headers
SRCDIR=$CACHE/src

PKGS="charon-systemd strongswan-charon strongswan-swanctl libcharon-extra-plugins
      libstrongswan-extra-plugins libcharon-extauth-plugins strongswan-libcharon
      libstrongswan libstrongswan-standard-plugins strongswan-pki build-essential autoconf automake libtool pkg-config
      check valgrind iproute2 iputils-ping iputils-arping tcpdump tshark
      nftables keepalived dpkg-dev devscripts quilt libgmp-dev libssl-dev
      clang libclang-rt-14-dev procps psmisc util-linux python3 kmod shellcheck
      debhelper debootstrap zstd"

# minimal Debian tree for the package test (debootstrap --variant=minbase of
# this system's release, packed once: making it takes about 3 minutes)
CHROOT_BASE=$CACHE/chroot-base.tar.zst
MIRROR=${SASYNC_MIRROR:-http://deb.debian.org/debian}

log() { echo "[setup] $*"; }

enable_deb_src() {
	local f=/etc/apt/sources.list.d/debian.sources
	if [ -f "$f" ] && ! grep -q 'deb-src' "$f"; then
		sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
		rm -f "$CACHE/.apt-updated"
	fi
	if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list &&
	   ! grep -q '^deb-src ' /etc/apt/sources.list; then
		local src
		src=$(sed -n 's/^deb /deb-src /p' /etc/apt/sources.list)
		printf '%s\n' "$src" >> /etc/apt/sources.list
		rm -f "$CACHE/.apt-updated"
	fi
}

install_packages() {
	local missing=""
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	log "installing:$missing"
	if [ ! -f "$CACHE/.apt-updated" ]; then
		apt-get update -qq
		touch "$CACHE/.apt-updated"
	fi
	echo "wireshark-common wireshark-common/install-setuid boolean false" |
		debconf-set-selections
	# shellcheck disable=SC2086  # one word per package
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$missing >/dev/null
	# the packaged daemons must not run on the host: tests start their own
	systemctl disable --now strongswan-starter strongswan keepalived \
		>/dev/null 2>&1 || true
	pkill -x charon-systemd 2>/dev/null || true
}

# the exact source may be gone from the archive; any Debian revision of the
# same upstream release shares the ABI (e.g. +deb12u5 for the installed u6)
fetch_source() {
	local want=$1 upstream v
	upstream=${want%%-*}
	cd "$SRCDIR"
	for v in $want $(apt-cache showsrc strongswan | sed -n 's/^Version: //p' |
			grep "^$upstream-" | sort -rV); do
		if apt-get source -qq "strongswan=$v" >/dev/null 2>&1; then
			log "fetched strongswan source $v"
			cd - >/dev/null
			return 0
		fi
	done
	echo "[setup] ERROR: no strongswan $upstream source package available" >&2
	exit 1
}

# cached: same package version, and complete (configure checks the rest)
headers_cached() {
	local ver
	ver=$(dpkg-query -W -f='${Version}' libstrongswan)
	[ -f "$HDR/.version" ] && [ "$(cat "$HDR/.version")" = "$ver" ] &&
	   grep -q '^#define ME ' "$HDR/config.h" 2>/dev/null &&
	   [ -f "$HDR/libvici.h" ] && [ -f "$HDR/libcharon/daemon.h" ] &&
	   [ -e "$CACHE/strongswan-src" ]
}

prepare_headers() {
	local ver
	ver=$(dpkg-query -W -f='${Version}' libstrongswan)
	if headers_cached; then
		log "headers cached in $HDR ($ver)"
		return 0
	fi
	log "preparing strongSwan headers for $ver"
	rm -rf "$SRCDIR" "$HDR"
	mkdir -p "$SRCDIR" "$HDR"
	fetch_source "$ver" 
	local tree
	tree=$(find "$SRCDIR" -maxdepth 1 -mindepth 1 -type d -name 'strongswan-*' | head -1)
	# dpkg-source applies debian/patches; make sure (constant_time.h etc.)
	(cd "$tree" && if [ -d debian/patches ] && [ ! -d .pc ]; then
		QUILT_PATCHES=debian/patches quilt push -a -q >/dev/null || true; fi)
	(cd "$tree" && ./configure -q --enable-mediation --disable-gmp \
		--enable-kernel-libipsec --enable-ha --enable-vici --enable-swanctl \
		--prefix=/usr --sysconfdir=/etc --libexecdir=/usr/lib \
		--with-ipseclibdir=/usr/lib/ipsec --with-plugindir=/usr/lib/ipsec/plugins \
		>/dev/null)
	(cd "$tree/src" && find libstrongswan libcharon libipsec libtls -name "*.h" -print0 |
		xargs -0 cp --parents -t "$HDR")
	cp "$tree/config.h" "$HDR/"
	cp "$tree/src/libcharon/plugins/vici/libvici.h" "$HDR/"
	ln -sfn "$tree" "$CACHE/strongswan-src"
	echo "$ver" > "$HDR/.version"
	log "headers ready in $HDR"
}

# debootstrap in a mount namespace of its own: the /proc and /sys it mounts
# in the tree go away with it even if it fails half way
prepare_chroot_base() {
	local suite arch tmp
	if [ -s "$CHROOT_BASE" ]; then
		log "chroot base cached in $CHROOT_BASE"
		return 0
	fi
	suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	arch=$(dpkg --print-architecture)
	log "debootstrap --variant=minbase $suite ($arch) from $MIRROR, once (about 3 minutes)"
	tmp=$(mktemp -d "$CACHE/chroot-base.XXXXXX")
	if ! unshare -m --propagation private debootstrap --variant=minbase \
			--arch="$arch" "$suite" "$tmp/root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1; then
		tail -n 20 "$tmp/debootstrap.log" >&2
		rm -rf --one-file-system "$tmp"
		echo "[setup] ERROR: debootstrap failed" >&2
		exit 1
	fi
	rm -f "$tmp"/root/var/cache/apt/archives/*.deb
	tar -C "$tmp/root" --numeric-owner -cf - . | zstd -q -T0 -o "$tmp/base.tar.zst"
	mv "$tmp/base.tar.zst" "$CHROOT_BASE"
	rm -rf --one-file-system "$tmp"
	log "chroot base ready in $CHROOT_BASE"
}

mkdir -p "$CACHE"
case "${1:-}" in
--no-install)
	prepare_headers ;;
--headers)
	if ! headers_cached; then
		enable_deb_src
		if [ ! -f "$CACHE/.apt-updated" ]; then
			apt-get update -qq
			touch "$CACHE/.apt-updated"
		fi
	fi
	prepare_headers ;;
--chroot-base)
	prepare_chroot_base ;;
"")
	enable_deb_src
	install_packages
	prepare_headers
	prepare_chroot_base ;;
*)
	echo "usage: scripts/setup.sh [--no-install | --headers | --chroot-base]" >&2
	exit 2 ;;
esac
