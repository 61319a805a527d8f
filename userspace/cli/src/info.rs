// SPDX-License-Identifier: GPL-2.0

//! `contigmem info`: the kernel, the module, the device and what VERSION reports.

use std::path::Path;

use contigmem::debugfs::{self, KindStats};
use contigmem::numa::{self, Node};
#[cfg(test)]
use contigmem::Cache;
use contigmem::{format_size, DebugfsCause, Device, Error, Kind, Version};
use serde::Serialize;

use crate::table::Table;
use crate::Output;

/// What `contigmem info` reports.
#[derive(Serialize)]
struct Info {
    device: String,
    kernel: String,
    module_loaded: bool,
    mode: String,
    opened: bool,
    /// What VERSION reported, when the device opened and answered.
    version: Option<Version>,
    /// The ABI version this tool speaks.
    tool_abi_version: u32,
    /// Why the device could not be opened or queried.
    error: Option<String>,
    /// The per-kind counters from debugfs, when readable (root).
    stats: Option<Vec<KindStats>>,
    /// Why the counters could not be read.
    stats_error: Option<String>,
    /// The online NUMA nodes and their memory.
    nodes: Option<Vec<Node>>,
    /// Why the nodes could not be read.
    nodes_error: Option<String>,
}

pub fn run(device: &str, out: Output) -> Result<(), Error> {
    let uname = rustix::system::uname();
    let mode = rustix::fs::stat(device)
        .map(|st| format!("{:04o}", st.st_mode & 0o7777))
        .unwrap_or_else(|_| "-".into());
    let dev = Device::open_path(device);
    let version = dev.as_ref().map_err(Clone::clone).and_then(Device::version);
    let stats = debugfs::stats();
    let nodes = numa::nodes();
    let report = Info {
        device: device.to_string(),
        kernel: uname.release().to_string_lossy().into_owned(),
        module_loaded: Path::new("/sys/module/contigmem").exists(),
        mode,
        opened: dev.is_ok(),
        version: version.as_ref().ok().cloned(),
        tool_abi_version: contigmem::abi::ABI_VERSION,
        error: version.as_ref().err().map(ToString::to_string),
        stats: stats.as_ref().ok().cloned(),
        stats_error: stats.as_ref().err().map(|e| match e {
            Error::DebugfsUnavailable {
                cause: DebugfsCause::NotRoot,
                ..
            } => "debugfs not readable: run as root".to_string(),
            e => format!("debugfs not readable: {e}"),
        }),
        nodes: nodes.as_ref().ok().cloned(),
        nodes_error: nodes.as_ref().err().map(ToString::to_string),
    };
    if out.json {
        out.print_json(&report);
    } else {
        print_human(&report);
    }
    match version {
        Ok(v) if !v.is_compatible() => Err(Error::Abi {
            what: format!(
                "the module speaks ABI version {}, this tool {}",
                v.abi_version,
                contigmem::abi::ABI_VERSION
            ),
        }),
        other => other.map(|_| ()),
    }
}

fn print_human(report: &Info) {
    println!("kernel:        {}", report.kernel);
    println!(
        "module loaded: {}",
        crate::table::yes_no(report.module_loaded)
    );
    println!("device:        {} (mode {})", report.device, report.mode);
    println!("opened:        {}", crate::table::yes_no(report.opened));
    let Some(v) = &report.version else { return };
    println!(
        "ABI version:   {} (this tool: {})",
        v.abi_version, report.tool_abi_version
    );
    println!("page size:     {}", format_size(v.page_size));
    println!("cache modes:   {}", cache_modes(v));
    println!("global cap:    {}", format_size(v.max_total_bytes));
    println!("per-file cap:  {}", format_size(v.max_file_bytes));
    println!(
        "live:          {} in {} buffers",
        format_size(v.live_bytes),
        v.live_buffers
    );
    println!();
    print!("{}", kind_table(v, report.stats.as_deref()));
    if let Some(why) = &report.stats_error {
        println!("live bytes, allocations, failures per kind: ({why})");
    }
    println!();
    match (&report.nodes, &report.nodes_error) {
        (Some(nodes), _) => print!("{}", node_table(nodes)),
        (None, Some(why)) => println!("NUMA nodes: ({why})"),
        (None, None) => {}
    }
}

/// The caching modes the module offers (`alloc --cache`).
fn cache_modes(v: &Version) -> String {
    if v.cache_modes.is_empty() {
        return "wb (a module older than caching modes)".into();
    }
    let names: Vec<&str> = v.cache_modes.iter().map(|c| c.name()).collect();
    names.join(", ")
}

/// One row per online NUMA node: its memory and how much of it is free.
fn node_table(nodes: &[Node]) -> Table {
    let mut table = Table::new(&["NODE", "MEMORY", "FREE", "CPUS"]);
    for node in nodes {
        let cpus: Vec<String> = node.cpus.iter().map(ToString::to_string).collect();
        table.row(vec![
            node.id.to_string(),
            format_size(node.mem_total),
            format_size(node.mem_free),
            if cpus.is_empty() {
                "-".into()
            } else {
                cpus.join(",")
            },
        ]);
    }
    table
}

/// One row per kind: what VERSION says, and the debugfs counters when there are some.
fn kind_table(v: &Version, stats: Option<&[KindStats]>) -> Table {
    let mut header = vec!["KIND", "SUPPORTED", "MAX SIZE", "CONTIGUOUS"];
    if stats.is_some() {
        header.extend(["LIVE", "ALLOCS", "FAILURES"]);
    }
    let mut table = Table::new(&header);
    for kind in Kind::ALL {
        let mut row = vec![
            kind.to_string(),
            crate::table::yes_no(v.supports(kind)).into(),
            v.max_size(kind)
                .map(format_size)
                .unwrap_or_else(|| "-".into()),
            crate::table::yes_no(kind.is_contiguous()).into(),
        ];
        if let Some(stats) = stats {
            match stats.iter().find(|s| s.kind == kind) {
                Some(s) => row.extend([
                    format_size(s.live_bytes),
                    s.allocs.to_string(),
                    s.failures.to_string(),
                ]),
                None => row.extend(["-".into(), "-".into(), "-".into()]),
            }
        }
        table.row(row);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> Version {
        Version {
            abi_version: contigmem::abi::ABI_VERSION,
            kinds: Kind::ALL.to_vec(),
            page_size: 4096,
            max_size: Kind::ALL.into_iter().map(|k| (k, 4 << 20)).collect(),
            max_total_bytes: 3 << 30,
            max_file_bytes: 3 << 30,
            live_bytes: 0,
            live_buffers: 0,
            alloc_flags: contigmem::abi::ALLOC_FLAGS,
            cache_modes: Cache::ALL.to_vec(),
        }
    }

    #[test]
    fn the_cache_modes_are_listed() {
        let mut v = version();
        assert_eq!(cache_modes(&v), "wb, wc, uc");
        v.cache_modes = vec![Cache::Wb];
        assert_eq!(cache_modes(&v), "wb");
        v.cache_modes.clear();
        assert_eq!(cache_modes(&v), "wb (a module older than caching modes)");
        let json = serde_json::to_value(version()).expect("serialisable");
        assert_eq!(json["cache_modes"], serde_json::json!(["wb", "wc", "uc"]));
    }

    #[test]
    fn the_node_table_lists_each_node() {
        let nodes = [
            Node {
                id: 0,
                mem_total: 2 << 30,
                mem_free: 1 << 30,
                cpus: vec![0],
            },
            Node {
                id: 1,
                mem_total: 2 << 30,
                mem_free: 3 << 29,
                cpus: vec![],
            },
        ];
        assert_eq!(
            node_table(&nodes).to_string(),
            "NODE  MEMORY  FREE   CPUS\n0     2G      1G     0\n1     2G      1.50G  -\n"
        );
    }

    #[test]
    fn the_kind_table_shows_the_counters_when_readable() {
        let stats = debugfs::stats_from_str(
            "kind live_bytes allocs failures\n\
             kmalloc 4096 3 0\n\
             kzalloc 0 0 0\n\
             vmalloc 2640740352 1 0\n\
             pages 0 12 1\n",
        )
        .expect("valid stats");
        assert_eq!(
            kind_table(&version(), Some(&stats)).to_string(),
            "\
KIND     SUPPORTED  MAX SIZE  CONTIGUOUS  LIVE   ALLOCS  FAILURES
kmalloc  yes        4M        yes         4K     3       0
kzalloc  yes        4M        yes         0B     0       0
vmalloc  yes        4M        no          2.46G  1       0
pages    yes        4M        yes         0B     12      1
huge     yes        4M        yes         -      -       -
"
        );
        let without = kind_table(&version(), None).to_string();
        assert!(
            without.starts_with("KIND     SUPPORTED  MAX SIZE  CONTIGUOUS\n"),
            "{without}"
        );
    }
}
