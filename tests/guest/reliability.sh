#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Reliability in the guest (TAP): load/unload cycles, rmmod under a mapping, device mode and
# group, memory cgroup charging, fault injection and exhaustion (the last two in
# contigmem-tests). Leaves the module loaded with its default parameters.

ko=/contigmem.ko
. /tap.sh
reload() { rmmod contigmem 2>/dev/null; insmod $ko "$@"; }
# Waits until the debugfs list shows a buffer (a background process has one).
wait_listed() {
	i=0
	while [ $i -lt 100 ]; do
		[ "$(wc -l < /sys/kernel/debug/contigmem/buffers)" -gt 1 ] && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

echo "TAP version 13"
reload
i=0
bad=""
while [ $i -lt 50 ]; do
	rmmod contigmem || { bad="rmmod in cycle $i"; break; }
	insmod $ko || { bad="insmod in cycle $i"; break; }
	contigmem alloc --kind pages --size 64K > /dev/null || { bad="alloc in cycle $i"; break; }
	i=$((i + 1))
done
[ -z "$bad" ]
tap "50 insmod/alloc/rmmod cycles" $? "failed at $bad"

contigmem alloc --kind huge --size 8M --hold 6 > /dev/null &
holder=$!
wait_listed
out=$(rmmod contigmem 2>&1)
rc=$?
[ $rc -ne 0 ] && [ -e /sys/module/contigmem ]
tap "rmmod fails while a buffer is mapped" $? "rc=$rc: $out"
wait $holder
tap "the holder ran to the end" $?
# An open debugfs file holds the module too: its operations are the module's.
exec 4</sys/kernel/debug/contigmem/buffers
out=$(rmmod contigmem 2>&1)
rc=$?
[ $rc -ne 0 ] && [ -e /sys/module/contigmem ]
tap "rmmod fails while a debugfs file is open" $? "rc=$rc: $out"
exec 4<&-
out=$(rmmod contigmem 2>&1)
tap "rmmod succeeds after munmap and close" $? "$out"

# The group comes from a device-manager rule (udev/99-contigmem.rules on a real system; busybox
# mdev here), the mode from the module parameter.
insmod $ko mode=0660
mkdir -p /etc
echo 'contigmem 0:4242 0660' > /etc/mdev.conf
mdev -s
seen=$(stat -c '%a %g' /dev/contigmem)
[ "$seen" = "660 4242" ]
tap "mode parameter and mdev rule give 0660 root:4242" $? "saw $seen"
out=$(contigmem-runas 65534 4242 contigmem alloc --kind pages --size 64K --json 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '"phys_addr": 0'
tap "a user in the group allocates and maps, and reads phys_addr 0" $? "rc=$rc: $out"
out=$(contigmem-runas 65534 4242 contigmem alloc --kind kmalloc --size 4K --uninit 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q EPERM
tap "a user in the group gets EPERM for UNINIT" $? "rc=$rc: $out"
out=$(contigmem-runas 65534 65534 contigmem info 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -qi 'permission denied'
tap "a user outside the group cannot open the device" $? "rc=$rc: $out"
rm -f /etc/mdev.conf
reload

# Memory cgroup: vmalloc/kmalloc/pages are charged (__GFP_ACCOUNT), contiguous ranges are not.
cg=/sys/fs/cgroup/contigmem-test
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p $cg
echo 32M > $cg/memory.max
incg() { sh -c "echo \$\$ > $cg/cgroup.procs && exec $*"; }
incg contigmem alloc --kind vmalloc --size 16M --hold 4 > /dev/null &
holder=$!
wait_listed
cur=$(cat $cg/memory.current)
wait $holder
[ "$cur" -ge $((16 << 20)) ]
tap "memory.current shows a 16M vmalloc buffer charged" $? "memory.current=$cur"
# --quiet: while the ALLOC holds the cgroup at its limit, a progress line written to the pipe
# below would be charged to the cgroup, and that write, unlike the ALLOC, may wake the cgroup's
# OOM killer (it did, once the two-node guest made the failing vmalloc take over a second).
for k in vmalloc pages kmalloc; do
	size=64M
	[ $k = vmalloc ] || { echo 3M > $cg/memory.max; size=4M; }
	out=$(incg contigmem --quiet alloc --kind $k --size $size 2>&1)
	rc=$?
	[ $rc -ne 0 ] && echo "$out" | grep -q ENOMEM
	tap "$k $size past memory.max fails with ENOMEM" $? "rc=$rc: $out"
	echo 32M > $cg/memory.max
done
out=$(incg contigmem alloc --kind huge --size 64M 2>&1)
tap "huge 64M is not charged to the cgroup (the byte caps bound it)" $? "$out"
dmesg | grep -Eq 'Out of memory|oom-kill'
[ $? -ne 0 ]
tap "no OOM kill" $? "$(dmesg | grep -E 'Out of memory|oom-kill' | head -3)"
rmdir $cg

echo "1..$n"
contigmem-tests 'fault injection'
faults=$?
reload max_total_mb=65536 max_file_mb=65536
contigmem-tests exhaust
exhausted=$?
reload
[ $failed -eq 0 ] && [ $faults -eq 0 ] && [ $exhausted -eq 0 ]
