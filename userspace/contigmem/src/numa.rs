// SPDX-License-Identifier: GPL-2.0

//! The machine's NUMA nodes as the kernel shows them to userspace: each online node with its
//! memory (`/sys/devices/system/node/nodeN/meminfo`), and the page-frame ranges of each node's
//! zones (`/proc/zoneinfo`), which tell the node of a physical page independently of the module.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// Where the kernel lists the nodes.
pub const NODE_DIR: &str = "/sys/devices/system/node";
/// Where the kernel lists each node's zones.
pub const ZONEINFO_PATH: &str = "/proc/zoneinfo";

/// One online node and its memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The node number.
    pub id: u32,
    /// The memory the node holds, in bytes (`MemTotal`).
    pub mem_total: u64,
    /// The node's free memory, in bytes (`MemFree`).
    pub mem_free: u64,
    /// The CPUs of the node.
    pub cpus: Vec<u32>,
}

/// The online nodes, in order; one node 0 holding all memory on a kernel without NUMA (which has
/// no `node` directory in sysfs).
pub fn nodes() -> Result<Vec<Node>> {
    let dir = Path::new(NODE_DIR);
    let online = match std::fs::read_to_string(dir.join("online")) {
        Ok(text) => parse_list(text.trim()).map_err(|why| sysfs_error(&dir.join("online"), why))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return single_node(),
        Err(e) => return Err(sysfs_error(&dir.join("online"), e.to_string())),
    };
    online
        .into_iter()
        .map(|id| {
            let path = dir.join(format!("node{id}/meminfo"));
            let text =
                std::fs::read_to_string(&path).map_err(|e| sysfs_error(&path, e.to_string()))?;
            let mut node = parse_meminfo(id, &text).map_err(|why| sysfs_error(&path, why))?;
            let path = dir.join(format!("node{id}/cpulist"));
            let text =
                std::fs::read_to_string(&path).map_err(|e| sysfs_error(&path, e.to_string()))?;
            node.cpus = parse_list(text.trim()).map_err(|why| sysfs_error(&path, why))?;
            Ok(node)
        })
        .collect()
}

/// A kernel without NUMA: node 0 is all of `/proc/meminfo`.
fn single_node() -> Result<Vec<Node>> {
    let path = Path::new("/proc/meminfo");
    let text = std::fs::read_to_string(path).map_err(|e| sysfs_error(path, e.to_string()))?;
    let mut node = parse_meminfo(0, &text).map_err(|why| sysfs_error(path, why))?;
    node.cpus = (0..std::thread::available_parallelism().map_or(1, |n| n.get() as u32)).collect();
    Ok(vec![node])
}

fn sysfs_error(path: &Path, why: String) -> Error {
    Error::invalid(format!("{}: {why}", path.display()))
}

/// Parses a kernel CPU/node list such as `0-2,5`.
pub fn parse_list(text: &str) -> std::result::Result<Vec<u32>, String> {
    let mut out = Vec::new();
    if text.is_empty() {
        return Ok(out);
    }
    for part in text.split(',') {
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|e| format!("{text:?}: {s:?} is not a number: {e}"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{text:?}: range {part} runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

/// Parses a node's `meminfo` (`Node 1 MemTotal:  2097152 kB` lines) or `/proc/meminfo`
/// (`MemTotal:  4014080 kB`).
fn parse_meminfo(id: u32, text: &str) -> std::result::Result<Node, String> {
    let field = |name: &str| -> std::result::Result<u64, String> {
        text.lines()
            .find_map(|line| {
                let mut words = line.split_whitespace().skip_while(|w| *w != name);
                words.next()?;
                words.next()?.parse::<u64>().ok()
            })
            .map(|kib| kib << 10)
            .ok_or_else(|| format!("no {name} line"))
    };
    Ok(Node {
        id,
        mem_total: field("MemTotal:")?,
        mem_free: field("MemFree:")?,
        cpus: Vec::new(),
    })
}

/// Pins the calling thread to `cpu`, or lets it run on every CPU again with `None`: to
/// allocate from a chosen node's CPU (node -1 is that CPU's node under the default policy).
pub fn pin_to_cpu(cpu: Option<u32>) -> Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    // Every CPU the set can name; the kernel keeps the online ones.
    for c in 0..rustix::thread::CpuSet::MAX_CPU {
        if cpu.map_or(true, |want| want as usize == c) {
            set.set(c);
        }
    }
    rustix::thread::sched_setaffinity(None, &set)
        .map_err(|errno| Error::os("sched_setaffinity", errno))
}

/// The page frames one zone of one node spans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ZoneSpan {
    /// The node.
    pub node: u32,
    /// The zone's name (`DMA`, `DMA32`, `Normal`, `Movable`).
    pub zone: String,
    /// The first page frame.
    pub start_pfn: u64,
    /// The number of page frames from `start_pfn` (holes included).
    pub spanned: u64,
}

/// The zones of every node, from [`ZONEINFO_PATH`], empty zones left out.
pub fn zones() -> Result<Vec<ZoneSpan>> {
    let path = Path::new(ZONEINFO_PATH);
    let text = std::fs::read_to_string(path).map_err(|e| sysfs_error(path, e.to_string()))?;
    parse_zoneinfo(&text).map_err(|why| sysfs_error(path, why))
}

/// The node whose zones span page frame `pfn`, if one does. Zones of different nodes do not
/// overlap on the machines this is used on (QEMU's and most servers' nodes are ranges of
/// physical memory); `None` when no zone or more than one claims the frame.
pub fn node_of_pfn(zones: &[ZoneSpan], pfn: u64) -> Option<u32> {
    let mut nodes = zones
        .iter()
        .filter(|z| pfn >= z.start_pfn && pfn - z.start_pfn < z.spanned)
        .map(|z| z.node);
    let first = nodes.next()?;
    nodes.all(|n| n == first).then_some(first)
}

/// Parses `/proc/zoneinfo`: a `Node N, zone NAME` line opens each zone; its `spanned` and
/// `start_pfn:` lines follow.
pub fn parse_zoneinfo(text: &str) -> std::result::Result<Vec<ZoneSpan>, String> {
    let mut zones: Vec<ZoneSpan> = Vec::new();
    let mut open: Option<(u32, String, Option<u64>, Option<u64>)> = None;
    let close = |open: &mut Option<(u32, String, Option<u64>, Option<u64>)>,
                 zones: &mut Vec<ZoneSpan>|
     -> std::result::Result<(), String> {
        if let Some((node, zone, start, spanned)) = open.take() {
            let spanned = spanned.ok_or_else(|| format!("node {node} zone {zone}: no spanned"))?;
            if spanned > 0 {
                let start_pfn =
                    start.ok_or_else(|| format!("node {node} zone {zone}: no start_pfn"))?;
                zones.push(ZoneSpan {
                    node,
                    zone,
                    start_pfn,
                    spanned,
                });
            }
        }
        Ok(())
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Node", node, "zone", zone] => {
                close(&mut open, &mut zones)?;
                let node = node
                    .trim_end_matches(',')
                    .parse()
                    .map_err(|e| format!("{line:?}: {e}"))?;
                open = Some((node, zone.to_string(), None, None));
            }
            ["spanned", n] => {
                if let Some(o) = open.as_mut() {
                    o.3 = Some(n.parse().map_err(|e| format!("{line:?}: {e}"))?);
                }
            }
            ["start_pfn:", n] => {
                if let Some(o) = open.as_mut() {
                    o.2 = Some(n.parse().map_err(|e| format!("{line:?}: {e}"))?);
                }
            }
            _ => {}
        }
    }
    close(&mut open, &mut zones)?;
    Ok(zones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        assert_eq!(parse_list("0"), Ok(vec![0]));
        assert_eq!(parse_list("0-1"), Ok(vec![0, 1]));
        assert_eq!(parse_list("0,2-4,7"), Ok(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_list(""), Ok(vec![]));
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("a").is_err());
    }

    #[test]
    fn meminfo_parses_both_forms() {
        let node = "Node 1 MemTotal:        2097152 kB\nNode 1 MemFree:         1048576 kB\n\
                    Node 1 MemUsed:         1048576 kB\n";
        assert_eq!(
            parse_meminfo(1, node),
            Ok(Node {
                id: 1,
                mem_total: 2 << 30,
                mem_free: 1 << 30,
                cpus: vec![],
            })
        );
        let global = "MemTotal:        4014080 kB\nMemFree:         3000000 kB\n";
        assert_eq!(
            parse_meminfo(0, global).map(|n| n.mem_total),
            Ok(4014080 << 10)
        );
        assert!(parse_meminfo(0, "MemTotal: 1 kB\n").is_err());
    }

    const ZONEINFO: &str = "\
Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 0
  pages free     3840
        spanned  4095
        present  3998
        managed  3840
  start_pfn:           1
Node 0, zone    DMA32
  pages free     400000
        spanned  520192
        present  520192
  start_pfn:           4096
Node 0, zone   Normal
  pages free     0
        spanned  0
        present  0
  start_pfn:           0
Node 1, zone    DMA32
  pages free     200000
        spanned  262112
        present  262112
  start_pfn:           524288
Node 1, zone   Normal
  pages free     260000
        spanned  262144
        present  262144
  start_pfn:           1048576
";

    #[test]
    fn zoneinfo_gives_each_nodes_frames() {
        let zones = parse_zoneinfo(ZONEINFO).expect("valid zoneinfo");
        assert_eq!(zones.len(), 4, "the empty zone is left out: {zones:?}");
        assert_eq!(node_of_pfn(&zones, 1), Some(0));
        assert_eq!(node_of_pfn(&zones, 524287), Some(0));
        assert_eq!(node_of_pfn(&zones, 524288), Some(1));
        assert_eq!(node_of_pfn(&zones, 1048576 + 262143), Some(1));
        assert_eq!(node_of_pfn(&zones, 1048576 + 262144), None);
        assert_eq!(node_of_pfn(&zones, 0), None);
    }

    #[test]
    fn overlapping_nodes_give_no_answer() {
        let mut zones = parse_zoneinfo(ZONEINFO).expect("valid zoneinfo");
        zones.push(ZoneSpan {
            node: 2,
            zone: "Normal".into(),
            start_pfn: 1048576,
            spanned: 16,
        });
        assert_eq!(node_of_pfn(&zones, 1048580), None);
        assert_eq!(node_of_pfn(&zones, 1048576 + 16), Some(1));
    }
}
