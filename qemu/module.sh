#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds contigmem.ko against a Rust-enabled kernel build tree and prints the module's path.
# Knobs: KDIR (default: the cached test kernel of FLAVOUR), MO (output directory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/env.sh"
say() { printf 'module: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

KDIR=${KDIR:-$("$here/kernel.sh")}
MO=${MO:-$repo/out/$FLAVOUR/module}

[ -d "$KDIR" ] || die "KDIR=$KDIR does not exist or is not a directory: give the build tree of a Rust-enabled kernel"
[ -f "$KDIR/Makefile" ] && [ -f "$KDIR/.config" ] ||
	die "KDIR=$KDIR is not a configured kernel build tree (it needs Makefile and .config; for a tree of your own: make olddefconfig && make)"
grep -qx 'CONFIG_RUST=y' "$KDIR/.config" ||
	die "the kernel in $KDIR was built without CONFIG_RUST=y: enable Rust support (make menuconfig, General setup -> Rust support) and rebuild it"
[ -f "$KDIR/rust/libkernel.rmeta" ] || [ -f "$KDIR/rust/kernel.rmeta" ] ||
	die "$KDIR has no Rust metadata (rust/libkernel.rmeta): distribution header packages lack it. Build the kernel tree yourself (make prepare && make) or use the project's test kernel (make kernel)"

mkdir -p "$MO"
say "building contigmem.ko against $KDIR"
kmake -C "$KDIR" M="$repo" MO="$MO" -s modules >&2
ko="$MO/rust/contigmem.ko"
[ -f "$ko" ] || die "the build produced no $ko"
echo "$ko"
