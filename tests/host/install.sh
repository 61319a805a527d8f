#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host test (TAP): `make install` and `make uninstall` into a DESTDIR. The module goes where the
# kernel's modules_install puts external modules (lib/modules/<release>/updates/, keeping the
# Kbuild path rust/), the header to <prefix>/include/linux/, and the header compiles on its own
# (C and C++). Knobs: KDIR (default: the cached test kernel).
set -uo pipefail
. "$(dirname "$0")/lib/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kdir=$(test_kdir)
dest=$tmp/dest
release=$(cat "$kdir/include/config/kernel.release" 2>/dev/null)
ko=$dest/lib/modules/$release/updates/rust/contigmem.ko
header=$dest/usr/local/include/linux/contigmem.h

out=$(make -s -C "$repo" install KDIR="$kdir" MO="$tmp/mo" DESTDIR="$dest" 2>&1)
ok "make install DESTDIR=... succeeds" $? "$out"

[ -f "$ko" ] && [ "$(modinfo -F vermagic "$ko" | cut -d' ' -f1)" = "$release" ]
ok "contigmem.ko is in lib/modules/$release/updates/rust/" $? \
	"expected $ko with vermagic $release; installed: $(cd "$dest" && find . -name '*.ko*')"
grep -q 'updates/rust/contigmem.ko:' "$dest/lib/modules/$release/modules.dep" 2>/dev/null
ok "depmod lists it in modules.dep" $? "modules.dep: $(cat "$dest/lib/modules/$release/modules.dep" 2>&1)"

cmp -s "$header" "$repo/include/uapi/linux/contigmem.h"
ok "the header is in usr/local/include/linux/" $? "expected $header, a copy of include/uapi/linux/contigmem.h"

printf '#include <linux/contigmem.h>\nstruct contigmem_alloc a;\nunsigned long cmd = CONTIGMEM_IOC_ALLOC;\n' > "$tmp/use.c"
out=$(cc -fsyntax-only -Wall -Wextra -Werror -I "$dest/usr/local/include" "$tmp/use.c" 2>&1)
ok "the installed header compiles on its own (C)" $? "$out"
if command -v c++ >/dev/null; then
	out=$(c++ -x c++ -fsyntax-only -Wall -Wextra -Werror -I "$dest/usr/local/include" "$tmp/use.c" 2>&1)
	ok "the installed header compiles on its own (C++)" $? "$out"
else
	skip "the installed header compiles on its own (C++)" "no c++ compiler"
fi

out=$(make -s -C "$repo" install KDIR="$kdir" MO="$tmp/mo" DESTDIR="$tmp/prefix" PREFIX=/usr 2>&1)
[ -f "$tmp/prefix/usr/include/linux/contigmem.h" ]
ok "PREFIX=/usr puts the header in usr/include/linux/" $? "$out"

out=$(make -s -C "$repo" uninstall KDIR="$kdir" MO="$tmp/mo" DESTDIR="$dest" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ ! -e "$ko" ] && [ ! -e "$header" ] &&
	! grep -q contigmem "$dest/lib/modules/$release/modules.dep"
ok "make uninstall removes the module, its modules.dep entry and the header" $? \
	"rc=$rc, left: $(cd "$dest" && find . -name 'contigmem*'; grep contigmem "lib/modules/$release/modules.dep"): $out"

finish
