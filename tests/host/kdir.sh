#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host test (TAP): building against your own kernel. qemu/module.sh refuses a KDIR that does not
# exist, lacks CONFIG_RUST=y or lacks the Rust metadata, each with a message that says what to
# do, and builds against a real Rust-enabled tree. Knobs: KDIR (the real tree; default: the
# cached test kernel).
set -uo pipefail
. "$(dirname "$0")/lib/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kdir=$(test_kdir)

# expect_refusal NAME KDIR PATTERN...: module.sh must fail and its message match every pattern.
expect_refusal() {
	local name=$1 dir=$2 out rc p
	shift 2
	out=$(KDIR="$dir" MO="$tmp/mo" "$repo/qemu/module.sh" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		ok "$name" 1 "expected module.sh to fail, it succeeded: $out"
		return
	fi
	for p in "$@"; do
		grep -qi -- "$p" <<< "$out" || { ok "$name" 1 "expected the message to mention '$p', saw: $out"; return; }
	done
	ok "$name" 0
}

expect_refusal "a KDIR that does not exist is refused" "$tmp/nonexistent" "does not exist"

mkdir -p "$tmp/norust" "$tmp/normeta/rust"
touch "$tmp/norust/Makefile" "$tmp/normeta/Makefile"
printf 'CONFIG_MODULES=y\n# CONFIG_RUST is not set\n' > "$tmp/norust/.config"
printf 'CONFIG_MODULES=y\nCONFIG_RUST=y\n' > "$tmp/normeta/.config"
expect_refusal "a kernel without CONFIG_RUST=y is refused" "$tmp/norust" "CONFIG_RUST=y"
expect_refusal "a kernel without Rust metadata is refused (distribution headers)" "$tmp/normeta" \
	"Rust metadata" "libkernel.rmeta" "distribution"
mkdir -p "$tmp/empty"
expect_refusal "a directory that is no kernel tree is refused" "$tmp/empty" "Makefile and .config"

out=$(KDIR="$kdir" MO="$tmp/mo" "$repo/qemu/module.sh" 2>&1)
rc=$?
ko=$(tail -n1 <<< "$out")
release=$(cat "$kdir/include/config/kernel.release" 2>/dev/null)
[ $rc -eq 0 ] && [ "$ko" = "$tmp/mo/rust/contigmem.ko" ] && [ -f "$ko" ] &&
	[ "$(modinfo -F vermagic "$ko" | cut -d' ' -f1)" = "$release" ]
ok "the real tree $kdir builds contigmem.ko for $release" $? \
	"expected rc 0 and $tmp/mo/rust/contigmem.ko with vermagic $release, saw rc=$rc: $out"

finish
