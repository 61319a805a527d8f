#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host test (TAP): the developer tools. `make rust-analyzer` writes a valid rust-project.json
# with rust/contigmem_main.rs as a crate root that depends on the kernel crate; `make examples`
# builds the C example as a static binary with -Werror. Knobs: KDIR (default: the cached test
# kernel).
set -uo pipefail
. "$(dirname "$0")/lib/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kdir=$(test_kdir)
json=$tmp/rust-project.json

out=$(make -s -C "$repo" rust-analyzer KDIR="$kdir" MO="$tmp/mo" OUT="$json" 2>&1)
ok "make rust-analyzer succeeds" $? "$out"
out=$(python3 - "$json" "$repo/rust/contigmem_main.rs" 2>&1 <<'PY'
import json, sys
crates = json.load(open(sys.argv[1]))["crates"]
names = [c.get("display_name") for c in crates]
ours = [c for c in crates if c["root_module"] == sys.argv[2]]
assert len(ours) == 1, f"no crate with root {sys.argv[2]}; roots: {[c['root_module'] for c in crates]}"
deps = {names[d["crate"]] for d in ours[0]["deps"]}
assert "kernel" in deps, f"contigmem's deps lack kernel: {sorted(deps)}"
PY
)
ok "rust-project.json is valid JSON with rust/contigmem_main.rs as a crate root using kernel" $? "$out"

bin=$repo/out/examples/contigmem-example
out=$(make -s -C "$repo" examples 2>&1)
rc=$?
# A static binary has no program interpreter (the guest has no libc).
[ $rc -eq 0 ] && readelf -lW "$bin" >/dev/null 2>&1 && ! readelf -lW "$bin" | grep -q 'program interpreter'
ok "make examples builds a static $bin with -Werror" $? "rc=$rc: $out"

finish
