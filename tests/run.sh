#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make test`: host tests of the userspace crates and of the tools (tests/host/*.sh), the in-guest
# suite, the harness self-tests.
# Prints each part's results, then `skipped: N` and, last, one line `N passed, N failed`; exits
# non-zero on any failure. Knobs: SELFTEST=0 skips the harness self-tests (they boot eight guests).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
BINDIR=${BINDIR:-$repo/userspace/target/x86_64-unknown-linux-gnu/release}
FLAVOUR=${FLAVOUR:-debug}
passed=0
failed=0
skipped=0
part=$(mktemp)
trap 'rm -f "$part"' EXIT
add() { # add "N passed, N failed[, N skipped]" line
	local p f s
	p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' <<< "$1")
	f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' <<< "$1")
	s=$(sed -n 's/.* failed, \([0-9]*\) skipped.*/\1/p' <<< "$1")
	skipped=$((skipped + ${s:-0}))
	if [ -z "$p" ]; then
		echo "test: a part printed no result line: counted as one failure"
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

echo "== host: cargo test (userspace)"
out=$(cd "$repo/userspace" && cargo test --quiet --locked 2>&1)
echo "$out" | grep -E '^test result|FAILED|panicked' || true
p=$(echo "$out" | sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' | paste -sd+ | bc)
f=$(echo "$out" | sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' | paste -sd+ | bc)
if echo "$out" | grep -q '^error'; then
	echo "$out" | tail -n 20
	f=$(( ${f:-0} + 1 ))
fi
add "${p:-0} passed, ${f:-0} failed"

echo "== guest: test suite"
ko=$("$repo/qemu/module.sh") || { echo "test: module build failed"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
extra=()
# make examples; the suite fails without them
for example in "$repo/out/examples/contigmem-example" "$repo/out/examples/contigmem-edu"; do
	[ -f "$example" ] && extra+=(--add "$example")
done
# The 32-bit test program (needs the kernel source's nolibc, there once the module is built).
if compat32=$("$repo/qemu/compat32.sh"); then
	extra+=(--add "$compat32")
fi
# The suite runs in one boot for about 10 minutes under TCG: the timeout only catches a hang.
MODULE="$ko" "$repo/qemu/run.sh" --timeout "${SUITE_TIMEOUT:-2400}" --tap --add "$repo/tests/guest/tap.sh" --add "$repo/tests/guest/suite.sh" --add "$repo/tests/guest/reliability.sh" --add "$repo/tests/guest/stress.sh" ${extra[@]+"${extra[@]}"} \
	--exec 'sh /suite.sh' | tee "$part"
line=$(tail -n1 "$part")
add "$line"

echo "== guest: the edu example behind an IOMMU (q35, intel-iommu, VFIO)"
# Its own boot: a 2 GiB q35 guest (below 4G), one node; its own logs (the report below reads
# the suite's).
IOMMU=1 NODES=1 MEM=2G LOGDIR="$repo/out/$FLAVOUR/iommu-logs" MODULE="$ko" "$repo/qemu/run.sh" --timeout 600 --tap --add "$repo/tests/guest/tap.sh" \
	--add "$repo/tests/guest/iommu.sh" ${extra[@]+"${extra[@]}"} --exec 'sh /iommu.sh' | tee "$part"
line=$(tail -n1 "$part")
add "$line"

echo "== host: contigmem-report on the guest's quick benchmark"
# The guest suite ran `contigmem-bench --quick`; render its JSON from the payload log.
report_dir=$(mktemp -d)
if out=$("$BINDIR/contigmem-report" "$repo/out/$FLAVOUR/logs/output.log" "$report_dir" 2>&1) &&
	grep -q 'The guest runs under TCG' "$report_dir/report.md" &&
	[ "$(ls "$report_dir"/*.svg 2>/dev/null | wc -l)" -ge 4 ]; then
	echo "ok 1 - contigmem-report renders the guest's quick benchmark (report.md, 4 SVG plots)"
	add "1 passed, 0 failed"
else
	echo "not ok 1 - contigmem-report renders the guest's quick benchmark"
	echo "$out" | sed 's/^/#   /'
	add "0 passed, 1 failed"
fi
rm -rf "$report_dir"

echo "== host: tools"
# tests/host/*.sh: make install, DKMS, own-kernel checks, rust-analyzer, C example (TAP each).
for t in "$here"/host/*.sh; do
	echo "# $(basename "$t")"
	"$t" | tee "$part"
	add "$(tail -n1 "$part")"
done

if [ "${SELFTEST:-1}" = 1 ]; then
	echo "== host: harness self-tests"
	LOGDIR="$repo/out/$FLAVOUR/selftest-logs" "$here/harness/selftest.sh" | tee "$part"
	line=$(tail -n1 "$part")
	add "$line"
fi

# Skips are neither passes nor failures; they are counted on the line before the last, which is
# `N passed, N failed` alone.
echo "skipped: $skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
