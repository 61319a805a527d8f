#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make rust-analyzer`: writes rust-project.json for the module crate (rust/contigmem_main.rs) with the
# kernel's own generator for external modules, so rust-analyzer in an editor sees the `kernel`
# crate and the config's cfgs. Prints the file's path.
# Knobs: KDIR (default: the cached test kernel of FLAVOUR), MO (module output directory),
# OUT (default: rust-project.json at the repo root, where rust-analyzer looks for it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/env.sh"
say() { printf 'rust-analyzer: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

KDIR=${KDIR:-$("$here/kernel.sh")}
MO=${MO:-$repo/out/$FLAVOUR/module}
OUT=${OUT:-$repo/rust-project.json}

grep -qx 'CONFIG_RUST=y' "$KDIR/.config" 2>/dev/null ||
	die "KDIR=$KDIR is not a configured kernel tree with CONFIG_RUST=y"
mkdir -p "$MO"
say "generating rust-project.json against $KDIR"
kmake -C "$KDIR" M="$repo" MO="$MO" -s rust-analyzer >&2
python3 -m json.tool "$MO/rust-project.json" >/dev/null || die "$MO/rust-project.json is not valid JSON"
[ "$MO/rust-project.json" -ef "$OUT" ] || cp "$MO/rust-project.json" "$OUT"
echo "$OUT"
