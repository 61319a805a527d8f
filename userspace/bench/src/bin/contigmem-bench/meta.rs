// SPDX-License-Identifier: GPL-2.0

//! Where the run was made: kernel, command line, CPUs, memory, THP and hugetlbfs settings, the
//! dma-buf heaps present.

use contigmem::Version;
use contigmem_bench::schema::Meta;

use crate::util::read_knob;

/// The free pages of the hugetlbfs pool of `kb`-KiB pages.
pub fn hugetlb_free(kb: u64) -> u64 {
    read_knob(&format!(
        "/sys/kernel/mm/hugepages/hugepages-{kb}kB/free_hugepages"
    ))
    .parse()
    .unwrap_or(0)
}

/// The names in /dev/dma_heap, sorted.
pub fn dma_heaps() -> Vec<String> {
    let mut heaps: Vec<String> = std::fs::read_dir("/dev/dma_heap")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    heaps.sort();
    heaps
}

pub fn collect(version: &Version, accel: String, repeats: u32) -> Meta {
    let uname = rustix::system::uname();
    let mem_kb: u64 = read_knob("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Meta {
        kernel: uname.release().to_string_lossy().into_owned(),
        cmdline: read_knob("/proc/cmdline"),
        accel,
        accel_reason: std::env::var("CONTIGMEM_ACCEL_WHY").unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        mem_bytes: mem_kb * 1024,
        page_size: version.page_size,
        abi_version: version.abi_version,
        thp_enabled: read_knob("/sys/kernel/mm/transparent_hugepage/enabled"),
        hugetlb_2m_free: hugetlb_free(2048),
        hugetlb_1g_free: hugetlb_free(1 << 20),
        dma_heaps: dma_heaps(),
        repeats,
        seconds: 0.0,
        notes: Vec::new(),
    }
}
