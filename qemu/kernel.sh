#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetches linux-source-7.2, merges qemu/config/base.config + qemu/config/$FLAVOUR.config onto
# tinyconfig and builds bzImage in a cache outside the repo. Prints the build directory.
# Rebuilds only when the kernel version, the fragments or this script change.
# Knobs: FLAVOUR (debug|bench), CONTIGMEM_CACHE, CONTIGMEM_KERNEL_PKG, JOBS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
say() { printf 'kernel: %s\n' "$*" >&2; }

ver=$(kernel_pkg_version)
src="$CONTIGMEM_CACHE/src/linux-$ver"
build="$CONTIGMEM_CACHE/build/linux-$ver-$FLAVOUR"
fragments=("$here/config/base.config" "$here/config/$FLAVOUR.config")
[ -f "${fragments[1]}" ] || { say "no fragment for flavour '$FLAVOUR' (${fragments[1]})"; exit 1; }
stamp=$(cat "${fragments[@]}" "$here/kernel.sh" "$here/env.sh" | sha256sum | cut -c1-16)

if [ ! -f "$src/Makefile" ]; then
	dl="$CONTIGMEM_CACHE/dl"
	mkdir -p "$dl" "$CONTIGMEM_CACHE/src"
	deb="$dl/${KERNEL_PKG}_${ver//:/%3a}_all.deb"
	if [ ! -f "$deb" ]; then
		say "downloading $KERNEL_PKG $ver"
		(cd "$dl" && apt-get download -q "$KERNEL_PKG=$ver" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
		[ -f "$deb" ] || { say "apt-get download $KERNEL_PKG=$ver failed"; exit 1; }
	fi
	say "unpacking $KERNEL_PKG $ver into $src"
	tmp=$(mktemp -d "$CONTIGMEM_CACHE/src/.unpack.XXXXXX")
	dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' | tar -xJ -C "$tmp"
	mv "$tmp"/linux-source-* "$src"
	rmdir "$tmp"
fi

if [ -f "$build/arch/x86/boot/bzImage" ] && [ "$(cat "$build/.contigmem-stamp" 2>/dev/null)" = "$stamp" ]; then
	say "up to date: $build"
	echo "$build"
	exit 0
fi

mkdir -p "$build"
rm -f "$build/.contigmem-stamp"
say "configuring $FLAVOUR kernel in $build"
kmake -C "$src" O="$build" -s tinyconfig >&2
"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "${fragments[@]}" >/dev/null
kmake -C "$src" O="$build" -s olddefconfig >&2

# Kconfig drops options whose dependencies are missing without a word: check each one.
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) want="$line" ;;
	"# CONFIG_"*" is not set") want="$line" ;;
	*) continue ;;
	esac
	if ! grep -qxF "$want" "$build/.config"; then
		opt=${want#\# }; opt=${opt%%[= ]*}
		say "config: asked for '$want', got '$(grep -E "^(# )?$opt[= ]" "$build/.config" || echo unset)'"
		bad=1
	fi
done < <(cat "${fragments[@]}")
[ "$bad" -eq 0 ] || { say "the fragment does not apply cleanly (missing dependencies above)"; exit 1; }

jobs=${JOBS:-$(nproc)}
say "building bzImage ($FLAVOUR, $jobs jobs; first build takes minutes)"
start=$(date +%s)
# A progress line: build steps so far, redrawn in place on a terminal, every 500 otherwise;
# anything else the build prints (warnings, errors) passes through.
progress() {
	local tty=0
	[ -t 2 ] && tty=1
	awk -v tty=$tty '
		/^  [A-Z][A-Z0-9_]* / {
			n++
			if (tty && n % 20 == 0) printf "\rkernel: %d build steps", n > "/dev/stderr"
			if (!tty && n % 500 == 0) printf "kernel: %d build steps\n", n > "/dev/stderr"
			next
		}
		/^make(\[[0-9]+\])?: (Entering|Leaving) directory/ { next }
		{ if (tty) printf "\n" > "/dev/stderr"; print > "/dev/stderr" }
		END { if (tty && n) printf "\n" > "/dev/stderr" }'
}
kmake -C "$src" O="$build" -j"$jobs" bzImage modules 2>&1 | progress
kmake -C "$src" O="$build" -s modules_prepare >&2
echo "$stamp" > "$build/.contigmem-stamp"
say "built in $(( $(date +%s) - start )) s: $build/arch/x86/boot/bzImage"
echo "$build"
