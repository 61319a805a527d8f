#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Tests of the harness itself (TAP): each scenario boots the test kernel with a payload that
# provokes one failure (LKDTM for kernel reports) and checks that qemu/run.sh fails and names
# the cause. A passing payload must pass, so the checks are not just always failing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")
run="$repo/qemu/run.sh"
lkdtm=/sys/kernel/debug/provoke-crash/DIRECT
n=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The scenarios need no module and little memory; only a leak check would need kmemleak's scan.
export MEM=${SELFTEST_MEM:-512M} LEAKCHECK=0

# scenario NAME WANT(pass|fail) PATTERN RUN-ARGS...
scenario() {
	local name=$1 want=$2 pattern=$3 rc
	shift 3
	n=$((n + 1))
	"$run" "$@" > "$log" 2>&1
	rc=$?
	if { [ "$want" = pass ] && [ $rc -eq 0 ]; } || { [ "$want" = fail ] && [ $rc -ne 0 ]; }; then
		if grep -Eq "$pattern" "$log"; then
			echo "ok $n - harness: $name"
			return
		fi
		echo "not ok $n - harness: $name"
		echo "#   expected output matching /$pattern/, saw:"
	else
		echo "not ok $n - harness: $name"
		echo "#   expected the run to $want, it exited $rc:"
	fi
	sed 's/^/#     /' "$log" | tail -n 15
	failed=$((failed + 1))
}

echo "TAP version 13"
scenario "a clean payload passes" pass '^run: PASS' --no-load --exec 'echo hello'
scenario "a kernel WARNING fails the run" fail 'FAIL: kernel reported: .*WARNING' --no-load --exec "echo WARNING > $lkdtm"
scenario "a kernel BUG fails the run" fail 'FAIL: kernel reported: .*(BUG|Oops)' --no-load --exec "echo BUG > $lkdtm"
scenario "a KASAN use-after-free fails the run" fail 'FAIL: kernel reported: .*KASAN' --no-load --exec "echo READ_AFTER_FREE > $lkdtm"
scenario "a hung guest is killed and fails the run" fail 'FAIL: guest timed out' --no-load --timeout 25 --exec 'sleep 100000'
scenario "a failing test fails the run" fail '0 passed, 1 failed' --no-load --tap --exec 'echo "not ok 1 - deliberately failing"; exit 1'
scenario "a new taint fails the run" fail 'FAIL: new kernel taint' --no-load --exec 'echo 32 > /proc/sys/kernel/tainted'
scenario "a payload that runs no test fails a --tap run" fail 'ran no test' --no-load --tap --exec 'true'
echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
