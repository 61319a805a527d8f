// SPDX-License-Identifier: GPL-2.0

//! Per NUMA node: the largest contiguous (HUGE) block allocated strictly on it, and the
//! allocation latency of strict PAGES and HUGE buffers on it from a CPU of the first node, so
//! that one row is local and the others are remote. TCG does not model NUMA latency; under it
//! only the sizes mean anything.

use contigmem::numa;
use contigmem::{AllocOptions, Device, Kind};
use contigmem_bench::schema::NodePoint;

use crate::util::{median, progress};
use crate::Plan;

const M: u64 = 1 << 20;

/// The median in-kernel time of `samples` strict allocations of `kind` on `node`.
fn latency(dev: &Device, kind: Kind, size: u64, node: u32, samples: u32) -> u64 {
    let options = AllocOptions::new().node(Some(node)).strict_node(true);
    let mut ns: Vec<u64> = (0..samples)
        .filter_map(|_| dev.alloc_with(kind, size, &options).ok())
        .map(|buf| buf.alloc_ns())
        .collect();
    median(&mut ns)
}

/// The largest HUGE size that allocates strictly on `node`, up to `most`.
fn largest(dev: &Device, node: u32, most: u64) -> u64 {
    let options = AllocOptions::new()
        .node(Some(node))
        .strict_node(true)
        .uninit(true);
    let fits = |size: u64| dev.alloc_with(Kind::Huge, size, &options).is_ok();
    let mut ok = 0;
    let mut size = 4 * M;
    while size <= most && fits(size) {
        ok = size;
        size *= 2;
    }
    // Between the last success and the first failure, in halving steps of whole 4 MiB blocks.
    let mut step = ok / 2;
    while step >= 4 * M && ok + step <= most {
        if fits(ok + step) {
            ok += step;
        }
        step /= 2;
    }
    ok
}

pub fn run(dev: &Device, plan: &Plan, notes: &mut Vec<String>) -> Vec<NodePoint> {
    let nodes = match numa::nodes() {
        Ok(nodes) => nodes,
        Err(e) => {
            notes.push(format!("NUMA: the nodes could not be read: {e}"));
            return Vec::new();
        }
    };
    let Some((cpu, cpu_node)) = nodes
        .iter()
        .find_map(|n| n.cpus.first().map(|&c| (c, n.id)))
    else {
        notes.push("NUMA: no node has a CPU".into());
        return Vec::new();
    };
    let uninit_ok = dev
        .alloc_with(Kind::Huge, 4 * M, &AllocOptions::new().uninit(true))
        .is_ok();
    let mut out = Vec::new();
    for node in &nodes {
        let _ = numa::pin_to_cpu(Some(cpu));
        let samples = plan.repeats.min(5);
        let point = NodePoint {
            node: node.id,
            mem_bytes: node.mem_total,
            cpu,
            cpu_node,
            largest_huge: if uninit_ok {
                largest(dev, node.id, node.mem_total.min(plan.limit_max))
            } else {
                0
            },
            pages_4m_ns: latency(dev, Kind::Pages, 4 * M, node.id, samples),
            huge_64m_ns: latency(dev, Kind::Huge, 64 * M, node.id, samples),
            samples,
        };
        let _ = numa::pin_to_cpu(None);
        progress(&format!(
            "  node {}: largest huge {}, pages 4M {} ns, huge 64M {} ns (from CPU {cpu})",
            node.id,
            contigmem::format_size(point.largest_huge),
            point.pages_4m_ns,
            point.huge_64m_ns
        ));
        out.push(point);
    }
    if !uninit_ok {
        notes.push("NUMA: largest blocks not probed (UNINIT needs root)".into());
    }
    out
}
