#!/bin/bash
# Installs the Debian packages strongswan-sasync needs and prepares the
# strongSwan header tree from the Debian source package (cached).
# Usage: scripts/setup.sh [--no-install]
set -euo pipefail

CACHE=${SASYNC_CACHE:-/var/cache/strongswan-sasync}
HDR=$CACHE/headers
SRCDIR=$CACHE/src

PKGS="charon-systemd strongswan-charon strongswan-swanctl libcharon-extra-plugins
      libstrongswan-extra-plugins libcharon-extauth-plugins strongswan-libcharon
      libstrongswan libstrongswan-standard-plugins strongswan-pki build-essential autoconf automake libtool pkg-config
      check valgrind iproute2 iputils-ping iputils-arping tcpdump tshark
      nftables keepalived dpkg-dev devscripts quilt libgmp-dev libssl-dev
      clang libclang-rt-14-dev procps psmisc util-linux python3 kmod shellcheck"

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

prepare_headers() {
	local ver
	ver=$(dpkg-query -W -f='${Version}' libstrongswan)
	# cached: same package version, and complete (configure checks the rest)
	if [ -f "$HDR/.version" ] && [ "$(cat "$HDR/.version")" = "$ver" ] &&
	   grep -q '^#define ME ' "$HDR/config.h" 2>/dev/null &&
	   [ -f "$HDR/libvici.h" ] && [ -f "$HDR/libcharon/daemon.h" ] &&
	   [ -e "$CACHE/strongswan-src" ]; then
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

mkdir -p "$CACHE"
if [ "${1:-}" != "--no-install" ]; then
	enable_deb_src
	install_packages
fi
prepare_headers
