# SPDX-License-Identifier: GPL-2.0
# TAP for the guest's shell tests (sourced): `tap NAME STATUS [DIAGNOSTIC]` prints one line.
n=0
failed=0
tap() {
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		[ -n "$3" ] && echo "#   $3"
		failed=$((failed + 1))
	fi
}
