#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make test`: host tests of the userspace crates and of the tools (tests/host/*.sh), the in-guest
# suite, the harness self-tests.
# Prints each part's results and, last, one line `N passed, N failed, N skipped`; exits non-zero on any
# failure. Knobs: SELFTEST=0 skips the harness self-tests (they boot eight guests).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
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
example="$repo/out/examples/contigmem-example"	# make examples; the suite fails without it
extra=()
[ -f "$example" ] && extra=(--add "$example")
MODULE="$ko" "$repo/qemu/run.sh" --tap --add "$repo/tests/guest/tap.sh" --add "$repo/tests/guest/suite.sh" --add "$repo/tests/guest/reliability.sh" --add "$repo/tests/guest/stress.sh" ${extra[@]+"${extra[@]}"} \
	--exec 'sh /suite.sh' | tee "$part"
line=$(tail -n1 "$part")
add "$line"

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

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
