# SPDX-License-Identifier: GPL-2.0
# Shared settings for the qemu/ scripts (sourced, not run). Every knob has a default.
CONTIGMEM_CACHE=${CONTIGMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/contigmem}
KERNEL_PKG=${CONTIGMEM_KERNEL_PKG:-linux-source-7.2}
FLAVOUR=${FLAVOUR:-debug}
LLVM_BIN=${LLVM_BIN:-/usr/lib/llvm-19/bin}
BINDGEN=${BINDGEN:-$HOME/.cargo/bin/bindgen}
export PATH="$LLVM_BIN:$PATH"

# The Debian package version of the kernel source: the newest the apt lists offer, or, with no
# lists, the newest already in the cache.
kernel_pkg_version() {
	local v
	v=$(apt-cache policy "$KERNEL_PKG" 2>/dev/null | awk '/Candidate:/ {print $2}')
	if [ -z "$v" ] || [ "$v" = "(none)" ]; then
		v=$(ls -1 "$CONTIGMEM_CACHE/src" 2>/dev/null | sed -n 's/^linux-//p' | sort -V | tail -n1)
	fi
	[ -n "$v" ] || { echo "no $KERNEL_PKG version known: run qemu/deps.sh" >&2; return 1; }
	printf '%s\n' "$v"
}

# The make line for the kernel tree and for out-of-tree modules built against it.
rust_lib_src() { ls -d /usr/src/rustc-*/library 2>/dev/null | sort -V | tail -n1; }
# CLIPPY=1 lints the Rust code with Debian's clippy-driver (the same rustc version).
kmake() {
	make LLVM=1 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
		RUST_LIB_SRC="$(rust_lib_src)" BINDGEN="$BINDGEN" \
		${CLIPPY:+CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver} "$@"
}
