// SPDX-License-Identifier: GPL-2.0

//! NUMA placement, in a guest with two or more nodes (`qemu/run.sh` boots two by default): every
//! kind on node -1 (from a CPU of each node), 0 and 1, preferred and strict; bad nodes; a full
//! node. The node of every page is checked independently of INFO: the frames come from
//! `/proc/self/pagemap`, and each frame's node from the zones' frame ranges in `/proc/zoneinfo`.

use std::collections::BTreeMap;

use contigmem::numa::{self, Node, ZoneSpan};
use contigmem::{abi, AllocOptions, Buffer, Device, Errno, Kind};

use crate::tap::{Context, Fail, Outcome, Tap};
use crate::util::{expect_errno, live, open, pfns, K, M};
use crate::{check, check_eq};

pub fn register(tap: &mut Tap) {
    let nodes = match numa::nodes() {
        Ok(nodes) => nodes,
        Err(e) => {
            tap.test("numa: the nodes are readable", || Err(e.to_string().into()));
            return;
        }
    };
    if nodes.len() < 2 {
        tap.skip("numa: placement on every kind", "one NUMA node (NODES=1)");
        return;
    }
    tap.test_root(
        "numa: huge with node -1, the README's first example, lands whole on an online node",
        || huge_any_node(&nodes),
    );
    tap.test_root(
        "numa: every kind on node -1 (from each node's CPU), 0 and 1, preferred and strict: \
         every page where INFO says",
        || placement_table(&nodes),
    );
    tap.test_root(
        "numa: node -1 follows the task's memory policy (MPOL_BIND to node 1 from node 0's CPU); \
         huge and slab-sized kmalloc take the CPU's node",
        || policy(&nodes),
    );
    tap.test("numa: bad nodes give EINVAL for every kind", || {
        bad_nodes(&nodes)
    });
    tap.test_root(
        "numa: strict on a full node gives ENOMEM and never another node; preferred falls back \
         and INFO says where",
        || full_node(&nodes),
    );
}

/// The size each kind is tested with: kmalloc through a slab cache, kzalloc through the page
/// allocator (above the largest kmalloc cache), the others several pages or blocks.
fn size_of(kind: Kind) -> u64 {
    match kind {
        Kind::Kmalloc => 8 * K,
        Kind::Kzalloc => M,
        Kind::Vmalloc => 16 * M,
        Kind::Pages => 4 * M,
        Kind::Huge => 64 * M,
    }
}

/// How many of the buffer's pages each node holds, as pagemap and zoneinfo tell (`None`: a
/// frame no zone claims).
fn pages_by_node(buf: &Buffer, zones: &[ZoneSpan]) -> Result<BTreeMap<Option<u32>, u64>, Fail> {
    let map = buf.map().ctx("mmap")?;
    let mut count = BTreeMap::new();
    for pfn in pfns(&map)? {
        *count.entry(numa::node_of_pfn(zones, pfn)).or_insert(0) += 1;
    }
    Ok(count)
}

fn show(count: &BTreeMap<Option<u32>, u64>) -> String {
    count
        .iter()
        .map(|(node, n)| match node {
            Some(node) => format!("{n} on node {node}"),
            None => format!("{n} on no node's zone"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that INFO's node and off-node count agree with where the pages really are, and
/// returns that node.
fn info_agrees(
    buf: &Buffer,
    zones: &[ZoneSpan],
) -> Result<(contigmem::BufferInfo, BTreeMap<Option<u32>, u64>), Fail> {
    let info = buf.info().ctx("INFO")?;
    let count = pages_by_node(buf, zones)?;
    let pages = buf.size() / buf.device().page_size() as u64;
    let on = u32::try_from(info.node)
        .ok()
        .and_then(|n| count.get(&Some(n)).copied())
        .unwrap_or(0);
    check!(
        on > 0,
        "{} buffer: INFO names node {}, which holds none of its pages ({})",
        buf.kind(),
        info.node,
        show(&count)
    );
    check_eq!(
        info.off_node_pages,
        pages - on,
        format!(
            "{} buffer on node {}: INFO.off_node_pages against pagemap ({})",
            buf.kind(),
            info.node,
            show(&count)
        )
    );
    Ok((info, count))
}

fn huge_any_node(nodes: &[Node]) -> Outcome {
    let zones = numa::zones().ctx("/proc/zoneinfo")?;
    let dev = open()?;
    let buf = dev
        .alloc(Kind::Huge, 64 * M)
        .ctx("ALLOC huge 64M node -1")?;
    let (info, count) = info_agrees(&buf, &zones)?;
    check!(
        nodes
            .iter()
            .any(|n| i64::from(n.id) == i64::from(info.node)),
        "INFO node {} is not an online node",
        info.node
    );
    check_eq!(info.off_node_pages, 0, "pages off the node");
    println!("# huge 64M, node -1: node {} ({})", info.node, show(&count));
    Ok(())
}

/// One buffer of each kind for each way of naming a node, each checked page by page; prints the
/// table.
fn placement_table(nodes: &[Node]) -> Outcome {
    let zones = numa::zones().ctx("/proc/zoneinfo")?;
    let dev = open()?;
    let before = live(&dev)?;
    // (node asked, CPU pinned, strict, the node every page must be on)
    let mut cases: Vec<(i32, Option<u32>, bool, u32)> = Vec::new();
    for node in nodes.iter().take(2) {
        if let Some(&cpu) = node.cpus.first() {
            cases.push((-1, Some(cpu), false, node.id));
        }
    }
    for node in nodes.iter().take(2) {
        cases.push((node.id as i32, None, false, node.id));
        cases.push((node.id as i32, None, true, node.id));
    }
    println!("# KIND     SIZE  NODE  CPU  STRICT  INFO.node  INFO.off_node  pagemap");
    let result = (|| -> Outcome {
        for kind in Kind::ALL {
            for &(node, cpu, strict, want) in &cases {
                numa::pin_to_cpu(cpu).ctx("pinning")?;
                let options = AllocOptions::new()
                    .node(u32::try_from(node).ok())
                    .strict_node(strict);
                let what = format!("{kind} node {node} cpu {cpu:?} strict {strict}");
                let buf = dev
                    .alloc_with(kind, size_of(kind), &options)
                    .ctx(format!("ALLOC {what}"))?;
                numa::pin_to_cpu(None).ctx("unpinning")?;
                let (info, count) = info_agrees(&buf, &zones).map_err(|e| match e {
                    Fail::Fail(why) => Fail::Fail(format!("{what}: {why}")),
                    skip => skip,
                })?;
                println!(
                    "# {:<8} {:<5} {:<5} {:<4} {:<7} {:<10} {:<14} {}",
                    kind.to_string(),
                    contigmem::format_size(buf.size()),
                    node,
                    cpu.map_or("-".into(), |c| c.to_string()),
                    if strict { "yes" } else { "no" },
                    info.node,
                    info.off_node_pages,
                    show(&count)
                );
                check_eq!(
                    info.strict_node,
                    strict,
                    format!("{what}: INFO strict flag")
                );
                let pages = buf.size() / dev.page_size() as u64;
                check_eq!(
                    count.get(&Some(want)).copied().unwrap_or(0),
                    pages,
                    format!("{what}: pages on node {want} ({})", show(&count))
                );
                check_eq!(info.node, want as i32, format!("{what}: INFO.node"));
            }
        }
        Ok(())
    })();
    numa::pin_to_cpu(None).ctx("unpinning")?;
    result?;
    check_eq!(live(&dev)?, before, "live (bytes, buffers) after freeing");
    Ok(())
}

/// `set_mempolicy(MPOL_BIND, {node})`, or back to the default policy with `None`.
fn bind(node: Option<u32>) -> Result<(), Fail> {
    const MPOL_DEFAULT: libc::c_long = 0;
    const MPOL_BIND: libc::c_long = 2;
    let mask: libc::c_ulong = node.map_or(0, |n| 1 << n);
    let (mode, ptr, max): (libc::c_long, *const libc::c_ulong, libc::c_ulong) = match node {
        Some(_) => (MPOL_BIND, &mask, libc::c_ulong::BITS as libc::c_ulong),
        None => (MPOL_DEFAULT, std::ptr::null(), 0),
    };
    // SAFETY: `set_mempolicy` reads `max` bits from `ptr`, a live `c_ulong` (or nothing for
    // MPOL_DEFAULT); it changes only this thread's policy.
    let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, max) };
    check!(
        rc == 0,
        "set_mempolicy({node:?}): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

fn policy(nodes: &[Node]) -> Outcome {
    let zones = numa::zones().ctx("/proc/zoneinfo")?;
    let dev = open()?;
    let (local, bound) = (nodes[0].id, nodes[1].id);
    let cpu = *nodes[0].cpus.first().ok_or("node 0 has no CPU")?;
    let result = (|| -> Outcome {
        for kind in Kind::ALL {
            numa::pin_to_cpu(Some(cpu)).ctx("pinning")?;
            bind(Some(bound))?;
            let buf = dev.alloc(kind, size_of(kind));
            bind(None)?;
            numa::pin_to_cpu(None).ctx("unpinning")?;
            let buf = buf.ctx(format!("ALLOC {kind} node -1 under MPOL_BIND {bound}"))?;
            let (info, count) = info_agrees(&buf, &zones)?;
            // Slab-sized kmalloc takes an object from the CPU's slab, whatever the policy
            // (SLUB consults it only when booted with `slab_strict_numa`); huge has no policy.
            let want = if matches!(kind, Kind::Huge | Kind::Kmalloc) {
                local
            } else {
                bound
            };
            println!(
                "# {kind} node -1, CPU {cpu}, MPOL_BIND {bound}: INFO node {}; {}",
                info.node,
                show(&count)
            );
            check_eq!(info.node, want as i32, format!("{kind}: INFO.node"));
            check_eq!(
                info.off_node_pages,
                0,
                format!("{kind}: pages off the node")
            );
        }
        Ok(())
    })();
    bind(None)?;
    numa::pin_to_cpu(None).ctx("unpinning")?;
    result
}

fn bad_nodes(nodes: &[Node]) -> Outcome {
    let dev = open()?;
    let before = live(&dev)?;
    let offline = nodes.iter().map(|n| n.id).max().unwrap_or(0) as i32 + 1;
    let cases: [(i32, u32, &str); 7] = [
        (-2, 0, "node -2"),
        (i32::MIN, 0, "node i32::MIN"),
        (offline, 0, "an offline node"),
        (64, 0, "node 64 (MAX_NUMNODES of the test kernel)"),
        (i32::MAX, 0, "node i32::MAX"),
        (-1, abi::ALLOC_STRICT_NODE, "strict with node -1"),
        (offline, abi::ALLOC_STRICT_NODE, "strict on an offline node"),
    ];
    for kind in Kind::ALL {
        for (node, flags, what) in cases {
            let mut raw = abi::Alloc {
                size: size_of(kind),
                kind: kind.raw(),
                flags,
                node,
                ..Default::default()
            };
            expect_errno(dev.ioctl(&mut raw), Errno::INVAL, format!("{kind}: {what}"))?;
        }
    }
    check_eq!(live(&dev)?, before, "live (bytes, buffers)");
    Ok(())
}

/// Allocates `kind` buffers of `size` on `node` strictly until ENOMEM (at most `limit`), each
/// checked to be wholly on `node`; returns them.
fn fill<'d>(
    dev: &'d Device,
    zones: &[ZoneSpan],
    kind: Kind,
    size: u64,
    node: u32,
    limit: usize,
    check_pages: bool,
) -> Result<Vec<Buffer<'d>>, Fail> {
    let strict = AllocOptions::new()
        .node(Some(node))
        .strict_node(true)
        .uninit(true);
    let mut held = Vec::new();
    loop {
        match dev.alloc_with(kind, size, &strict) {
            Ok(buf) => {
                if check_pages {
                    let count = pages_by_node(&buf, zones)?;
                    check!(
                        count.keys().all(|&n| n == Some(node)),
                        "strict {kind} on node {node}: {}",
                        show(&count)
                    );
                }
                held.push(buf);
            }
            Err(e) if e.errno() == Errno::NOMEM => return Ok(held),
            Err(e) => return Err(format!("strict {kind} {size} on node {node}: {e}").into()),
        }
        check!(
            held.len() < limit,
            "strict {kind} {size} on node {node}: {limit} buffers and no ENOMEM"
        );
    }
}

fn full_node(nodes: &[Node]) -> Outcome {
    let zones = numa::zones().ctx("/proc/zoneinfo")?;
    let dev = open()?;
    let before = live(&dev)?;
    let (full, other) = (nodes[1].id, nodes[0].id);
    let limit = (nodes[1].mem_total / (4 * M)) as usize + 16;
    // Fill the node: contiguous ranges first, then buddy blocks, then whatever pages are left.
    let mut held = fill(&dev, &zones, Kind::Huge, 64 * M, full, limit, false)?;
    let huge = held.len();
    held.extend(fill(&dev, &zones, Kind::Pages, 4 * M, full, limit, false)?);
    let pages = held.len() - huge;
    held.extend(fill(
        &dev,
        &zones,
        Kind::Vmalloc,
        16 * M,
        full,
        limit,
        true,
    )?);
    let free = numa::nodes().ctx("nodes")?[1].mem_free;
    println!(
        "# node {full} filled: {huge} huge x 64M, {pages} pages x 4M, {} vmalloc x 16M; {} free",
        held.len() - huge - pages,
        contigmem::format_size(free)
    );
    // Strict on the full node: ENOMEM, or memory of that node only (a page freed meanwhile).
    for kind in Kind::ALL {
        let size = size_of(kind).max(if kind == Kind::Kmalloc { 4 * M } else { 0 });
        // What is left on the node bounds how many more can succeed.
        let free = numa::nodes().ctx("nodes")?[1].mem_free;
        let more = fill(
            &dev,
            &zones,
            kind,
            size,
            full,
            (free / size) as usize + 32,
            true,
        )?;
        println!(
            "# strict {kind} {} on the full node {full}: {} more, then ENOMEM",
            contigmem::format_size(size),
            more.len()
        );
        held.extend(more);
    }
    let filled = live(&dev)?;
    // Preferred on the full node: falls back to the other, and INFO says so.
    for kind in Kind::ALL {
        let size = size_of(kind).max(if kind == Kind::Kmalloc { 4 * M } else { 0 });
        let buf = dev
            .alloc_with(kind, size, &AllocOptions::new().node(Some(full)))
            .ctx(format!("preferred {kind} on the full node {full}"))?;
        let (info, count) = info_agrees(&buf, &zones)?;
        println!(
            "# preferred {kind} {} on the full node {full}: INFO node {}, off-node {}; {}",
            contigmem::format_size(buf.size()),
            info.node,
            info.off_node_pages,
            show(&count)
        );
        let pages = buf.size() / dev.page_size() as u64;
        if kind == Kind::Vmalloc {
            check!(
                count.get(&Some(full)).copied().unwrap_or(0) < pages,
                "preferred vmalloc on the full node: every page on it ({})",
                show(&count)
            );
        } else {
            check_eq!(
                info.node,
                other as i32,
                format!("preferred {kind}: INFO.node")
            );
            check_eq!(
                count.get(&Some(other)).copied().unwrap_or(0),
                pages,
                format!("preferred {kind}: pages on node {other}")
            );
        }
    }
    check_eq!(live(&dev)?, filled, "live after the preferred buffers");
    drop(held);
    check_eq!(live(&dev)?, before, "live (bytes, buffers) after freeing");
    Ok(())
}
