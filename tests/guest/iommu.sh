#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The IOMMU guest (qemu/run.sh IOMMU=1: q35, intel-iommu in front of QEMU's edu): the edu
# example in its VFIO mode gives the device IO virtual addresses, and shows that a physical
# address no longer reaches a buffer. Those writes are the only IOMMU faults expected: each
# provoked one is printed by the example, and the kernel log must hold exactly as many.
. /tap.sh
echo "TAP version 13"
out=$(/contigmem-edu --vfio 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
tap "edu behind intel-iommu (VFIO): DMA at IO virtual addresses into vmalloc, pages and huge buffers, kmalloc and HUGE_MAP refused, physical addresses do not reach" \
	$rc "rc=$rc: $(echo "$out" | tail -n1)"
provoked=$(echo "$out" | grep -c 'did not reach the buffer (the IOMMU refused it)')
faults=$(dmesg | grep -c 'DMAR: \[DMA ')
dmesg | grep 'DMAR: \[DMA ' | sed 's/^/# /'
[ "$provoked" -ge 3 ] && [ "$faults" -eq "$provoked" ]
tap "the IOMMU faulted each write at a physical address, and nothing else ($provoked provoked)" $? \
	"$provoked writes at physical addresses, $faults DMAR faults in the kernel log"
echo "1..$n"
[ $failed -eq 0 ]
