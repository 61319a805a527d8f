#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The randomised stress/fuzz pass (TAP), then the module must unload cleanly.
# Usage: stress.sh SEED ITERATIONS SECONDS THREADS PROCS
seed=${1:-$(date +%s)}
contigmem-stress --seed "$seed" --iterations "${2:-500}" --seconds "${3:-0}" \
	--threads "${4:-2}" --procs "${5:-2}"
rc=$?
echo "TAP version 13"
if out=$(rmmod contigmem 2>&1); then
	echo "ok 1 - the module unloads after the stress pass"
	insmod /contigmem.ko
else
	echo "not ok 1 - the module unloads after the stress pass"
	echo "#   $out"
	rc=1
fi
echo "1..1"
[ $rc -eq 0 ] || echo "# replay: make stress STRESS_SEED=$seed"
exit $rc
