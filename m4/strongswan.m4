# strongswan.m4 - locate the strongSwan headers and the installed libraries
# and make sure they describe the same build.
#
# SPDX-License-Identifier: GPL-2.0-or-later
#
# SASYNC_CHECK_STRONGSWAN
# -----------------------
# Options:
#   --with-strongswan-headers=DIR  header tree with config.h, libstrongswan/,
#                                  libcharon/ (default:
#                                  /var/cache/strongswan-sasync/headers, else
#                                  the pkg-config module "strongswan")
#   --with-ipseclibdir=DIR         installed libstrongswan/libcharon
#                                  (default: /usr/lib/ipsec)
#   --with-plugindir=DIR           where charon loads plugins from
#                                  (default: $ipseclibdir/plugins)
#   --with-strongswan-confd=DIR    strongswan.d snippets of charon
#                                  (default: /etc/strongswan.d/charon)
#
# Substitutes STRONGSWAN_HEADERS, STRONGSWAN_CFLAGS, STRONGSWAN_LIBS,
# STRONGSWAN_VERSION, ipseclibdir, plugindir, strongswan_confdir.
#
# Fails unless
#   (a) the headers' config.h and the installed libcharon agree on mediation
#       (ME changes the layout of ike_sa_t, peer_cfg_t, daemon_t, ...),
#   (b) the headers' VERSION equals the installed charon's version,
#   (c) a program using library_init()/libcharon_init() compiles, links
#       and runs against them.
AC_DEFUN([SASYNC_CHECK_STRONGSWAN],
[
AC_REQUIRE([PKG_PROG_PKG_CONFIG])

AC_ARG_WITH([strongswan-headers],
	[AS_HELP_STRING([--with-strongswan-headers=DIR],
		[configured strongSwan header tree (config.h, libstrongswan/, libcharon/)
		 @<:@default=/var/cache/strongswan-sasync/headers, else pkg-config strongswan@:>@])],
	[sasync_sw_headers=$withval], [sasync_sw_headers=])
AC_ARG_WITH([ipseclibdir],
	[AS_HELP_STRING([--with-ipseclibdir=DIR],
		[installed libstrongswan and libcharon @<:@default=/usr/lib/ipsec@:>@])],
	[ipseclibdir=$withval], [ipseclibdir=/usr/lib/ipsec])
AC_ARG_WITH([plugindir],
	[AS_HELP_STRING([--with-plugindir=DIR],
		[charon plugin directory @<:@default=IPSECLIBDIR/plugins@:>@])],
	[plugindir=$withval], [plugindir='${ipseclibdir}/plugins'])
AC_ARG_WITH([strongswan-confd],
	[AS_HELP_STRING([--with-strongswan-confd=DIR],
		[strongswan.d directory of charon's plugin snippets
		 @<:@default=/etc/strongswan.d/charon@:>@])],
	[strongswan_confdir=$withval], [strongswan_confdir=/etc/strongswan.d/charon])

sasync_sw_fail() {
	AC_MSG_ERROR([$[]1
strongSwan headers: ${sasync_sw_headers:-none}
installed libraries: $ipseclibdir
Run scripts/setup.sh (as root) to install strongSwan and prepare matching
headers, or pass --with-strongswan-headers=DIR / --with-ipseclibdir=DIR.])
}

# -- header tree ------------------------------------------------------------
sasync_sw_cflags_extra=
AS_CASE([$sasync_sw_headers],
	[yes|""],
		[sasync_sw_headers=
		 AS_IF([test -f /var/cache/strongswan-sasync/headers/config.h],
			[sasync_sw_headers=/var/cache/strongswan-sasync/headers],
			[AS_IF([test -n "$PKG_CONFIG" && $PKG_CONFIG --exists strongswan 2>/dev/null],
				[sasync_sw_headers=`$PKG_CONFIG --variable=includedir strongswan`/strongswan
				 sasync_sw_cflags_extra=`$PKG_CONFIG --cflags strongswan`
				 AC_MSG_NOTICE([using strongSwan headers from pkg-config: $sasync_sw_headers])])])],
	[no],
		[AC_MSG_ERROR([strongSwan headers are required, --without-strongswan-headers is not supported])])

AC_MSG_CHECKING([for strongSwan headers])
AS_IF([test -z "$sasync_sw_headers"],
	[AC_MSG_RESULT([not found])
	 sasync_sw_fail "no strongSwan header tree found (default /var/cache/strongswan-sasync/headers, no pkg-config module strongswan)"])
AS_IF([test ! -d "$sasync_sw_headers"],
	[AC_MSG_RESULT([no])
	 sasync_sw_fail "strongSwan header directory '$sasync_sw_headers' does not exist"])
sasync_sw_headers=`cd "$sasync_sw_headers" && pwd`
AS_IF([test ! -f "$sasync_sw_headers/config.h"],
	[AC_MSG_RESULT([no])
	 sasync_sw_fail "'$sasync_sw_headers' has no config.h: not a configured strongSwan header tree"])
AS_IF([test -f "$sasync_sw_headers/libstrongswan/library.h"],
	[sasync_sw_inc_lib="$sasync_sw_headers/libstrongswan"],
	[AS_IF([test -f "$sasync_sw_headers/library.h"],
		[sasync_sw_inc_lib="$sasync_sw_headers"],
		[AC_MSG_RESULT([no])
		 sasync_sw_fail "'$sasync_sw_headers' has no libstrongswan/library.h"])])
AS_IF([test -f "$sasync_sw_headers/libcharon/daemon.h"],
	[sasync_sw_inc_charon="$sasync_sw_headers/libcharon"],
	[AS_IF([test -f "$sasync_sw_headers/charon/daemon.h"],
		[sasync_sw_inc_charon="$sasync_sw_headers/charon"],
		[AC_MSG_RESULT([no])
		 sasync_sw_fail "'$sasync_sw_headers' has no libcharon/daemon.h (libcharon headers are needed)"])])
AC_MSG_RESULT([$sasync_sw_headers])

STRONGSWAN_HEADERS=$sasync_sw_headers
STRONGSWAN_CFLAGS="-include $sasync_sw_headers/config.h -I$sasync_sw_inc_lib -I$sasync_sw_inc_charon $sasync_sw_cflags_extra"
STRONGSWAN_LIBS="-L$ipseclibdir -Wl,-rpath,$ipseclibdir -lstrongswan -lcharon"

# -- installed libraries ----------------------------------------------------
AC_MSG_CHECKING([for installed libstrongswan and libcharon in $ipseclibdir])
AS_IF([test -e "$ipseclibdir/libstrongswan.so.0" && test -e "$ipseclibdir/libcharon.so.0"],
	[AC_MSG_RESULT([yes])],
	[AC_MSG_RESULT([no])
	 sasync_sw_fail "libstrongswan/libcharon not found in '$ipseclibdir'"])

# libtool links against lib*.so; Debian ships the unversioned links in the
# runtime packages for /usr/lib/ipsec, but be explicit about it.
AS_IF([test ! -e "$ipseclibdir/libstrongswan.so" -o ! -e "$ipseclibdir/libcharon.so"],
	[sasync_sw_fail "'$ipseclibdir' lacks the unversioned libstrongswan.so/libcharon.so links needed for linking"])

sasync_sw_save_CPPFLAGS=$CPPFLAGS
sasync_sw_save_CFLAGS=$CFLAGS
sasync_sw_save_LIBS=$LIBS
CFLAGS="$CFLAGS $STRONGSWAN_CFLAGS"
AC_LANG_PUSH([C])

# -- (a) mediation ------------------------------------------------------------
AC_MSG_CHECKING([whether the strongSwan headers enable mediation (ME)])
AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[
#ifndef ME
# error headers built without --enable-mediation
#endif
]], [[]])], [sasync_sw_hdr_me=yes], [sasync_sw_hdr_me=no])
AC_MSG_RESULT([$sasync_sw_hdr_me])

AC_MSG_CHECKING([whether the installed libcharon has mediation (ike_me_create)])
CFLAGS=$sasync_sw_save_CFLAGS
LIBS="$STRONGSWAN_LIBS $sasync_sw_save_LIBS"
AC_LINK_IFELSE([AC_LANG_CALL([], [ike_me_create])],
	[sasync_sw_lib_me=yes], [sasync_sw_lib_me=no])
AC_MSG_RESULT([$sasync_sw_lib_me])
LIBS=$sasync_sw_save_LIBS
CFLAGS="$sasync_sw_save_CFLAGS $STRONGSWAN_CFLAGS"

AS_IF([test "$sasync_sw_hdr_me" != "$sasync_sw_lib_me"],
	[AS_IF([test "$sasync_sw_lib_me" = yes],
		[sasync_sw_fail "strongSwan headers and installed libcharon disagree on mediation:
the installed libcharon was built with --enable-mediation (it exports ike_me_create)
but $sasync_sw_headers/config.h does not define ME. The struct layouts of
ike_sa_t, peer_cfg_t and daemon_t differ; the plugin would crash charon.
Reconfigure the header tree with --enable-mediation (scripts/setup.sh does)."],
		[sasync_sw_fail "strongSwan headers and installed libcharon disagree on mediation:
$sasync_sw_headers/config.h defines ME (--enable-mediation) but the installed
libcharon does not export ike_me_create. The struct layouts differ."])])
AS_IF([test "$sasync_sw_hdr_me" = no],
	[AC_MSG_WARN([neither the headers nor libcharon have mediation; Debian's strongSwan does])])

# -- (b) version ---------------------------------------------------------------
AC_MSG_CHECKING([for the strongSwan version of the headers])
STRONGSWAN_VERSION=`sed -n 's/^@%:@define VERSION "\(.*\)"/\1/p' "$sasync_sw_headers/config.h"`
AS_IF([test -z "$STRONGSWAN_VERSION"],
	[AC_MSG_RESULT([unknown])
	 sasync_sw_fail "no VERSION in $sasync_sw_headers/config.h"])
AC_MSG_RESULT([$STRONGSWAN_VERSION])

AC_MSG_CHECKING([for the version of the installed charon])
sasync_sw_inst_version=
AS_IF([test -x "$ipseclibdir/charon"],
	[sasync_sw_timeout=
	 AS_IF([command -v timeout >/dev/null 2>&1], [sasync_sw_timeout="timeout 20"])
	 sasync_sw_inst_version=`$sasync_sw_timeout "$ipseclibdir/charon" --version 2>/dev/null |
		sed -n 's/.*strongSwan \(@<:@0-9@:>@@<:@0-9.a-z@:>@*\).*/\1/p' | head -n 1`])
AS_IF([test -z "$sasync_sw_inst_version" && command -v dpkg-query >/dev/null 2>&1],
	[sasync_sw_inst_version=`dpkg-query -W -f='${Version}' libstrongswan 2>/dev/null |
		sed 's/^@<:@0-9@:>@*://; s/-@<:@^-@:>@*$//; s/@<:@+~@:>@dfsg.*//'`])
AS_IF([test -z "$sasync_sw_inst_version"],
	[AC_MSG_RESULT([unknown])
	 sasync_sw_fail "cannot tell the version of the installed strongSwan (no runnable $ipseclibdir/charon, no dpkg package libstrongswan)"])
AC_MSG_RESULT([$sasync_sw_inst_version])
AS_IF([test "x$sasync_sw_inst_version" != "x$STRONGSWAN_VERSION"],
	[sasync_sw_fail "strongSwan version mismatch: headers are $STRONGSWAN_VERSION, installed charon is $sasync_sw_inst_version.
Prepare headers from the source of the installed release (scripts/setup.sh)."])

# -- (c) compile, link and run ---------------------------------------------
AC_MSG_CHECKING([whether a program using library_init() builds and runs against strongSwan])
LIBS="$STRONGSWAN_LIBS $sasync_sw_save_LIBS"
m4_define([sasync_sw_test_program], [AC_LANG_PROGRAM([[
#include <library.h>
#include <daemon.h>
#include <sa/ike_sa.h>
#include <config/peer_cfg.h>
]], [[
	int ok;
	ike_sa_t *ike_sa = NULL;
	peer_cfg_t *peer_cfg = NULL;

	(void)ike_sa; (void)peer_cfg;
	/* an empty config: don't depend on /etc/strongswan.conf */
	ok = library_init("", "sasync-configure");
	if (ok)
	{
		ok = libcharon_init();
		libcharon_deinit();
	}
	library_deinit();
	return ok ? 0 : 1;
]])])
AC_RUN_IFELSE([sasync_sw_test_program],
	[AC_MSG_RESULT([yes])],
	[AC_MSG_RESULT([no])
	 sasync_sw_fail "a test program using library_init()/libcharon_init() failed to compile, link or run (see config.log)"],
	[AC_LINK_IFELSE([sasync_sw_test_program],
		[AC_MSG_RESULT([links (cross compiling, not run)])],
		[AC_MSG_RESULT([no])
		 sasync_sw_fail "a test program using library_init() failed to compile or link (see config.log)"])])

AC_LANG_POP([C])
CPPFLAGS=$sasync_sw_save_CPPFLAGS
CFLAGS=$sasync_sw_save_CFLAGS
LIBS=$sasync_sw_save_LIBS

AC_SUBST([STRONGSWAN_HEADERS])
AC_SUBST([STRONGSWAN_CFLAGS])
AC_SUBST([STRONGSWAN_LIBS])
AC_SUBST([STRONGSWAN_VERSION])
AC_SUBST([ipseclibdir])
AC_SUBST([plugindir])
AC_SUBST([strongswan_confdir])
])
