#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Builds the Debian package strongswan-sasync_<version>_<arch>.deb from this
# checkout (committed or not), against the installed strongSwan, and prints
# its path as the last line on stdout (the build's own output goes to
# stderr).
#
# Usage (as root): scripts/build-deb.sh [OUTDIR]
#   OUTDIR   where the .deb, .buildinfo and .changes go
#            (default /tmp/strongswan-sasync-deb)
#
# The checkout is copied to OUTDIR/strongswan-sasync-<version>/ and built
# there, so no build product ends up in the repository; the copy is removed
# after a successful build. Missing Build-Depends are installed with apt-get
# (apt-get build-dep), the strongSwan header tree is prepared by
# scripts/setup.sh --headers (cached in /var/cache/strongswan-sasync).
#
# Environment:
#   DEB_BUILD_OPTIONS   passed on (e.g. nocheck: skip the unit tests)
#   SASYNC_HEADERS      a configured strongSwan header tree to use instead
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/strongswan-sasync-deb}

log() { echo "[build-deb] $*" >&2; }
die() { echo "[build-deb] ERROR: $*" >&2; exit 1; }

as_root() {
	[ "$(id -u)" = 0 ] || die "$* needs root"
}

apt_install() { # apt_install ARGS...: apt-get install/build-dep, one update on failure
	as_root "installing build dependencies"
	if ! DEBIAN_FRONTEND=noninteractive apt-get "$@" >&2; then
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get "$@" >&2
	fi
}

# ---- the source tree, copied
version=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$TOP/debian/changelog")
[ -n "$version" ] || die "no version in debian/changelog"
upstream=${version%-*}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
case "$OUT/" in
"$TOP"/*) die "OUTDIR $OUT is inside the checkout $TOP" ;;
esac
SRC=$OUT/strongswan-sasync-$upstream
rm -rf "$SRC"
rm -f "$OUT"/strongswan-sasync_"$version"_*.{deb,buildinfo,changes} \
	"$OUT"/strongswan-sasync-dbgsym_"$version"_*.deb
mkdir -p "$SRC"
if git -C "$TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# tracked and untracked files as they are now, minus what git ignores
	(cd "$TOP" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -e "$f" ] && printf '%s\0' "$f"
		done | tar --null -T - -cf -) | tar -C "$SRC" -xf -
else
	tar -C "$TOP" --exclude-vcs --exclude-vcs-ignores -cf - . | tar -C "$SRC" -xf -
fi
log "source copied to $SRC"

# ---- build dependencies
if ! command -v dpkg-checkbuilddeps >/dev/null 2>&1; then
	apt_install install -y -qq --no-install-recommends dpkg-dev
fi
if ! (cd "$SRC" && dpkg-checkbuilddeps >/dev/null 2>&1); then
	log "installing the Build-Depends of debian/control"
	apt_install build-dep -y -qq "$SRC/"
fi
(cd "$SRC" && dpkg-checkbuilddeps) || die "Build-Depends still missing"

# ---- strongSwan headers (debian/rules checks they match the installed one)
if [ -z "${SASYNC_HEADERS:-}" ]; then
	as_root "preparing the strongSwan headers (scripts/setup.sh --headers)"
	bash "$TOP/scripts/setup.sh" --headers >&2
fi

# ---- build
log "dpkg-buildpackage -b -uc -us in $SRC (DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-})"
(cd "$SRC" && dpkg-buildpackage -b -uc -us -Jauto) >&2 ||
	die "dpkg-buildpackage failed; the tree is kept in $SRC"

deb=$(find "$OUT" -maxdepth 1 -name "strongswan-sasync_${version}_*.deb" | head -n 1)
[ -n "$deb" ] || die "no strongswan-sasync_${version}_*.deb in $OUT"
rm -rf "$SRC"
log "built $(basename "$deb")"
echo "$deb"
