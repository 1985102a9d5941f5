#!/bin/sh
# Stands in for the unit tests when configure found no libcheck.
echo "SKIP: unit tests need libcheck (Debian package 'check', pkg-config check); install it and re-run ./configure" >&2
exit 77
