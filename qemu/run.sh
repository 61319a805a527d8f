#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boots the test kernel under QEMU with an initramfs holding busybox, contigmem.ko, the
# userspace binaries and any extra files, runs a payload command in the guest, and judges the run.
#
#   qemu/run.sh [--exec CMD] [--add FILE]... [--tap] [--no-load] [--timeout S] [--mem SIZE]
#
# The run fails (exit 1) when the payload fails, when the kernel log shows an oops, BUG,
# WARNING, KASAN/UBSAN report, lockdep splat, kmemleak leak or hung task, when a taint flag
# other than the out-of-tree one appears, or when the guest does not finish within the timeout.
# With --tap, the payload's TAP lines are counted and the last line is
# `N passed, N failed, N skipped` (a skip is not a pass).
# Knobs (environment): KBUILD (kernel build tree), KERNEL (bzImage), MODULE (contigmem.ko), BINDIR (guest binaries),
# ACCEL (auto: KVM where usable, else TCG; see qemu/accel.sh), MACHINE (pc: its 3 GiB below 4G
# hold a whole aligned GiB; q35 holds 2 GiB less 128 KiB),
# CPU (max,la57=off), MEM (4G), SMP (2), NODES (2: NUMA nodes; 1 for none; see the topology
# below), TIMEOUT (600), LEAKCHECK (1: kmemleak scan at the end, ~30 s at 4G),
# LOGDIR (out/$FLAVOUR/logs), EDU (1: QEMU's edu PCI device, whose DMA engine
# examples/c/contigmem-edu.c drives; 0 for none), IOMMU (0; 1: a q35 machine with intel-iommu
# in front of edu, booted with intel_iommu=on), QEMU_EXTRA, APPEND_EXTRA.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/env.sh"
say() { printf 'run: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

CMD=${CMD:-}
MEM=${MEM:-4G}
SMP=${SMP:-2}
NODES=${NODES:-2}
TIMEOUT=${TIMEOUT:-600}
EDU=${EDU:-1}
# edu's DMA mask is 28 bits by default: it would clamp addresses above 256 MiB.
edu=()
[ "$EDU" = 1 ] && edu=(-device edu,dma_mask=0xffffffffffffffff)
if [ "${IOMMU:-0}" = 1 ]; then
	# intel-iommu needs q35, and comes before the devices it translates for.
	MACHINE=q35
	edu=(-device intel-iommu ${edu[@]+"${edu[@]}"})
	# No interrupt remapping under TCG (it needs a split irqchip): VFIO must be told that
	# interrupts are not isolated (the edu example uses none).
	APPEND_EXTRA="${APPEND_EXTRA:-} intel_iommu=on vfio_iommu_type1.allow_unsafe_interrupts=1"
fi
LEAKCHECK=${LEAKCHECK:-1}
LOAD=1
TAP=0
ADD=()
while [ $# -gt 0 ]; do
	case "$1" in
	--exec) CMD=$2; shift 2 ;;
	--add) ADD+=("$2"); shift 2 ;;
	--tap) TAP=1; shift ;;
	--no-load) LOAD=0; shift ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--mem) MEM=$2; shift 2 ;;
	-h|--help) sed -n '3,15p' "$0"; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
[ -n "$CMD" ] || die "nothing to run: give --exec CMD"
KBUILD=${KBUILD:-$("$here/kernel.sh")}
KERNEL=${KERNEL:-$KBUILD/arch/x86/boot/bzImage}
# The accelerator: KVM where the CPU and /dev/kvm allow it, TCG otherwise (qemu/accel.sh says why).
accel_line=$("$here/accel.sh") || die "qemu/accel.sh: no accelerator chosen"
accel=${accel_line%% *}
accel_why=${accel_line#* }
MODULE=${MODULE:-}
BINDIR=${BINDIR:-$repo/userspace/target/x86_64-unknown-linux-gnu/release}
LOGDIR=${LOGDIR:-$repo/out/$FLAVOUR/logs}
[ -f "$KERNEL" ] || die "no kernel image at $KERNEL (make kernel)"
BUSYBOX=$(command -v busybox) || die "busybox not found (make deps)"

# The NUMA topology: the CPUs dealt out to the nodes in turn; node 0 the memory below 4 GiB
# (the pc machine's 3 GiB) and the other nodes the rest in equal parts, or all nodes equal parts
# when MEM is 3 GiB or less. So each node is one range of physical memory, and node 0 keeps a
# free, aligned GiB ([1G, 2G): early boot puts the kernel below it, and the KASAN shadow, the
# memmap and the initrd at the top of the node). The default: node 0 3 GiB, node 1 1 GiB.
mib() {
	case "$1" in
	*[gG]) echo $(( ${1%[gG]} * 1024 )) ;;
	*[mM]) echo "${1%[mM]}" ;;
	*) die "MEM=$1: give a size in M or G" ;;
	esac
}
numa=()
if [ "$NODES" -gt 1 ]; then
	total=$(mib "$MEM")
	low=3072
	if [ "$total" -gt "$low" ]; then
		first=$low
		rest=$(( (total - low) / (NODES - 1) ))
		[ $(( first + rest * (NODES - 1) )) -eq "$total" ] || die "MEM=$MEM: the memory above 3G does not split into $((NODES - 1)) equal nodes of whole MiB"
	else
		first=$(( total / NODES ))
		rest=$first
		[ $(( first * NODES )) -eq "$total" ] || die "MEM=$MEM does not split into $NODES equal nodes of whole MiB"
	fi
	for ((n = 0; n < NODES; n++)); do
		size=$rest
		[ "$n" -gt 0 ] || size=$first
		cpus=()
		for ((c = n; c < SMP; c += NODES)); do cpus+=(-numa "cpu,node-id=$n,socket-id=$c"); done
		numa+=(-object "memory-backend-ram,id=mem$n,size=${size}M" -numa "node,nodeid=$n,memdev=mem$n" ${cpus[@]+"${cpus[@]}"})
	done
	[ "$SMP" -ge "$NODES" ] || say "note: $SMP CPUs for $NODES nodes: some nodes have no CPU"
fi

mkdir -p "$LOGDIR"
work=$(mktemp -d "${TMPDIR:-/tmp}/contigmem-run.XXXXXX")
trap 'rm -rf "$work"' EXIT
console="$LOGDIR/console.log"
output="$LOGDIR/output.log"
: > "$console"
: > "$output"

# The guest's /init: mount the usual file systems, note the taint, load the module, run the
# payload with its output on ttyS1, look for leaks, report, and end QEMU.
cat > "$work/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
out=/dev/ttyS1
mark() { echo "contigmem-guest: \$*" > /dev/console; echo "contigmem-guest: \$*" > \$out; }
taint_before=\$(cat /proc/sys/kernel/tainted)
[ -w /sys/kernel/debug/kmemleak ] && echo clear > /sys/kernel/debug/kmemleak
mark "kernel \$(uname -r)"
# The accelerator, for contigmem-bench's report.
export CONTIGMEM_ACCEL='$accel' CONTIGMEM_ACCEL_WHY='${accel_why//\'/}'

if [ $LOAD = 1 ]; then
	if insmod /contigmem.ko; then
		mark "module contigmem loaded; \$(ls -l /dev/contigmem)"
	else
		mark "insmod /contigmem.ko failed"
	fi
fi
cd /
sh /payload.sh > \$out 2>&1 < /dev/null
rc=\$?
mark "exit=\$rc"
if [ $LEAKCHECK = 1 ] && [ -w /sys/kernel/debug/kmemleak ]; then
	# kmemleak reports objects older than 5 s: let the payload's last ones age, scan twice.
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	echo scan > /sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak > /dev/console
fi
mark "taint before=\$taint_before after=\$(cat /proc/sys/kernel/tainted)"
mark "done"
sync
reboot -f
INIT

# The initramfs is described for the kernel's gen_init_cpio, so it needs no root and no mknod.
gen="$work/gen_init_cpio"
cc -O2 -o "$gen" "$KBUILD/source/usr/gen_init_cpio.c"
printf '%s\n' "$CMD" > "$work/payload.sh"
{
	echo "dir /dev 0755 0 0"
	echo "nod /dev/console 0600 0 0 c 5 1"
	for d in /bin /sbin /usr /usr/bin /proc /sys /tmp /root /lib /lib/modules; do echo "dir $d 0755 0 0"; done
	echo "file /bin/busybox $BUSYBOX 0755 0 0"
	echo "file /init $work/init 0755 0 0"
	echo "file /payload.sh $work/payload.sh 0755 0 0"
	[ -z "$MODULE" ] || echo "file /contigmem.ko $MODULE 0644 0 0"
	# brd (a RAM block device) for the O_DIRECT tests, when the kernel has it as a module.
	[ ! -f "$KBUILD/drivers/block/brd.ko" ] || echo "file /brd.ko $KBUILD/drivers/block/brd.ko 0644 0 0"
	# vivid (V4L2's virtual capture driver), the dma-buf importer of the export tests, and the
	# modules it needs, numbered in load order: /vivid/1-font.ko ... /vivid/8-vivid.ko.
	if [ -f "$KBUILD/drivers/media/test-drivers/vivid/vivid.ko" ]; then
		echo "dir /vivid 0755 0 0"
		n=0
		for m in lib/fonts/font drivers/media/common/v4l2-tpg/v4l2-tpg \
			drivers/media/common/videobuf2/videobuf2-{common,memops,v4l2,vmalloc,dma-contig} \
			drivers/media/test-drivers/vivid/vivid; do
			n=$((n + 1))
			echo "file /vivid/$n-$(basename "$m").ko $KBUILD/$m.ko 0644 0 0"
		done
	fi
	for b in "$BINDIR"/contigmem "$BINDIR"/contigmem-tests "$BINDIR"/contigmem-runas "$BINDIR"/contigmem-stress "$BINDIR"/contigmem-bench; do
		[ -f "$b" ] && echo "file /bin/$(basename "$b") $b 0755 0 0"
	done
	for f in ${ADD[@]+"${ADD[@]}"}; do
		[ -e "$f" ] || die "--add $f: no such file"
		mode=0644; [ -x "$f" ] && mode=0755
		echo "file /$(basename "$f") $(readlink -f "$f") $mode 0 0"
	done
} > "$work/initramfs.list"
"$gen" "$work/initramfs.list" > "$work/initramfs.cpio"

say "accelerator: $accel ($accel_why)"
say "booting $(basename "$KERNEL") ($MEM, $SMP CPUs, $NODES NUMA node(s), timeout ${TIMEOUT}s): $CMD"
tail -n +1 -F "$output" 2>/dev/null &
tailpid=$!
start=$(date +%s)
# CPU: max without 5-level paging. With LA57, 7.2's identify_cpu() clears the boot CPU's
# feature bits with interrupts on; an interrupt in that window sees pgtable_l5_enabled() false,
# and KASAN reports a "wild-memory-access" on a direct-map address (seen once in four boots).
# An oops or BUG leaves the guest unable to finish (the task died holding its locks), so the run
# would wait for the whole timeout: end QEMU 10 s after one (time for the trace to be written).
(
	while sleep 2; do
		if grep -aEq 'Oops|kernel BUG at|general protection fault' "$console" 2>/dev/null; then
			sleep 10
			pkill -f -- "-initrd $work/initramfs.cpio" || true
			break
		fi
	done
) &
watchpid=$!
set +e
# shellcheck disable=SC2086
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -nodefaults -no-reboot -display none \
	-machine "${MACHINE:-pc}" -accel "$accel" -cpu "${CPU:-max,la57=off}" -m "$MEM" -smp "$SMP,sockets=$SMP,cores=1,threads=1" \
	${numa[@]+"${numa[@]}"} ${edu[@]+"${edu[@]}"} \
	-kernel "$KERNEL" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 oops=panic_off loglevel=7 printk.time=1 ${APPEND_EXTRA:-}" \
	-serial "file:$console" -serial "file:$output" ${QEMU_EXTRA:-} < /dev/null
qrc=$?
set -e
sleep 0.3
kill "$tailpid" "$watchpid" 2>/dev/null || true
wait "$tailpid" "$watchpid" 2>/dev/null || true
say "guest ran $(( $(date +%s) - start )) s; console log: $console, payload output: $output"

# The verdict.
problems=()
[ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ] && problems+=("guest timed out after ${TIMEOUT}s (hung guest)")
tr -d '\r' < "$console" > "$work/console"
tr -d '\r' < "$output" > "$work/output"
markers='BUG:|WARNING:|KASAN:|UBSAN:|general protection fault|Oops|bad (pgd|p4d|pud|pmd|pte) |kernel BUG at|Kernel panic|unreferenced object|INFO: task .* blocked|possible recursive locking|possible circular locking|inconsistent lock state|rcu_.*detected stall|Call Trace:'
if grep -aEq "$markers" "$work/console"; then
	first=$(grep -aEm1 "$markers" "$work/console" | sed 's/^\[[ 0-9.]*\] //')
	problems+=("kernel reported: $first")
fi
done_line=$(grep -ac '^contigmem-guest: done' "$work/console" || true)
[ "$done_line" -ge 1 ] || [ "$qrc" -eq 124 ] || problems+=("guest did not finish (crash or panic before the end; see $console)")
rc_line=$(sed -n 's/^contigmem-guest: exit=\([0-9]*\).*/\1/p' "$work/console" | tail -n1)
payload_failed=0
if [ -n "$rc_line" ] && [ "$rc_line" != 0 ]; then
	say "FAIL: payload exited with status $rc_line"
	payload_failed=1
fi
taint=$(sed -n 's/^contigmem-guest: taint before=\([0-9]*\) after=\([0-9]*\).*/\1 \2/p' "$work/console" | tail -n1)
if [ -n "$taint" ]; then
	read -r before after <<< "$taint"
	# Allowed: O (4096, out-of-tree module) and N (262144, KUnit tests ran).
	new=$(( after & ~before & ~4096 & ~262144 ))
	[ "$new" -eq 0 ] || problems+=("new kernel taint $new (before $before, after $after; see Documentation/admin-guide/tainted-kernels.rst)")
fi
if grep -aq '^contigmem-guest: insmod /contigmem.ko failed' "$work/console"; then
	problems+=("insmod contigmem.ko failed")
fi

status=$payload_failed
for p in ${problems[@]+"${problems[@]}"}; do
	say "FAIL: $p"
	status=1
done
if [ "$TAP" = 1 ]; then
	skipped=$(grep -aEc '^ok .*# SKIP' "$work/output" || true)
	passed=$(( $(grep -aEc '^ok ' "$work/output" || true) - skipped ))
	failed=$(grep -aEc '^not ok ' "$work/output" || true)
	# A problem the TAP lines cannot show (a kernel report, a hang, a payload that failed
	# without a failing test line) counts as a failed test.
	failed=$(( failed + ${#problems[@]} ))
	[ "$payload_failed" = 0 ] || [ "$(grep -aEc '^not ok ' "$work/output" || true)" -gt 0 ] || failed=$((failed + 1))
	[ "$passed" -gt 0 ] || [ "$failed" -gt 0 ] || { failed=1; say "FAIL: the payload ran no test"; }
	[ "$failed" -eq 0 ] || status=1
	echo "$passed passed, $failed failed, $skipped skipped"
fi
[ "$status" -eq 0 ] && say "PASS"
exit "$status"
