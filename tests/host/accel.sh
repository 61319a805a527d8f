#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host test (TAP): qemu/accel.sh, the accelerator choice of qemu/run.sh. On this machine it must
# fall to TCG and say why; with a CPU that has the extension and no /dev/kvm, or a /dev/kvm that
# is no KVM, it still picks TCG with that reason; ACCEL= overrides; a bad ACCEL is refused.
set -uo pipefail
. "$(dirname "$0")/lib/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
accel=$repo/qemu/accel.sh

out=$("$accel" 2>&1)
rc=$?
echo "# this machine: $out"
if grep -qwE 'vmx|svm' /proc/cpuinfo; then
	# A machine with the extension: whichever it picks, it names a reason.
	[ $rc -eq 0 ] && [[ "$out" =~ ^(kvm|tcg)\ .+ ]]
	ok "accel.sh picks an accelerator with a reason" $? "rc=$rc: $out"
else
	[ $rc -eq 0 ] && [[ "$out" == "tcg the CPU has no vmx or svm flag"* ]]
	ok "accel.sh falls to TCG here: the CPU has no vmx or svm flag" $? "rc=$rc: $out"
fi

printf 'flags\t\t: fpu vme vmx sse2\n' > "$tmp/cpuinfo"
out=$(CPUINFO=$tmp/cpuinfo KVM_DEV=$tmp/no-kvm "$accel" 2>&1)
[ "$out" = "tcg $tmp/no-kvm does not exist (load kvm_intel or kvm_amd, or enable virtualisation in the firmware)" ]
ok "with vmx but no /dev/kvm: TCG, and the reason" $? "$out"
out=$(CPUINFO=$tmp/cpuinfo KVM_DEV=/dev/null "$accel" 2>&1)
[[ "$out" == "tcg KVM_GET_API_VERSION on /dev/null: "* ]]
ok "with vmx and a /dev/kvm that is no KVM: TCG, and the failed ioctl" $? "$out"
out=$(ACCEL=tcg "$accel" 2>&1)
[ "$out" = "tcg ACCEL=tcg asks for it" ]
ok "ACCEL=tcg is taken as given" $? "$out"
out=$(ACCEL=xen "$accel" 2>&1)
rc=$?
[ $rc -eq 2 ] && [[ "$out" == *"give auto, kvm or tcg"* ]]
ok "ACCEL=xen is refused" $? "rc=$rc: $out"

finish
