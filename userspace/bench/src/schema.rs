// SPDX-License-Identifier: GPL-2.0
//! The JSON `contigmem-bench` prints in the guest and `contigmem-report` reads on the host.
//!
//! Times are nanoseconds of `CLOCK_MONOTONIC` in a TCG guest: compare them within one report,
//! never with hardware. Fault counts (getrusage minor + major), sizes and segment counts are
//! exact.

use serde::{Deserialize, Serialize};

/// The line prefix that marks the JSON document in the guest's output.
pub const JSON_MARKER: &str = "CONTIGMEM-BENCH-JSON ";

/// One benchmark run, in one guest boot.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub meta: Meta,
    /// Allocation latency per kind and size.
    pub alloc: Vec<AllocPoint>,
    /// The largest size each kind allocated and the first that failed.
    pub limits: Vec<Limit>,
    /// Faults and time to map and touch every page.
    pub map_touch: Vec<MapTouch>,
    /// Reading/writing a buffer through its mapping vs through read()/pread()/pwrite().
    pub transfer: Vec<Transfer>,
    /// One mapping of a buffer vs one mapping per 4 KiB page.
    pub one_vs_many: Vec<OneVsMany>,
    /// Per NUMA node: the largest contiguous block and the allocation latency from one CPU
    /// (absent from reports made before the field).
    #[serde(default)]
    pub numa: Vec<NodePoint>,
    /// Many live buffers: ALLOC+FREE cost as their number grows, close() of a file holding many,
    /// debugfs `buffers` read whole (absent from reports made before the field).
    #[serde(default)]
    pub scale: Scale,
    /// Caching modes (WB, WC, UC) of PAGES and HUGE buffers: map+touch, writes through the
    /// mapping and through pwrite() (absent from reports made before the field).
    #[serde(default)]
    pub cache: CacheModes,
}

/// Where and how the run was made.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    /// `uname -r` of the guest.
    pub kernel: String,
    /// The kernel command line of the guest.
    pub cmdline: String,
    /// "tcg" when the guest runs without hardware virtualisation (always, on the CI machine),
    /// "kvm" with it.
    pub accel: String,
    /// Why qemu/run.sh chose that accelerator (absent from reports made before the field).
    #[serde(default)]
    pub accel_reason: String,
    pub cpus: u32,
    /// MemTotal of the guest, bytes.
    pub mem_bytes: u64,
    pub page_size: u64,
    /// contigmem's ABI version.
    pub abi_version: u32,
    /// /sys/kernel/mm/transparent_hugepage/enabled as found at start (e.g. "always [madvise] never").
    pub thp_enabled: String,
    /// hugetlbfs pools at start: free 2 MiB and 1 GiB pages.
    pub hugetlb_2m_free: u64,
    pub hugetlb_1g_free: u64,
    /// /dev/dma_heap entries present.
    pub dma_heaps: Vec<String>,
    /// How many times each latency point was measured.
    pub repeats: u32,
    /// Seconds the whole run took.
    pub seconds: f64,
    /// Free-text remarks from the run (a comparison that could not be made and why, ...).
    pub notes: Vec<String>,
}

/// Allocation latency of one kind at one size.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AllocPoint {
    /// "kmalloc", "kzalloc", "vmalloc", "pages", "huge".
    pub kind: String,
    /// Requested bytes.
    pub size: u64,
    /// Attempts made and how many succeeded.
    pub samples: u32,
    pub ok: u32,
    /// errno name of the first failure ("ENOMEM", "E2BIG"), if any.
    pub errno: Option<String>,
    /// In-kernel allocation time (ALLOC's `alloc_ns`: the allocator call and zeroing) over the
    /// successful samples.
    pub ns_min: u64,
    pub ns_median: u64,
    pub ns_max: u64,
    /// Median of the whole ALLOC ioctl as seen from userspace.
    pub ioctl_ns_median: u64,
    /// Physically contiguous runs of the buffer (INFO `segments`), from the last success.
    pub segments: u64,
}

/// How far one kind goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Limit {
    pub kind: String,
    /// The module's advertised maximum (VERSION `max_size`).
    pub advertised: u64,
    /// The largest size (doubling from 4 KiB, then the advertised maximum) that succeeded.
    pub largest_ok: u64,
    /// The first size that failed, and its errno name; None when nothing failed.
    pub first_fail: Option<u64>,
    pub errno: Option<String>,
}

/// Map and touch every page of `size` bytes one way.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MapTouch {
    /// A stable key, e.g. "contigmem-huge-hugemap", "contigmem-huge-folio",
    /// "hugetlb-2m", "hugetlb-1g", "anon-thp", "anon-4k", "dmabuf-system", "dmabuf-cma".
    pub method: String,
    /// A human label for tables and plots.
    pub label: String,
    pub size: u64,
    /// Whether the method ran; when not, `error` says why (and the other fields are 0).
    pub ok: bool,
    pub error: Option<String>,
    /// Time to get the memory (allocation, or nothing for anonymous memory / hugetlbfs).
    pub alloc_ns: u64,
    /// Time of the mmap call.
    pub map_ns: u64,
    /// Time to write one byte in every 4 KiB page.
    pub touch_ns: u64,
    /// Time of munmap plus freeing the memory.
    pub unmap_ns: u64,
    /// alloc + map + touch.
    pub total_ns: u64,
    /// Page faults (minor + major) taken by map + touch, from getrusage.
    pub faults: u64,
    /// 4 KiB-faulting baseline for this size: size / 4096.
    pub faults_4k: u64,
}

/// Moving `size` bytes between a buffer and user memory one way.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Transfer {
    /// Buffer kind.
    pub kind: String,
    pub size: u64,
    /// "mmap-read" (copy from the mapping), "mmap-write" (copy into it), "pread", "pwrite",
    /// "read" (sequential read() after lseek).
    pub method: String,
    /// Bytes per call (for mmap methods: bytes per memcpy).
    pub chunk: u64,
    /// Best of the repeats.
    pub ns: u64,
    pub mib_per_s: f64,
}

/// Mapping a buffer as one mapping vs many.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OneVsMany {
    /// "one" or "many".
    pub method: String,
    pub size: u64,
    /// Number of mmap calls.
    pub mappings: u64,
    pub map_ns: u64,
    pub touch_ns: u64,
    pub unmap_ns: u64,
    pub faults: u64,
}

/// One NUMA node, measured from one CPU (`cpu`, on node `cpu_node`). TCG does not model NUMA
/// latency: only the sizes and the counts mean anything under it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodePoint {
    pub node: u32,
    /// The node's memory (`MemTotal` of the node), bytes.
    pub mem_bytes: u64,
    /// The CPU the allocations ran on, and its node.
    pub cpu: u32,
    pub cpu_node: u32,
    /// The largest HUGE buffer allocated strictly on the node (doubling from 4 MiB, then
    /// halving steps down to 4 MiB between the last success and the first failure).
    pub largest_huge: u64,
    /// Median in-kernel time of strict allocations on the node: 4 MiB PAGES and 64 MiB HUGE
    /// (0 when none succeeded).
    pub pages_4m_ns: u64,
    pub huge_64m_ns: u64,
    pub samples: u32,
}

/// Many live buffers, all 4 KiB KMALLOC, grown in one pass from the first point to the last and
/// spread round-robin over several open files. A point the population did not reach, or a
/// measurement that failed, has `ok: false` and the reason; its numbers are 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Scale {
    /// The bytes of every buffer (4096).
    pub buffer_size: u64,
    /// One row per live-buffer count, in growing order.
    pub points: Vec<ScalePoint>,
    /// close() of one extra file holding many buffers, timed at one point.
    pub close: Option<CloseTime>,
    /// Reading debugfs `buffers` whole, at one point.
    pub debugfs_full: Option<DebugfsRead>,
    /// `pair_ns` of the last point over that of the first, when both were measured.
    pub ratio_last_first: Option<f64>,
    /// `pair_vs_control` of the last point over that of the first: the growth of the pair's
    /// cost with the machine's speed of each moment taken out (absent from older reports).
    pub controlled_ratio_last_first: Option<f64>,
}

/// The cost of ALLOC+FREE with `live` buffers held.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ScalePoint {
    /// Buffers held by this section's files while measuring (others of the run are freed).
    pub live: u64,
    /// The open files holding them.
    pub files: u32,
    pub ok: bool,
    pub reason: Option<String>,
    /// Seconds spent allocating the population from 0 to `live` (the measurements excluded).
    pub grow_s: f64,
    /// The ALLOC+FREE pair of one more 4 KiB buffer (files taken in turn), as seen from user
    /// space: the median over `rounds` rounds of the round's time divided by `pairs`.
    pub pair_ns: f64,
    /// Pairs per round, and rounds.
    pub pairs: u64,
    pub rounds: u32,
    /// The control: two VERSION ioctls on the same files in place of each pair, timed in each
    /// round right after the pairs (absent from reports made before the field).
    pub control_ns: Option<f64>,
    /// The median over the rounds of the pairs' time divided by the control's in the same
    /// round: the pair's cost against the machine's speed of the moment.
    pub pair_vs_control: Option<f64>,
    /// open() and the first read(4096) of debugfs `buffers`, microseconds; None when debugfs
    /// could not be read (the run's notes say why).
    pub debugfs_first_read_us: Option<f64>,
}

/// close() of a file holding `buffers` buffers, which frees them all.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CloseTime {
    /// Buffers the file held.
    pub buffers: u64,
    /// Buffers held by the other files meanwhile.
    pub other_live: u64,
    pub ok: bool,
    pub reason: Option<String>,
    /// Seconds to allocate the file's buffers.
    pub fill_s: f64,
    /// Seconds of the close() call.
    pub close_s: f64,
    /// How many fewer live buffers VERSION counted after the close than before it.
    pub freed: u64,
}

/// One full read of debugfs `buffers` with 64 KiB read() calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DebugfsRead {
    /// Live buffers of the module (VERSION) just before the read: every one is a line, after
    /// the header line.
    pub live_buffers: u64,
    pub ok: bool,
    pub reason: Option<String>,
    /// Seconds from open() to the read() that returned 0.
    pub seconds: f64,
    pub bytes: u64,
    pub lines: u64,
    /// read() calls that returned data.
    pub reads: u64,
}

/// The caching modes of the ABI, each tried on PAGES and HUGE buffers. TCG does not model
/// caches: under it the times of the modes say nothing about them, while the faults, the bytes
/// written and the mode INFO reports are exact.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CacheModes {
    /// The modes VERSION `cache_modes` listed ("wb", "wc", "uc"), in ABI order; empty from a
    /// module before the field, which takes write-back only.
    pub offered: Vec<String>,
    /// One row per kind and mode of the ABI, offered or not: a mode the kernel does not offer
    /// has `offered: false` and the reason, not a missing row.
    pub points: Vec<CachePoint>,
    /// Seconds the section took, the filling of its source memory included.
    pub seconds: f64,
}

/// One caching mode of one kind. Every round allocates a fresh buffer with the mode, maps it
/// and writes one byte in every 4 KiB page, writes it whole through the mapping (memcpy from
/// user memory), then whole with pwrite() on the device, and checks through the mapping that
/// pwrite()'s bytes are there. The rounds take the modes in turn (wb, wc, uc, wb, ...), so
/// that a drift of the guest's speed falls on every mode alike. Times are the best of the
/// rounds; a row that did not run has `ok: false` and its numbers are 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CachePoint {
    /// "pages" or "huge".
    pub kind: String,
    /// The mode asked of ALLOC: "wb", "wc" or "uc".
    pub mode: String,
    /// Bytes of the buffer.
    pub size: u64,
    /// Whether VERSION `cache_modes` lists the mode (write-back always counts as offered).
    pub offered: bool,
    /// Whether at least one round ran.
    pub ok: bool,
    /// Why no round ran, or what stopped a later one.
    pub error: Option<String>,
    /// Rounds measured, and planned.
    pub rounds: u32,
    pub rounds_planned: u32,
    /// The mode INFO reported for the buffers: the one asked, unless a round's buffer reported
    /// another (then that one). None when no buffer was allocated.
    pub info_mode: Option<String>,
    /// In-kernel allocation time (ALLOC's `alloc_ns`: the pages, the zeroing and setting the
    /// mode on the kernel's alias).
    pub alloc_ns: u64,
    /// Time of the mmap call, and of writing one byte in every 4 KiB page.
    pub map_ns: u64,
    pub touch_ns: u64,
    /// Page faults (minor + major, getrusage) of mmap + touch: the most a round took.
    pub faults: u64,
    /// 4 KiB-faulting baseline for this size: size / 4096.
    pub faults_4k: u64,
    /// Page faults taken while writing the buffer whole both ways and checking it, after the
    /// touch: the most a round took (0 when the touch mapped every page).
    pub write_faults: u64,
    /// Writing the whole buffer through the mapping, in memcpys of `chunk` bytes.
    pub mmap_write_ns: u64,
    pub mmap_write_mib_per_s: f64,
    /// Writing the whole buffer with pwrite() calls of `chunk` bytes on the device (through the
    /// kernel's alias, in the same mode).
    pub pwrite_ns: u64,
    pub pwrite_mib_per_s: f64,
    /// Bytes per memcpy and per pwrite() call.
    pub chunk: u64,
    /// Time of munmap plus FREE (which gives the kernel's alias write-back again).
    pub unmap_ns: u64,
    /// Bytes stored through the mapping over all rounds (the touch not counted).
    pub mmap_bytes: u64,
    /// Bytes pwrite() reported written over all rounds.
    pub pwrite_bytes: u64,
}
