#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The main job: installs what it needs, builds, and runs the failover demo
# (demo/failover.sh). As root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -x configure ] || autoreconf -fi >/dev/null
[ -f Makefile ] || ./configure -q
make -j2 -s >/dev/null
exec bash demo/failover.sh
