#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host test (TAP): DKMS builds and installs contigmem with the repo's dkms.conf, against a kernel
# build tree given with --kernelsourcedir (no /lib/modules/<release>/build needed). Everything
# happens in temporary DKMS, source and install trees (--dkmstree, --sourcetree, --installtree,
# --no-depmod), so the host's /usr/src, /var/lib/dkms and /lib/modules stay untouched.
# Knobs: KDIR (default: the cached test kernel).
set -uo pipefail
. "$(dirname "$0")/lib/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kdir=$(test_kdir)
release=$(cat "$kdir/include/config/kernel.release" 2>/dev/null)
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$repo/dkms.conf")
trees=(--dkmstree "$tmp/dkms" --sourcetree "$tmp/src" --installtree "$tmp/modules" --no-depmod)

if ! command -v dkms >/dev/null; then
	ok "dkms is installed" 1 "dkms not found: run make deps"
	finish
	exit
fi
if [ "$(id -u)" -ne 0 ]; then
	skip "dkms add, build, install, remove" "dkms needs root"
	finish
	exit
fi

# Only what the build needs: the kernel's Kbuild files, the crate, the header, the scripts.
src=$tmp/src/contigmem-$ver
mkdir -p "$src" "$tmp/dkms" "$tmp/modules/$release"
cp -r "$repo"/{Kbuild,Makefile,dkms.conf,rust,include,qemu} "$src/"

out=$(dkms add -m contigmem -v "$ver" "${trees[@]}" 2>&1)
ok "dkms add contigmem/$ver" $? "$out"

out=$(dkms build -m contigmem -v "$ver" -k "$release" --kernelsourcedir "$kdir" "${trees[@]}" 2>&1)
rc=$?
ko=$tmp/dkms/contigmem/$ver/$release/x86_64/module/contigmem.ko
[ $rc -eq 0 ] && [ "$(modinfo -F vermagic "$ko" 2>/dev/null | cut -d' ' -f1)" = "$release" ]
ok "dkms build -k $release --kernelsourcedir KDIR leaves contigmem.ko for $release" $? \
	"rc=$rc, expected $ko: $out$(cat "$tmp/dkms/contigmem/$ver/build/make.log" 2>/dev/null)"

out=$(dkms install -m contigmem -v "$ver" -k "$release" --kernelsourcedir "$kdir" "${trees[@]}" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ -f "$tmp/modules/$release/updates/dkms/contigmem.ko" ]
ok "dkms install puts it in updates/dkms/" $? "rc=$rc: $out"

out=$(dkms status -m contigmem "${trees[@]}" 2>&1)
grep -q "contigmem/$ver, $release, .*: installed" <<< "$out"
ok "dkms status shows it installed" $? "$out"

out=$(dkms remove -m contigmem -v "$ver" --all "${trees[@]}" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ ! -e "$tmp/modules/$release/updates/dkms/contigmem.ko" ] && [ ! -e "$tmp/dkms/contigmem/$ver" ]
ok "dkms remove --all removes it" $? "rc=$rc: $out"

finish
