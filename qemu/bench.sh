#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: one boot of the benchmark kernel (FLAVOUR=bench: no sanitizers, no debug checks)
# runs contigmem-bench, then contigmem-report turns its JSON into out/bench/report/: report.md,
# report.json and SVG plots.
#
# The guest gets 8 GiB, a boot-time pool of one 1 GiB hugetlbfs page (hugetlbfs 1 GiB can only
# be had at boot) and a 1.25 GiB CMA area (the dma-buf CMA heap's 1 GiB buffer). QEMU runs it
# under KVM where the machine has it and TCG otherwise (qemu/accel.sh); the report records which.
# Knobs: BENCH_ARGS (e.g. --quick), BENCH_TIMEOUT (s, 2700), MEM, APPEND_EXTRA, BINDIR.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export FLAVOUR=bench
BINDIR=${BINDIR:-$repo/userspace/target/x86_64-unknown-linux-gnu/release}
export BINDIR
out=$repo/out/bench
say() { echo "bench: $*" >&2; }

ko=$("$repo/qemu/module.sh")
say "booting the benchmark kernel; the run takes several minutes under TCG"
MEM=${MEM:-8G} LEAKCHECK=0 LOGDIR="$out/logs" MODULE="$ko" \
	APPEND_EXTRA="hugepagesz=1G hugepages=1 cma=1280M ${APPEND_EXTRA:-}" \
	"$repo/qemu/run.sh" --timeout "${BENCH_TIMEOUT:-2700}" \
	--exec "contigmem-bench ${BENCH_ARGS:-}"
"$BINDIR/contigmem-report" "$out/logs/output.log" "$out/report"
say "report: $out/report/report.md (JSON: report.json, plots: *.svg)"
