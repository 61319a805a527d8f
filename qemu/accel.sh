#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Picks QEMU's accelerator for qemu/run.sh and prints one line: `kvm REASON` or `tcg REASON`.
#
# KVM when the CPU has the virtualisation extension (the vmx or svm flag in /proc/cpuinfo) and
# /dev/kvm is usable (opens read-write, answers KVM_GET_API_VERSION with 12 and creates a VM);
# TCG, QEMU's software emulation, otherwise. Both conditions are needed: a machine that is itself
# a guest can offer a /dev/kvm that creates VMs without the extension (a paravirtual KVM such as
# PVM), and QEMU's guests hang on it before their first console line.
# Knobs: ACCEL (auto, kvm or tcg: the choice, unchecked), CPUINFO (/proc/cpuinfo), KVM_DEV (/dev/kvm).
set -uo pipefail
ACCEL=${ACCEL:-auto}
CPUINFO=${CPUINFO:-/proc/cpuinfo}
KVM_DEV=${KVM_DEV:-/dev/kvm}

case "$ACCEL" in
kvm | tcg) echo "$ACCEL ACCEL=$ACCEL asks for it"; exit 0 ;;
auto) ;;
*) echo "accel: ACCEL=$ACCEL: give auto, kvm or tcg" >&2; exit 2 ;;
esac

if ! grep -qwE 'vmx|svm' "$CPUINFO" 2>/dev/null; then
	why="the CPU has no vmx or svm flag in $CPUINFO (no hardware virtualisation"
	[ -e "$KVM_DEV" ] && why+="; $KVM_DEV is there but cannot run QEMU's guests without it"
	echo "tcg $why)"
	exit 0
fi
if [ ! -e "$KVM_DEV" ]; then
	echo "tcg $KVM_DEV does not exist (load kvm_intel or kvm_amd, or enable virtualisation in the firmware)"
	exit 0
fi
# The probe: the ioctls QEMU starts with. KVM_GET_API_VERSION is _IO(0xAE, 0), KVM_CREATE_VM
# _IO(0xAE, 1).
if ! err=$(python3 - "$KVM_DEV" 2>&1 <<'PY'
import fcntl, os, sys
try:
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CLOEXEC)
except OSError as e:
    sys.exit(f"cannot open {sys.argv[1]} read-write: {e.strerror} (add yourself to its group, kvm)")
try:
    api = fcntl.ioctl(fd, 0xAE00)
except OSError as e:
    sys.exit(f"KVM_GET_API_VERSION on {sys.argv[1]}: {e.strerror}")
if api != 12:
    sys.exit(f"{sys.argv[1]} speaks KVM API {api}, not 12")
try:
    os.close(fcntl.ioctl(fd, 0xAE01, 0))
except OSError as e:
    sys.exit(f"KVM_CREATE_VM on {sys.argv[1]}: {e.strerror} (is another hypervisor holding the extension?)")
PY
); then
	echo "tcg ${err:-the probe of $KVM_DEV failed}"
	exit 0
fi
echo "kvm the CPU has $(grep -owE 'vmx|svm' "$CPUINFO" | head -n1) and $KVM_DEV creates VMs"
