#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Prepares a separate build tree of this checkout, for builds with other
# compilers or flags (tests/sanitize.sh, tests/fuzz/run.sh) that must not
# touch the normal in-tree build.
#
# Usage: tests/build-tree.sh DIR [CONFIGURE ARGS...]
#
# Copies the sources as they are now (committed or not, without build
# output: what git ignores stays behind) to DIR/src, runs autoreconf there
# and configures out of tree in DIR/obj (a VPATH build: ../src/configure
# ARGS). DIR/src and DIR/obj are made afresh; anything else in DIR is kept
# (e.g. a fuzzing corpus). Then build with make -C DIR/obj.
#
# A VPATH build of the checkout itself is not possible once it is
# configured in tree (automake refuses a second configuration of the same
# source directory), hence the copy.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)

if [ $# -lt 1 ]; then
	echo "usage: $0 DIR [CONFIGURE ARGS...]" >&2
	exit 2
fi
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
shift
case "$TOP/" in
"$DIR"/*) echo "build-tree: $DIR contains the checkout $TOP" >&2; exit 2 ;;
esac

# the build directory itself stays out of the copy when it is in the checkout
rel=
case "$DIR/" in
"$TOP"/*) rel=${DIR#"$TOP"/} ;;
esac

rm -rf "$DIR/src" "$DIR/obj"
mkdir -p "$DIR/src" "$DIR/obj"
if git -C "$TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$TOP" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			case "$f" in "$rel"/*) [ -n "$rel" ] && continue ;; esac
			[ -e "$f" ] && printf '%s\0' "$f"
		done | tar --null -T - -cf -) | tar -C "$DIR/src" -xf -
else
	tar -C "$TOP" --exclude-vcs --exclude-vcs-ignores ${rel:+--exclude="./$rel"} \
		-cf - . | tar -C "$DIR/src" -xf -
	# a release tarball ships configure: regenerate it all the same, and
	# drop an in-tree configuration, which would stop the VPATH build
	rm -f "$DIR/src/config.status" "$DIR/src/config.log"
fi

echo "build-tree: sources copied to $DIR/src"
(cd "$DIR/src" && autoreconf -fi) >"$DIR/autoreconf.log" 2>&1 || {
	cat "$DIR/autoreconf.log" >&2
	echo "build-tree: autoreconf failed" >&2
	exit 1
}
echo "build-tree: configuring in $DIR/obj: ../src/configure $*"
(cd "$DIR/obj" && ../src/configure "$@") >"$DIR/configure.log" 2>&1 || {
	tail -n 30 "$DIR/configure.log" >&2
	echo "build-tree: configure failed, see $DIR/obj/config.log" >&2
	exit 1
}
