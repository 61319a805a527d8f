// SPDX-License-Identifier: GPL-2.0

//! Caching modes (`contigmem_alloc.cache`) and SYNC (`CONTIGMEM_IOC_SYNC`).
//!
//! Each mode is checked in the page tables, independently of the module: the kernel's page-table
//! dump (`/sys/kernel/debug/page_tables/current_kernel`, `CONFIG_PTDUMP_DEBUGFS`) shows the cache
//! bits of every entry of this process's user mappings and of the kernel's direct map. With the
//! kernel's PAT layout (`WB WC UC- UC WB WP UC- WT`) write-back has none of PWT, PCD and PAT,
//! write-combining PWT alone, uncached-minus PCD alone. A buffer's user mappings (at mmap and on
//! fault, by PTEs, PMDs and PUDs), its dma-buf's mapping and the direct map of its pages must all
//! show its mode, and the direct map must be write-back again once the buffer is gone.

use std::fs;

use contigmem::{AllocOptions, Cache, Device, Errno, ExportOptions, Kind, SyncDir};

use crate::tap::{Context, Fail, Outcome, Tap};
use crate::util::{expect_errno, live, open, size_name, K, M};
use crate::{check, check_eq};

pub fn register(tap: &mut Tap, version: &contigmem::Version) {
    let offered = version.cache_modes.clone();
    tap.test(
        "cache modes: VERSION offers wb, wc and uc (the guest's CPU has PAT)",
        move || {
            check_eq!(offered, Cache::ALL.to_vec(), "VERSION cache_modes");
            Ok(())
        },
    );
    for (kind, size, huge_map) in CASES {
        for mode in Cache::ALL {
            let how = if huge_map { ", HUGE_MAP" } else { "" };
            tap.test_root(
                &format!(
                    "cache {mode}: {} {kind}{how}: INFO, user mapping, direct map in the page tables; write-back again after free",
                    size_name(size)
                ),
                move || mode_in_page_tables(kind, size, huge_map, mode),
            );
        }
    }
    tap.test_root(
        "cache wc: the dma-buf's mapping is write-combining too; mprotect keeps the mode",
        dmabuf_and_mprotect,
    );
    tap.test(
        "cache modes: wc and uc refused (EINVAL) for kmalloc, kzalloc and vmalloc",
        refused_kinds,
    );
    tap.test_root(
        "cache modes: wc and uc need a privileged file and caller (EPERM as nobody)",
        unprivileged,
    );
    tap.test(
        "SYNC: START and END, read, write and both, whole and part of buffers of every kind",
        sync_ranges,
    );
    tap.test("SYNC: bad requests get EINVAL or ENOENT", bad_syncs);
}

/// The buffers each mode is checked on. Write-back: normal PTEs at mmap (64K PAGES), a
/// refcounted PMD (2M PAGES, one folio), refcounted PMDs on fault (8M HUGE), PFN PMDs on fault
/// (HUGE_MAP). Write-combining and uncached buffers are PFN maps always: PFN PTEs (64K) and PMDs.
const CASES: [(Kind, u64, bool); 4] = [
    (Kind::Pages, 64 * K, false),
    (Kind::Pages, 2 * M, false),
    (Kind::Huge, 8 * M, false),
    (Kind::Huge, 8 * M, true),
];

/// One range of the page-table dump: `[start, end)`, present or not, its flags.
struct Range {
    start: u64,
    end: u64,
    present: bool,
    flags: Vec<String>,
}

impl Range {
    /// The caching mode its cache bits mean, in the kernel's PAT layout; `None` for a
    /// combination no contigmem mode uses.
    fn cache(&self) -> Option<Cache> {
        let has = |f: &str| self.flags.iter().any(|g| g == f);
        match (has("PWT"), has("PCD"), has("PAT")) {
            (false, false, false) => Some(Cache::Wb),
            (true, false, false) => Some(Cache::Wc),
            (false, true, false) => Some(Cache::Uc),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        format!(
            "[{:#x}, {:#x}) {}",
            self.start,
            self.end,
            if self.present {
                self.flags.join(" ")
            } else {
                "not present".into()
            }
        )
    }
}

/// This process's page tables as the kernel dumps them: the ranges, and the start of the direct
/// map (the "Low Kernel Mapping" marker's address, PAGE_OFFSET, randomized by KASLR).
struct PageTables {
    ranges: Vec<Range>,
    direct_map: u64,
}

const PTDUMP: &str = "/sys/kernel/debug/page_tables/current_kernel";

fn page_tables() -> Result<PageTables, Fail> {
    let text = fs::read_to_string(PTDUMP).ctx(format!("reading {PTDUMP}"))?;
    let mut ranges = Vec::new();
    let mut direct_map = None;
    let mut after_marker = false;
    for line in text.lines() {
        if line.starts_with("---[") {
            after_marker = line.contains("Low Kernel Mapping");
            continue;
        }
        // `0x...-0x...   <size> <flags...> <level>`; not-present ranges have no flags.
        let mut words = line.split_whitespace();
        let Some((a, b)) = words.next().and_then(|w| w.split_once('-')) else {
            continue;
        };
        let parse = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16);
        let (Ok(start), Ok(end)) = (parse(a), parse(b)) else {
            return Err(format!("{PTDUMP}: cannot parse {line:?}").into());
        };
        if after_marker && direct_map.is_none() {
            direct_map = Some(start);
        }
        let rest: Vec<String> = words.skip(1).map(str::to_string).collect();
        // A present entry shows RW or ro; the last word is the level.
        let present = rest.iter().any(|w| w == "RW" || w == "ro");
        let flags = rest[..rest.len().saturating_sub(1)].to_vec();
        ranges.push(Range {
            start,
            end,
            present,
            flags,
        });
    }
    let direct_map = direct_map.ok_or(format!(
        "{PTDUMP}: no range after the Low Kernel Mapping marker"
    ))?;
    Ok(PageTables { ranges, direct_map })
}

impl PageTables {
    /// Fails unless every byte of `[start, start + len)` is mapped (when `present`) with mode
    /// `mode`; ranges not present are allowed when `present` is false.
    fn expect(&self, start: u64, len: u64, mode: Cache, present: bool, what: &str) -> Outcome {
        let end = start + len;
        let mut covered = 0;
        for r in self
            .ranges
            .iter()
            .filter(|r| r.end > start && r.start < end)
        {
            if !r.present {
                if present {
                    return Err(format!("{what}: {} inside it", r.describe()).into());
                }
                continue;
            }
            covered += r.end.min(end) - r.start.max(start);
            if r.cache() != Some(mode) {
                return Err(format!(
                    "{what}: expected {mode}, the page tables show {}",
                    r.describe()
                )
                .into());
            }
        }
        if present && covered != len {
            return Err(format!("{what}: {covered:#x} of {len:#x} bytes mapped").into());
        }
        Ok(())
    }
}

fn pattern(off: usize) -> u8 {
    (off as u8) ^ ((off >> 12) as u8).wrapping_mul(13)
}

fn mode_in_page_tables(kind: Kind, size: u64, huge_map: bool, mode: Cache) -> Outcome {
    let dev = open()?;
    let before = live(&dev)?;
    let options = AllocOptions::new().cache(mode).huge_map(huge_map);
    let buf = dev.alloc_with(kind, size, &options).ctx("ALLOC")?;
    let info = buf.info().ctx("INFO")?;
    check_eq!(info.cache, mode, "INFO cache");
    // Only write-back buffers mapped normally can be pinned: kernel code that pins pages maps
    // them write-back for itself.
    check_eq!(
        info.pinnable,
        mode == Cache::Wb && !huge_map,
        "INFO pinnable"
    );
    let phys = buf.phys_addr();
    check!(phys != 0, "root sees no physical address");
    let mut map = buf.map().ctx("mmap")?;
    for (off, b) in map.iter_mut().enumerate() {
        *b = pattern(off);
    }
    if let Some(off) = (0..map.len()).find(|&off| map[off] != pattern(off)) {
        return Err(format!("byte {off:#x} reads back {:#04x}", map[off]).into());
    }
    // read() goes through the direct map, in the same mode.
    let mut back = vec![0u8; 8192.min(size as usize)];
    buf.read_at(size - back.len() as u64, &mut back)
        .ctx("pread")?;
    let tail = size as usize - back.len();
    if let Some(i) = (0..back.len()).find(|&i| back[i] != pattern(tail + i)) {
        return Err(format!("pread byte {:#x} is {:#04x}", tail + i, back[i]).into());
    }
    let pt = page_tables()?;
    pt.expect(map.addr() as u64, size, mode, true, "the user mapping")?;
    pt.expect(pt.direct_map + phys, size, mode, true, "the direct map")?;
    if mode != Cache::Wb {
        // get_user_pages refuses the PFN map: io_uring cannot register it as a fixed buffer.
        match crate::sys::FixedRing::register(&map) {
            Err(e) if e.contains("Bad address") || e.contains("os error 14") => {}
            Err(e) => return Err(format!("io_uring register: expected EFAULT, saw {e}").into()),
            Ok(_) => return Err("io_uring registered a write-combining mapping".into()),
        }
    }
    drop(map);
    buf.free().ctx("FREE")?;
    let pt = page_tables()?;
    pt.expect(
        pt.direct_map + phys,
        size,
        Cache::Wb,
        false,
        "the direct map after FREE",
    )?;
    check_eq!(live(&dev)?, before, "live counters after FREE");
    Ok(())
}

fn dmabuf_and_mprotect() -> Outcome {
    let dev = open()?;
    let size = 4 * M;
    let options = AllocOptions::new().cache(Cache::Wc);
    let buf = dev.alloc_with(Kind::Huge, size, &options).ctx("ALLOC")?;
    let dmabuf = buf.export(ExportOptions::default()).ctx("EXPORT")?;
    let mut map = dmabuf.map().ctx("mmap of the dma-buf")?;
    map.fill(0x5a);
    dmabuf
        .sync(SyncDir::Write, false)
        .ctx("DMA_BUF_IOCTL_SYNC end")?;
    let pt = page_tables()?;
    pt.expect(
        map.addr() as u64,
        size,
        Cache::Wc,
        true,
        "the dma-buf's mapping",
    )?;
    let mine = buf.map().ctx("mmap")?;
    check!(
        mine.iter().all(|&b| b == 0x5a),
        "the buffer does not show the dma-buf's bytes"
    );
    crate::sys::mprotect_read_only(&mine)?;
    let pt = page_tables()?;
    pt.expect(
        mine.addr() as u64,
        size,
        Cache::Wc,
        true,
        "the mapping after mprotect(PROT_READ)",
    )?;
    for r in pt
        .ranges
        .iter()
        .filter(|r| r.start < mine.addr() as u64 + size && r.end > mine.addr() as u64)
    {
        check!(
            r.flags.iter().any(|f| f == "ro"),
            "a read-only mapping shows {}",
            r.describe()
        );
    }
    Ok(())
}

fn refused_kinds() -> Outcome {
    let dev = open()?;
    for kind in [Kind::Kmalloc, Kind::Kzalloc, Kind::Vmalloc] {
        for mode in [Cache::Wc, Cache::Uc] {
            let options = AllocOptions::new().cache(mode);
            expect_errno(
                dev.alloc_with(kind, 64 * K, &options),
                Errno::INVAL,
                format!("ALLOC {kind} cache {mode}"),
            )?;
        }
        let buf = dev
            .alloc_with(kind, 64 * K, &AllocOptions::new().cache(Cache::Wb))
            .ctx(format!("ALLOC {kind} cache wb"))?;
        check_eq!(buf.info().ctx("INFO")?.cache, Cache::Wb, "INFO cache");
    }
    Ok(())
}

/// A buffer of each kind, synced in every direction, whole and in part, with and without a
/// live dma-buf: the bytes written before SYNC END read back after SYNC START.
fn sync_ranges() -> Outcome {
    let dev = open()?;
    for (kind, size) in [
        (Kind::Kmalloc, 64 * K),
        (Kind::Kzalloc, 64 * K),
        (Kind::Vmalloc, 4 * M),
        (Kind::Pages, 2 * M),
        (Kind::Huge, 8 * M),
    ] {
        let buf = dev.alloc(kind, size).ctx(format!("ALLOC {kind}"))?;
        let mut map = buf.map().ctx("mmap")?;
        let dmabuf = buf.export(ExportOptions::default()).ctx("EXPORT")?;
        for (offset, len) in [
            (0, 0),
            (0, size),
            (4 * K, 4 * K),
            (size - 1, 1),
            (size / 2, 0),
        ] {
            for dir in [SyncDir::Read, SyncDir::Write, SyncDir::ReadWrite] {
                let what = format!("SYNC {kind} [{offset:#x}, +{len:#x}) {dir:?}");
                buf.sync(offset, len, dir, true)
                    .ctx(format!("{what} start"))?;
                map[offset as usize] = offset as u8 ^ 0x77;
                buf.sync(offset, len, dir, false)
                    .ctx(format!("{what} end"))?;
                let mut one = [0u8];
                buf.read_at(offset, &mut one).ctx("pread")?;
                check_eq!(
                    one[0],
                    offset as u8 ^ 0x77,
                    format!("{what}: byte read back")
                );
            }
        }
        drop(dmabuf);
    }
    Ok(())
}

fn bad_syncs() -> Outcome {
    let dev = open()?;
    let size = 64 * K;
    let buf = dev.alloc(Kind::Pages, size).ctx("ALLOC")?;
    let good = contigmem::abi::Sync {
        id: buf.id(),
        offset: 0,
        length: 0,
        flags: contigmem::abi::SYNC_RW,
        reserved0: 0,
    };
    let try_raw = |what: &str, want: Errno, f: &dyn Fn(&mut contigmem::abi::Sync)| {
        let mut s = good;
        f(&mut s);
        expect_errno(dev.ioctl(&mut s), want, format!("SYNC {what}"))
    };
    try_raw("no READ or WRITE", Errno::INVAL, &|s| s.flags = 0)?;
    try_raw("END alone", Errno::INVAL, &|s| {
        s.flags = contigmem::abi::SYNC_END
    })?;
    try_raw("unknown flag 1<<3", Errno::INVAL, &|s| s.flags |= 1 << 3)?;
    try_raw("unknown flag 1<<31", Errno::INVAL, &|s| s.flags |= 1 << 31)?;
    try_raw("reserved0 != 0", Errno::INVAL, &|s| s.reserved0 = 1)?;
    try_raw("offset at the end, to the end", Errno::INVAL, &|s| {
        s.offset = size
    })?;
    try_raw("offset past the end", Errno::INVAL, &|s| {
        s.offset = size + 1;
        s.length = 1
    })?;
    try_raw("range past the end", Errno::INVAL, &|s| {
        s.offset = size - 1;
        s.length = 2
    })?;
    try_raw("offset + length overflows", Errno::INVAL, &|s| {
        s.offset = 1;
        s.length = u64::MAX
    })?;
    try_raw("unknown id", Errno::NOENT, &|s| s.id = buf.id() + 1000)?;
    let mut s = good;
    dev.ioctl(&mut s).ctx("SYNC of the whole buffer")?;
    // Another file's buffer is not this file's.
    let other = Device::open().ctx("open")?;
    let mut s = good;
    expect_errno(
        other.ioctl(&mut s),
        Errno::NOENT,
        "SYNC through another file",
    )?;
    Ok(())
}

/// A caller without `CAP_SYS_ADMIN` (root's file, used after dropping to nobody) gets EPERM for
/// write-combining and uncached buffers, and still gets write-back ones.
fn unprivileged() -> Outcome {
    let dev = open()?;
    crate::sys::fork(
        |_| {
            crate::sys::become_nobody()?;
            for mode in [Cache::Wc, Cache::Uc] {
                match dev.alloc_with(Kind::Pages, 64 * K, &AllocOptions::new().cache(mode)) {
                    Err(e) if e.errno() == Errno::PERM => {}
                    other => {
                        return Err(format!(
                            "ALLOC pages cache {mode} as nobody: expected EPERM, saw {:?}",
                            other.map(|b| b.id())
                        ))
                    }
                }
            }
            let buf = dev
                .alloc_with(Kind::Pages, 64 * K, &AllocOptions::new().cache(Cache::Wb))
                .map_err(|e| format!("ALLOC pages cache wb as nobody: {e}"))?;
            drop(buf);
            Ok(())
        },
        |_| Ok(()),
    )?;
    Ok(())
}
