// SPDX-License-Identifier: GPL-2.0

//! Faults and time to map and touch every page of 64 MiB and 1 GiB, nine ways: contigmem HUGE
//! (PFN-mapped with `HUGE_MAP`, and the default folio PMDs, both on fault), contigmem VMALLOC
//! (4 KiB pages inserted at mmap), hugetlbfs with 2 MiB and 1 GiB pages, anonymous memory with
//! THP and without, the dma-buf system and CMA heaps.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use contigmem::{AllocOptions, Device, Kind};
use contigmem_bench::schema::MapTouch;

use crate::meta::{dma_heaps, hugetlb_free};
use crate::util::{faults, progress, read_knob, timed, touch_range, write_knob, RawMap};
use crate::Plan;

const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;
const HUGETLB_2M_POOL: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// One measured run of a method.
#[derive(Default, Clone, Copy)]
struct Times {
    alloc: u64,
    map: u64,
    touch: u64,
    unmap: u64,
    faults: u64,
}

impl Times {
    fn total(&self) -> u64 {
        self.alloc + self.map + self.touch
    }
}

/// Gets memory (`alloc`), maps it (`map`) and touches every page, counting the faults of map
/// and touch; then unmaps and frees (`release`).
fn run_once<A, M>(
    alloc: impl FnOnce() -> Result<A, String>,
    map: impl FnOnce(&A) -> Result<M, String>,
    addr_len: impl Fn(&mut M) -> (*mut u8, usize),
    release: impl FnOnce(M, A),
) -> Result<Times, String> {
    let (a, alloc_ns) = timed(alloc);
    let a = a?;
    let before = faults();
    let (m, map_ns) = timed(|| map(&a));
    let mut m = m?;
    let (addr, len) = addr_len(&mut m);
    let ((), touch_ns) = timed(|| touch_range(addr, len));
    let faults = faults() - before;
    let ((), unmap_ns) = timed(|| release(m, a));
    Ok(Times {
        alloc: alloc_ns,
        map: map_ns,
        touch: touch_ns,
        unmap: unmap_ns,
        faults,
    })
}

/// A dma-buf from heap `name`, `len` bytes (DMA_HEAP_IOCTL_ALLOC).
fn dma_heap_alloc(name: &str, len: u64) -> Result<OwnedFd, String> {
    #[repr(C)]
    struct AllocationData {
        len: u64,
        fd: u32,
        fd_flags: u32,
        heap_flags: u64,
    }
    // _IOWR('H', 0, struct dma_heap_allocation_data)
    const DMA_HEAP_IOCTL_ALLOC: libc::c_ulong = 0xc018_4800;
    let path = format!("/dev/dma_heap/{name}");
    let heap = File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
    let mut data = AllocationData {
        len,
        fd: 0,
        fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
        heap_flags: 0,
    };
    // SAFETY: The ioctl reads and fills `data`, a live struct of the layout the uapi defines.
    let r = unsafe { libc::ioctl(heap.as_raw_fd(), DMA_HEAP_IOCTL_ALLOC, &mut data) };
    if r != 0 {
        return Err(format!(
            "DMA_HEAP_IOCTL_ALLOC on {path}: {}",
            crate::util::last_errno()
        ));
    }
    // SAFETY: The kernel returned a new dma-buf fd, which we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(data.fd as i32) })
}

/// How to measure one method at one size.
fn measure(dev: &Device, method: &str, size: u64) -> Result<Times, String> {
    let len = usize::try_from(size).map_err(|e| e.to_string())?;
    let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let raw = |m: &mut RawMap| (m.addr(), len);
    let contigmem = |kind: Kind, huge_map: bool| {
        run_once(
            || {
                dev.alloc_with(kind, size, &AllocOptions::new().huge_map(huge_map))
                    .map_err(|e| e.to_string())
            },
            |buf| buf.map().map_err(|e| e.to_string()),
            |m| (m.as_mut_ptr(), m.len()),
            |m, buf| {
                drop(m);
                drop(buf);
            },
        )
    };
    let anonymous = |extra: i32, advice: Option<i32>| {
        run_once(
            || Ok(()),
            |()| {
                let m = RawMap::new(len, anon | extra, -1)?;
                if let Some(advice) = advice {
                    m.advise(advice)?;
                }
                Ok(m)
            },
            raw,
            |m, ()| drop(m),
        )
    };
    let dmabuf = |heap: &str| {
        run_once(
            || dma_heap_alloc(heap, size),
            |fd| RawMap::new(len, libc::MAP_SHARED, fd.as_raw_fd()),
            raw,
            |m, fd| {
                drop(m);
                drop(fd);
            },
        )
    };
    // hugetlbfs 2 MiB: growing the pool to the size is the allocation (buddy pages, not yet
    // zeroed: hugetlbfs zeroes at the first fault), shrinking it back part of the release.
    let hugetlb_2m = || {
        run_once(
            || {
                let pages = size / M2;
                write_knob(HUGETLB_2M_POOL, &pages.to_string())?;
                let free = hugetlb_free(2048);
                if free < pages {
                    let _ = write_knob(HUGETLB_2M_POOL, "0");
                    return Err(format!(
                        "hugetlbfs 2 MiB pool: asked for {pages} pages, got {free}"
                    ));
                }
                Ok(())
            },
            |()| RawMap::new(len, anon | libc::MAP_HUGETLB | libc::MAP_HUGE_2MB, -1),
            raw,
            |m, ()| {
                drop(m);
                let _ = write_knob(HUGETLB_2M_POOL, "0");
            },
        )
    };
    match method {
        "contigmem-huge-hugemap" => contigmem(Kind::Huge, true),
        "contigmem-huge-folio" => contigmem(Kind::Huge, false),
        "contigmem-vmalloc" => contigmem(Kind::Vmalloc, false),
        "hugetlb-2m" => hugetlb_2m(),
        "hugetlb-1g" => anonymous(libc::MAP_HUGETLB | libc::MAP_HUGE_1GB, None),
        "anon-thp" => anonymous(0, Some(libc::MADV_HUGEPAGE)),
        "anon-4k" => anonymous(0, Some(libc::MADV_NOHUGEPAGE)),
        "dmabuf-system" => dmabuf("system"),
        "dmabuf-cma" => dmabuf(&cma_heap().ok_or("no CMA heap in /dev/dma_heap")?),
        other => Err(format!("unknown method {other}")),
    }
}

/// The dma-buf heap backed by CMA: any heap but `system` (`default_cma_region`, `reserved`).
fn cma_heap() -> Option<String> {
    dma_heaps()
        .into_iter()
        .find(|h| h != "system" && !h.starts_with("system-"))
}

const METHODS: [(&str, &str); 9] = [
    (
        "contigmem-huge-hugemap",
        "contigmem HUGE, HUGE_MAP (PFN PMD/PUD on fault)",
    ),
    (
        "contigmem-huge-folio",
        "contigmem HUGE, default (folio PMDs on fault, pinnable)",
    ),
    (
        "contigmem-vmalloc",
        "contigmem VMALLOC (4 KiB pages inserted at mmap)",
    ),
    (
        "hugetlb-2m",
        "hugetlbfs MAP_HUGETLB 2 MiB (pool grown per run)",
    ),
    ("hugetlb-1g", "hugetlbfs MAP_HUGETLB 1 GiB (boot-time pool)"),
    ("anon-thp", "anonymous, THP (MADV_HUGEPAGE)"),
    ("anon-4k", "anonymous, 4 KiB (MADV_NOHUGEPAGE)"),
    ("dmabuf-system", "dma-buf system heap"),
    ("dmabuf-cma", "dma-buf CMA heap"),
];

/// Sets up what the comparisons need (an empty 2 MiB hugetlbfs pool, which each run grows and
/// shrinks; THP in madvise mode); notes what could not be set up.
fn setup(notes: &mut Vec<String>) {
    if let Err(e) = write_knob(HUGETLB_2M_POOL, "0") {
        notes.push(e);
    }
    let thp = read_knob(THP_ENABLED);
    if thp.contains("[never]") {
        if let Err(e) = write_knob(THP_ENABLED, "madvise") {
            notes.push(e);
        }
    }
}

pub fn run(dev: &Device, plan: &Plan, notes: &mut Vec<String>) -> Vec<MapTouch> {
    setup(notes);
    let mut out = Vec::new();
    for &size in plan.map_sizes {
        for (method, label) in METHODS {
            // A 1 GiB page cannot back less than 1 GiB.
            if method == "hugetlb-1g" && size % G1 != 0 {
                continue;
            }
            let mut row = MapTouch {
                method: method.to_owned(),
                label: label.to_owned(),
                size,
                faults_4k: size / 4096,
                ..Default::default()
            };
            if method == "hugetlb-1g" && hugetlb_free(1 << 20) < size / G1 {
                row.error = Some(
                    "no free 1 GiB hugetlbfs page (boot with hugepagesz=1G hugepages=1)".into(),
                );
                out.push(row);
                continue;
            }
            let mut best: Option<Times> = None;
            for _ in 0..plan.repeats.min(3) {
                match measure(dev, method, size) {
                    Ok(t) => {
                        if best.map_or(true, |b| t.total() < b.total()) {
                            best = Some(t);
                        }
                    }
                    Err(e) => {
                        // A later repeat failing (a fragmented CMA area, say) keeps the
                        // earlier measurement.
                        if best.is_none() {
                            row.error = Some(e);
                        }
                        break;
                    }
                }
            }
            if let Some(t) = best {
                row.ok = true;
                row.alloc_ns = t.alloc;
                row.map_ns = t.map;
                row.touch_ns = t.touch;
                row.unmap_ns = t.unmap;
                row.total_ns = t.total();
                row.faults = t.faults;
            }
            progress(&format!(
                "  {} {label}: {}",
                contigmem::format_size(size),
                match &row.error {
                    Some(e) => format!("not measured: {e}"),
                    None => format!("{} faults, {:.2} ms", row.faults, row.total_ns as f64 / 1e6),
                }
            ));
            out.push(row);
        }
    }
    out
}
