# SPDX-License-Identifier: GPL-2.0
# TAP helpers for the host tests (sourced). Each test prints `ok N - NAME` or `not ok N - NAME`
# with what it expected and what it saw; `finish` prints the plan and `N passed, N failed,
# N skipped` and returns non-zero on a failure.
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
n=0
passed=0
failed=0
skipped=0
echo "TAP version 13"

# ok NAME STATUS [DIAGNOSTIC]: STATUS 0 passes; the diagnostic (any lines) is shown on failure.
ok() {
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n - $1"
		passed=$((passed + 1))
	else
		echo "not ok $n - $1"
		[ -z "${3:-}" ] || printf '%s\n' "$3" | tail -n 15 | sed 's/^/#   /'
		failed=$((failed + 1))
	fi
}

# skip NAME REASON
skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
	skipped=$((skipped + 1))
}

finish() {
	echo "1..$n"
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
}

# The kernel tree the tests build against: KDIR, or the cached test kernel (built if missing).
test_kdir() { printf '%s\n' "${KDIR:-$("$repo/qemu/kernel.sh")}"; }
