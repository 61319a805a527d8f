#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The in-guest test suite (TAP). /init has loaded /contigmem.ko; this runs the Rust integration
# tests, then the tests only a shell can do: module load and unload around open files.

contigmem-tests
status=$?

n=0
failed=0
tap() { # tap NAME CONDITION-RESULT [DIAGNOSTIC]
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		[ -n "$3" ] && echo "#   $3"
		failed=$((failed + 1))
	fi
}

echo "TAP version 13"
exec 3</dev/contigmem
out=$(rmmod contigmem 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q 'in use'
tap "rmmod fails while a file is open" $? "expected rmmod to fail with 'in use', saw rc=$rc: $out"
exec 3<&-
out=$(rmmod contigmem 2>&1)
tap "rmmod succeeds once the file is closed" $? "$out"
[ ! -e /dev/contigmem ]
tap "/dev/contigmem is gone after rmmod" $?
i=0
cycle_ok=0
while [ $i -lt 10 ]; do
	insmod /contigmem.ko && contigmem info >/dev/null && rmmod contigmem || { cycle_ok=1; break; }
	i=$((i + 1))
done
tap "10 insmod/info/rmmod cycles" $cycle_ok "cycle $i failed"
out=$(contigmem info 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q 'is the module loaded'
tap "contigmem info without the module says what to do" $? "rc=$rc: $out"
insmod /contigmem.ko
tap "insmod again" $?
out=$(contigmem info --json)
echo "$out" | grep -q '"opened": true'
tap "contigmem info --json reports the device opened" $? "$out"
echo "1..$n"

[ $status -eq 0 ] && [ $failed -eq 0 ]
