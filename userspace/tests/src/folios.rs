// SPDX-License-Identifier: GPL-2.0

//! The default mapping of HUGE buffers: PMD-order folios mapped on fault by refcounted PMDs
//! (PTEs where a window or a split leaves no room), which `get_user_pages` pins: fault counts
//! and the kernel's own count of PMD-mapped memory (smaps `FilePmdMapped`), O_DIRECT and
//! io_uring fixed buffers over such a mapping, pins outliving munmap and FREE, splits, and the
//! fallback to PTEs where transparent huge pages are off.

use std::fs;
use std::os::unix::fs::FileExt;

use contigmem::{AllocOptions, Kind};

use crate::hugemap::{
    minflt, moved, pattern_byte, ramdisk, split, stamp, stamped, stamped_mapping, touch,
};
use crate::sys::{self, FixedRing};
use crate::tap::{Context, Fail, Outcome, Tap};
use crate::util::{alloc_huge, live, open, G, M};
use crate::{check, check_eq};

pub fn register(tap: &mut Tap) {
    tap.test(
        "folio map: 64M HUGE touched with at most 32 faults, all of it PMD-mapped (smaps), pinnable",
        || pmd_mapped(Kind::Huge, 64 * M),
    );
    tap.test(
        "folio map: 2M PAGES (one buddy block) touched with 1 fault, PMD-mapped (smaps), pinnable",
        || pmd_mapped(Kind::Pages, 2 * M),
    );
    tap.test_root(
        "folio map: 1G HUGE touched with at most 512 faults; O_DIRECT and io_uring fixed-buffer reads into it, data checked",
        gib_pinned,
    );
    tap.test_root(
        "folio map: io_uring pins outlive munmap and FREE; the memory is freed at unregister",
        pins_outlive,
    );
    tap.test(
        "folio map: partial munmap, mprotect and fork split PMDs (4M HUGE), data intact",
        || split(4 * M, false),
    );
    tap.test(
        "folio map: partial munmap, mprotect and fork split PMDs (64M HUGE), data intact",
        || split(64 * M, false),
    );
    tap.test(
        "folio map: MADV_DONTNEED, mremap move and shrink of a 64M HUGE mapping, data intact",
        dontneed_mremap,
    );
    tap.test(
        "folio map: a window one page into a HUGE buffer is mapped by PTEs, data intact",
        odd_window,
    );
    tap.test_root(
        "folio map: with transparent huge pages 'never' a HUGE mapping takes PTEs (one fault a page)",
        thp_never,
    );
}

/// The kernel's count of PMD-mapped file memory (`FilePmdMapped`, bytes) in the VMA that starts
/// at `addr`, from /proc/self/smaps.
fn pmd_mapped_bytes(addr: usize) -> Result<u64, Fail> {
    let smaps = fs::read_to_string("/proc/self/smaps").ctx("/proc/self/smaps")?;
    let head = format!("{addr:x}-");
    let mut inside = false;
    for line in smaps.lines() {
        if line.contains('-') && line.split_whitespace().count() >= 5 {
            inside = line.starts_with(&head);
            continue;
        }
        if inside {
            if let Some(rest) = line.strip_prefix("FilePmdMapped:") {
                let kb: u64 = rest
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ctx("FilePmdMapped")?;
                return Ok(kb << 10);
            }
        }
    }
    Err(format!("no FilePmdMapped line for the VMA at {addr:#x}").into())
}

/// Maps a `size` buffer of `kind` (default mapping), touches it and checks that PMDs map it
/// whole.
fn pmd_mapped(kind: Kind, size: u64) -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(kind, size).ctx("ALLOC")?;
    let info = buf.info().ctx("INFO")?;
    check!(
        info.pinnable && !info.huge_map,
        "INFO: pinnable {}, huge map {}",
        info.pinnable,
        info.huge_map
    );
    let mut map = buf.map().ctx("mmap")?;
    check_eq!(
        pmd_mapped_bytes(map.addr())?,
        0,
        "FilePmdMapped before the first touch"
    );
    let faults = touch(&mut map);
    println!("# {kind} {} MiB, folio map: {faults} faults", size / M);
    let most = (size / (2 * M)) as i64;
    check!(
        faults <= most,
        "{faults} faults touching every page, expected at most {most}"
    );
    check_eq!(
        pmd_mapped_bytes(map.addr())?,
        size,
        "FilePmdMapped after touching every page"
    );
    Ok(())
}

/// Checks `map[at..at + len]` against the ram disk's pattern from disk offset `disk_off`.
fn has_pattern(map: &[u8], at: usize, len: usize, disk_off: usize, what: &str) -> Outcome {
    for i in 0..len {
        let want = pattern_byte(disk_off + i);
        check!(
            map[at + i] == want,
            "{what}: byte {:#x} is {:#x}, the disk's {want:#x}",
            at + i,
            map[at + i]
        );
    }
    Ok(())
}

/// 1 GiB HUGE, default mapping: at most 512 faults, then an O_DIRECT read and an io_uring
/// fixed-buffer read into the same mapping, each across PMD boundaries, the data checked, and
/// the PMDs still in place after both.
fn gib_pinned() -> Outcome {
    let len = 8 * M as usize;
    let dev = open()?;
    // The GiB first: brd's pages, allocated as the ram disk is written, are unmovable and
    // could take the guest's one free aligned GiB.
    let buf = alloc_huge(&dev, G, &AllocOptions::new())?;
    let disk = ramdisk(len)?;
    let mut map = buf.map().ctx("mmap")?;
    let faults = touch(&mut map);
    println!("# huge 1024 MiB, folio map: {faults} faults");
    check!(
        faults <= 512,
        "{faults} faults touching every page, expected at most 512"
    );
    check_eq!(
        pmd_mapped_bytes(map.addr())?,
        G,
        "FilePmdMapped after the touch"
    );
    // O_DIRECT: 8 MiB from 1 MiB before the middle, so four PMD boundaries in between.
    let at = G as usize / 2 - M as usize;
    let n = disk
        .read_at(&mut map[at..at + len], 0)
        .ctx("O_DIRECT pread")?;
    check_eq!(n, len, "O_DIRECT bytes read");
    has_pattern(&map, at, len, 0, "after O_DIRECT")?;
    // io_uring: the whole GiB registered, 4 MiB read near its end, across two PMDs.
    let mut ring = FixedRing::register(&map)?;
    let at = G as usize - 5 * M as usize + 4096;
    let n = ring.read(&disk, at, 4 << 20, 4 << 20)?;
    check_eq!(n, 4 << 20, "READ_FIXED bytes read");
    has_pattern(&map, at, 4 << 20, 4 << 20, "after READ_FIXED")?;
    ring.unregister()?;
    check_eq!(
        pmd_mapped_bytes(map.addr())?,
        G,
        "FilePmdMapped after the reads"
    );
    Ok(())
}

/// Registers a stamped 64 MiB HUGE mapping with io_uring, then unmaps it and frees the buffer:
/// the module's count of live buffers falls, but the pinned memory stays, as a WRITE_FIXED of
/// it to the ram disk shows; the pins go at unregister (the harness's kmemleak and KASAN watch
/// the memory then).
fn pins_outlive() -> Outcome {
    let disk = ramdisk(8 * M as usize)?;
    // Read back through the page cache (O_DIRECT would need an aligned buffer): the direct
    // writes invalidate what it holds of the range.
    let plain = fs::File::open("/dev/ram0").ctx("/dev/ram0")?;
    let dev = open()?;
    let before = live(&dev)?;
    let (map, _) = stamped_mapping(&dev, 64 * M, false)?;
    let page = map.page_size();
    let ring = FixedRing::register(&map);
    drop(map);
    let mut ring = ring?;
    check_eq!(
        live(&dev)?,
        before,
        "live buffers and bytes after munmap (the buffer was freed)"
    );
    // Pages 511 and 512 straddle the first PMD boundary; the last page ends the buffer.
    let last = 64 * M as usize / page - 1;
    for (first, pages, disk_off) in [(511usize, 2usize, 0u64), (last, 1, 4 << 20)] {
        let len = pages * page;
        let n = ring.write(&disk, first * page, len as u32, disk_off)?;
        check_eq!(n, len, format!("WRITE_FIXED of pages {first}.. bytes"));
        let mut back = vec![0u8; len];
        plain
            .read_at(&mut back, disk_off)
            .ctx("reading the disk back")?;
        stamped(
            &back,
            page,
            first,
            "the pinned pages, written out after munmap and FREE",
        )?;
    }
    let free = mem_free()?;
    ring.unregister()?;
    // The ring's last references may go after the unregister returns (its release work runs
    // when the ring closes, and request caches drop their buffer nodes late): MemFree is
    // watched for up to 10 s after it, the ring closed.
    let start = std::time::Instant::now();
    let mut freed = 0;
    while start.elapsed().as_secs() < 10 {
        freed = mem_free()?.saturating_sub(free);
        if freed >= 32 * M {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    println!(
        "# MemFree rose by {} MiB within {:.1} s of unregister",
        freed / M,
        start.elapsed().as_secs_f64()
    );
    // Some of the 64 MiB may wait on the per-CPU free lists, which MemFree does not count.
    check!(
        freed >= 32 * M,
        "MemFree rose by {freed} bytes at unregister, not by ~64 MiB"
    );
    Ok(())
}

/// MemFree of /proc/meminfo, in bytes.
fn mem_free() -> Result<u64, Fail> {
    let info = fs::read_to_string("/proc/meminfo").ctx("/proc/meminfo")?;
    let line = info
        .lines()
        .find(|l| l.starts_with("MemFree:"))
        .ok_or("no MemFree")?;
    let kb: u64 = line[8..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ctx("MemFree")?;
    Ok(kb << 10)
}

/// MADV_DONTNEED of a middle range (refaulted with the same data), then mremap moving the whole
/// mapping to another 2 MiB-aligned place and shrinking it by one page.
fn dontneed_mremap() -> Outcome {
    let (mut map, faults) = stamped_mapping(&open()?, 64 * M, false)?;
    let page = map.page_size();
    check!(
        faults <= 32,
        "{faults} faults to stamp every page: not PMD-mapped"
    );
    let (from, to) = (3 * M as usize + 5 * page, 9 * M as usize);
    sys::dontneed(&map[from..to]).map_err(|e| format!("MADV_DONTNEED: {e}"))?;
    let before = minflt();
    stamped(&map, page, 0, "after MADV_DONTNEED")?;
    println!(
        "# refaulting after MADV_DONTNEED: {} faults",
        minflt() - before
    );
    let len = map.len();
    map.remap(len - page).ctx("mremap shrinking by a page")?;
    stamped(&map, page, 0, "after shrinking")?;
    Ok(moved(map, 2 * M as usize)?)
}

/// A window from page 1 of a 4 MiB HUGE buffer: no 2 MiB of it lies on a folio, so every page
/// is a PTE fault; the data must be the buffer's (stamped through a whole mapping first).
fn odd_window() -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(Kind::Huge, 4 * M).ctx("ALLOC")?;
    let mut whole = buf.map().ctx("mmap whole")?;
    let page = whole.page_size();
    stamp(&mut whole, page, 0);
    let pages = 4 * M as usize / page - 1;
    let window = buf.map_range(1, pages * page).ctx("mmap from page 1")?;
    let before = minflt();
    stamped(&window, page, 1, "the window")?;
    let faults = minflt() - before;
    println!("# window of {pages} pages from page 1: {faults} faults");
    check_eq!(
        faults,
        pages as i64,
        "faults reading every page of the window"
    );
    check_eq!(
        pmd_mapped_bytes(window.addr())?,
        0,
        "FilePmdMapped of the window"
    );
    Ok(())
}

/// Sets /sys/kernel/mm/transparent_hugepage/enabled to `never`, maps and stamps a 4 MiB HUGE
/// buffer (one fault a page, no PMD), and puts the setting back.
fn thp_never() -> Outcome {
    const KNOB: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
    let was = fs::read_to_string(KNOB).ctx(KNOB)?;
    let mode = was
        .split_whitespace()
        .find(|w| w.starts_with('['))
        .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
        .ok_or("no current mode in the THP knob")?;
    fs::write(KNOB, "never").ctx("setting THP to never")?;
    let result = (|| -> Outcome {
        let (map, faults) = stamped_mapping(&open()?, 4 * M, false)?;
        let page = map.page_size();
        println!("# 4 MiB HUGE with THP never: {faults} faults");
        check_eq!(
            faults,
            (4 * M as usize / page) as i64,
            "faults (one a page)"
        );
        check_eq!(pmd_mapped_bytes(map.addr())?, 0, "FilePmdMapped");
        stamped(&map, page, 0, "with THP never")?;
        let info_pinned = FixedRing::register(&map)?;
        info_pinned.unregister()?;
        Ok(())
    })();
    fs::write(KNOB, &mode).ctx("restoring THP")?;
    result
}
