#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds tests/guest/compat32.c, the guest's 32-bit test program, for i386 against the kernel
# source's nolibc (no 32-bit C library needed: clang and the host's uapi headers do) and prints
# its path. The kernel source is the one qemu/kernel.sh unpacked.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/env.sh"
say() { printf 'compat32: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

nolibc="$CONTIGMEM_CACHE/src/linux-$(kernel_pkg_version)/tools/include/nolibc"
[ -f "$nolibc/nolibc.h" ] || die "no $nolibc/nolibc.h: build the kernel first (make kernel)"
src="$repo/tests/guest/compat32.c"
out="$repo/out/tests/contigmem-compat32"
mkdir -p "$(dirname "$out")"
if [ ! -f "$out" ] || [ "$src" -nt "$out" ] || [ "$repo/include/uapi/linux/contigmem.h" -nt "$out" ]; then
	say "clang --target=i386-linux-gnu $out"
	# The host's x86 uapi headers pick their 32-bit halves (unistd_32.h) under __i386__.
	clang --target=i386-linux-gnu -static -nostdlib -ffreestanding -fno-stack-protector \
		-O2 -Wall -Wextra -Werror -fuse-ld=lld \
		-isystem /usr/include/x86_64-linux-gnu -I "$nolibc" -include nolibc.h \
		-I "$repo/include/uapi" -o "$out.tmp" "$src" >&2 || die "the build of $src failed"
	mv "$out.tmp" "$out"
fi
echo "$out"
