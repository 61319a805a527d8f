#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The in-guest test suite (TAP). /init has loaded /contigmem.ko; this runs the Rust integration
# tests, then the tests only a shell can do: module load and unload around open files. The
# module's KUnit results (printed to the kernel log when it loaded) come first, as TAP.

echo "TAP version 13"
# KUnit prints `# Subtest: SUITE`, then one indented `ok N CASE` per case; keep ours.
dmesg | sed 's/^\[[^]]*\] //' | awk '
	/# Subtest: / { suite = $NF; next }
	suite ~ /^contigmem_/ && /^    (not )?ok [0-9]+ / {
		n++
		status = ($1 == "not") ? "not ok" : "ok"
		name = ($1 == "not") ? $4 : $3
		printf "%s %d - kunit: %s.%s\n", status, n, suite, name
	}
	END { if (n == 0) print "not ok 1 - kunit: no contigmem KUnit results in the kernel log"; printf "1..%d\n", (n ? n : 1) }'

contigmem-tests
status=$?

. /tap.sh

echo "TAP version 13"
exec 3</dev/contigmem
out=$(rmmod contigmem 2>&1)
rc=$?
[ $rc -ne 0 ] && [ -e /sys/module/contigmem ] && [ -e /dev/contigmem ]
tap "rmmod fails while a file is open" $? "expected rmmod to fail and the module to stay, saw rc=$rc: $out"
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
rmmod contigmem
insmod /contigmem.ko max_total_mb=96 max_file_mb=64 mode=0640
tap "insmod with byte caps and mode 0640" $?
mode=$(stat -c %a /dev/contigmem)
[ "$mode" = 640 ]
tap "the mode parameter sets the node's mode" $? "expected 640, saw $mode"
# prog NAME FILE WHY: runs FILE, its output as TAP comments, its status the test's; a missing
# FILE fails NAME with WHY.
prog() {
	if [ -x "$2" ]; then
		out=$("$2" 2>&1)
		rc=$?
		echo "$out" | sed 's/^/# /'
		tap "$1" $rc "rc=$rc: $(echo "$out" | tail -n1)"
	else
		tap "$1" 1 "$2 is missing: $3"
	fi
}
# The C example (examples/c, only the uapi header and libc): ALLOC, mmap, pattern, INFO, FREE.
prog "C example: alloc, mmap, pattern, export, info, dma-buf sync, free" /contigmem-example \
	"run make examples"
# A device that DMAs (examples/c/contigmem-edu.c): QEMU's edu copies to and from kmalloc, pages
# and huge buffers at the physical address ALLOC reported, across page boundaries.
prog "edu device: DMA into and out of kmalloc, pages and huge buffers at their physical address" \
	/contigmem-edu "run make examples"
# A 32-bit process (tests/guest/compat32.c): ioctls, mmap2 page offsets, its file's 255 ids.
prog "32-bit process: ALLOC, mmap2, pread64, INFO, FREE; 255 ids a file, ids reused" \
	/contigmem-compat32 "qemu/compat32.sh failed"
# make bench's guest program in its quick form: it must run to the end and print its JSON
# line, which tests/run.sh then renders on the host with contigmem-report.
out=$(contigmem-bench --quick 2>/tmp/bench.err)
rc=$?
json=$(echo "$out" | grep '^CONTIGMEM-BENCH-JSON {')
[ $rc -eq 0 ] && [ -n "$json" ]
tap "contigmem-bench --quick runs to the end and prints its JSON" $? "rc=$rc: $(tail -n 3 /tmp/bench.err)"
echo "$json"
echo "1..$n"

# The cap tests skip under the default caps (3/4 of RAM); here they are small.
contigmem-tests cap
cap_status=$?

sh /reliability.sh
reliability=$?

# A short randomised stress pass (`make stress` runs a long one).
sh /stress.sh "$(date +%s)" 400 120 2 2
stress=$?

[ $status -eq 0 ] && [ $cap_status -eq 0 ] && [ $reliability -eq 0 ] && [ $stress -eq 0 ] &&
	[ $failed -eq 0 ]
