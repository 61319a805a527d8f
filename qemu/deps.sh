#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs everything the contigmem build and test harness needs on Debian 12 (bookworm).
# Idempotent: when everything is present it only checks and returns in a few seconds.
# Knobs: CONTIGMEM_KERNEL_PKG (linux-source-7.2), BINDGEN_VERSION (0.71.1).
set -euo pipefail

say() { printf 'deps: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

KERNEL_PKG=${CONTIGMEM_KERNEL_PKG:-linux-source-7.2}
BINDGEN_VERSION=${BINDGEN_VERSION:-0.71.1}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

PKGS=(make bc bison flex libelf-dev libssl-dev cpio busybox-static dwarves kmod
      xz-utils zstd python3 rsync dkms
      clang-19 lld-19 llvm-19 libclang-19-dev
      rustc-web rust-web-src rust-web-clippy
      qemu-system-x86)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

SRC_LIST=/etc/apt/sources.list.d/contigmem.sources
PIN_FILE=/etc/apt/preferences.d/contigmem
if [ ! -f "$SRC_LIST" ] || [ ! -f "$PIN_FILE" ]; then
	say "adding apt suites bookworm-backports and trixie-backports ($SRC_LIST, pinned low in $PIN_FILE)"
	$SUDO tee "$SRC_LIST" >/dev/null <<'SRC'
# Added by contigmem's qemu/deps.sh: clang-19 and qemu from bookworm-backports,
# linux-source-7.2 from trixie-backports (pinned to 50 so nothing else comes from it).
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	$SUDO tee "$PIN_FILE" >/dev/null <<'PIN'
Package: *
Pin: release n=trixie-backports
Pin-Priority: 50
PIN
	need_update=1
fi

if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
	say "apt-get update"
	$SUDO apt-get update -qq || die "apt-get update failed"
fi
if [ ${#missing[@]} -gt 0 ]; then
	say "installing: ${missing[*]}"
	# -t raises bookworm-backports for qemu and clang-19; rustc-web comes from bookworm-security.
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		-t bookworm-backports "${missing[@]}" >/dev/null || die "apt-get install failed: ${missing[*]}"
fi

# bindgen: the kernel needs >= 0.65 and bookworm's is older.
BINDGEN=${BINDGEN:-$HOME/.cargo/bin/bindgen}
if ! "$BINDGEN" --version 2>/dev/null | grep -q "bindgen $BINDGEN_VERSION"; then
	command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
	say "cargo install bindgen-cli $BINDGEN_VERSION (a few minutes, once)"
	cargo install --quiet --locked --version "$BINDGEN_VERSION" bindgen-cli || die "cargo install bindgen-cli failed"
fi

# The musl-free static guest binaries are built with the rustup toolchain's gnu target.
say "all build dependencies present"
