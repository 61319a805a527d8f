#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make install` / `make uninstall`: contigmem.ko through the kernel's own modules_install for
# KDIR (to $DESTDIR/lib/modules/<release>/$INSTALL_MOD_DIR/, then depmod) and the uapi header to
# $DESTDIR$PREFIX/include/linux/contigmem.h.
# Usage: qemu/install.sh [install|uninstall]
# Knobs: KDIR (default: the cached test kernel of FLAVOUR), MO (module output directory),
# DESTDIR (staging root, default none), PREFIX (/usr/local), INSTALL_MOD_DIR (updates).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/env.sh"
say() { printf 'install: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

mode=${1:-install}
KDIR=${KDIR:-$("$here/kernel.sh")}
MO=${MO:-$repo/out/$FLAVOUR/module}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
INSTALL_MOD_DIR=${INSTALL_MOD_DIR:-updates}
export KDIR MO

release=$(cat "$KDIR/include/config/kernel.release" 2>/dev/null) ||
	die "KDIR=$KDIR has no include/config/kernel.release: not a built kernel tree"
moddir=$DESTDIR/lib/modules/$release/$INSTALL_MOD_DIR
ko=$moddir/rust/contigmem.ko	# modules_install keeps the Kbuild path (obj-m += rust/)
header=$DESTDIR$PREFIX/include/linux/contigmem.h

case $mode in
install)
	"$here/module.sh" >/dev/null
	say "contigmem.ko -> $ko (modules_install for $release)"
	kmake -C "$KDIR" M="$repo" MO="$MO" INSTALL_MOD_PATH="$DESTDIR" \
		INSTALL_MOD_DIR="$INSTALL_MOD_DIR" -s modules_install >&2
	say "contigmem.h -> $header"
	install -D -m 0644 "$repo/include/uapi/linux/contigmem.h" "$header"
	;;
uninstall)
	say "removing $ko and $header"
	rm -f "$ko" "$ko".{gz,xz,zst} "$header"
	rmdir "$moddir/rust" 2>/dev/null || true
	if [ -f "$DESTDIR/lib/modules/$release/modules.dep" ]; then
		say "depmod $release"
		PATH="$PATH:/sbin" depmod -a ${DESTDIR:+-b "$DESTDIR"} "$release"
	fi
	;;
*)
	die "usage: $0 [install|uninstall]"
	;;
esac
