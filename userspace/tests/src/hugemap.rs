// SPDX-License-Identifier: GPL-2.0

//! Huge mappings and normal-memory behaviour: page-fault counts of huge-mapped (PMD/PUD) and
//! pre-populated mappings, splitting by partial munmap, mprotect and fork, and O_DIRECT reads
//! from a block device (brd's /dev/ram0) into mapped buffers.

use std::fs;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use contigmem::{AllocOptions, Errno, Kind, Mapping};

use crate::sys;
use crate::tap::{skip, Context, Outcome, Tap};
use crate::util::{open, G, M};
use crate::{check, check_eq};

pub fn register(tap: &mut Tap) {
    tap.test(
        "huge map: 64M HUGE touched with at most 32 faults (PMD)",
        || faults(Kind::Huge, 64 * M, true, 32),
    );
    tap.test(
        "huge map: 4M PAGES touched with at most 2 faults (PMD)",
        || faults(Kind::Pages, 4 * M, true, 2),
    );
    tap.test(
        "huge map: 1G HUGE touched with at most 512 faults (1 with PUD)",
        || faults(Kind::Huge, G, true, 512),
    );
    tap.test("pre-populated: 64M HUGE touched with 0 faults", || {
        faults(Kind::Huge, 64 * M, false, 0)
    });
    tap.test(
        "huge map: partial munmap, mprotect and fork split a PMD mapping correctly",
        split,
    );
    tap.test(
        "huge map: ALLOC of a kind without huge mappings gives EINVAL",
        || {
            let dev = open()?;
            for kind in [Kind::Kmalloc, Kind::Kzalloc, Kind::Vmalloc] {
                let r = dev.alloc_with(kind, 2 * M, &AllocOptions::new().huge_map(true));
                check_eq!(
                    r.err().map(|e| e.errno()),
                    Some(Errno::INVAL),
                    format!("{kind}")
                );
            }
            Ok(())
        },
    );
    tap.test_root(
        "O_DIRECT into mappings: works where INFO says pinnable, EFAULT elsewhere",
        o_direct,
    );
}

/// Minor page faults of this process so far.
fn minflt() -> i64 {
    // SAFETY: `getrusage` fills the zeroed struct we pass, which lives on our stack.
    let mut usage: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: As above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_minflt
}

/// Writes one byte to every page and returns the page faults that took.
fn touch(map: &mut Mapping) -> i64 {
    let page = map.page_size();
    let before = minflt();
    for off in (0..map.len()).step_by(page) {
        map[off] = (off / page) as u8 | 1;
    }
    minflt() - before
}

fn faults(kind: Kind, size: u64, huge_map: bool, most: i64) -> Outcome {
    let dev = open()?;
    let buf = dev
        .alloc_with(kind, size, &AllocOptions::new().huge_map(huge_map))
        .ctx(format!("ALLOC {kind} {size}"))?;
    let info = buf.info().ctx("INFO")?;
    check_eq!(info.huge_map, huge_map, "INFO huge-map flag");
    check_eq!(info.pinnable, !huge_map, "INFO pinnable flag");
    let mut map = buf.map().ctx("mmap")?;
    let align = if size >= G { G } else { 2 * M };
    check!(
        map.addr() as u64 % align == 0,
        "the library placed the mapping at {:#x}, not {align:#x}-aligned",
        map.addr()
    );
    let faults = touch(&mut map);
    println!(
        "# {kind} {} MiB, huge map {huge_map}: {faults} faults",
        size / M
    );
    check!(
        faults <= most,
        "{faults} page faults touching every page, expected at most {most}"
    );
    // The same bytes through a second (pre-populated) view of the memory.
    let page = map.page_size();
    for off in (0..map.len()).step_by(page * 97) {
        check_eq!(
            map[off],
            (off / page) as u8 | 1,
            format!("byte at {off:#x}")
        );
    }
    Ok(())
}

fn split() -> Outcome {
    let dev = open()?;
    let buf = dev
        .alloc_with(Kind::Huge, 4 * M, &AllocOptions::new().huge_map(true))
        .ctx("ALLOC")?;
    let mut map = buf.map().ctx("mmap")?;
    touch(&mut map);
    let page = map.page_size();
    let base = map.addr();
    // A hole in the middle of the first PMD: the rest stays mapped, with its data.
    let (head, tail) = map
        .unmap_range(page * 100, page)
        .ctx("munmap of one page")?;
    let (head, mut tail) = (head.ok_or("no head")?, tail.ok_or("no tail")?);
    check_eq!(head[page * 99], 99u8 | 1, "the page before the hole");
    check_eq!(tail[0], 101u8 | 1, "the page after the hole");
    // Read-only for the second half: reads still work, with the data.
    let second = 2 * M as usize - (tail.addr() - base);
    sys::mprotect_read_only(&tail[second..]).ctx("mprotect")?;
    check_eq!(
        tail[second],
        ((2 * M as usize) / page) as u8 | 1,
        "first page of the read-only half"
    );
    // A forked child sees the data and its write to the writable part reaches us.
    sys::fork(
        |chan| {
            if tail[page] != 102u8 | 1 {
                return Err(format!("the child saw {:#x} at page 102", tail[page]));
            }
            tail[page] = 0xcc;
            chan.signal()
        },
        |chan| chan.wait(),
    )?;
    check_eq!(tail[page], 0xccu8, "the child's write, seen by the parent");
    drop(head);
    Ok(())
}

/// Fills /dev/ram0 (brd) with a pattern and reads it with O_DIRECT into a mapping of each kind.
fn o_direct() -> Outcome {
    const DISK: &str = "/dev/ram0";
    if fs::metadata(DISK).is_err() {
        let ok = std::process::Command::new("insmod")
            .args(["/brd.ko", "rd_nr=1", "rd_size=8192"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok || fs::metadata(DISK).is_err() {
            return Err(skip("no /dev/ram0 and no /brd.ko to load"));
        }
    }
    let len = 2 * M as usize;
    let pattern: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    {
        let disk = fs::OpenOptions::new().write(true).open(DISK).ctx(DISK)?;
        disk.write_all_at(&pattern, 0).ctx("writing the pattern")?;
        disk.sync_all().ctx("fsync")?;
    }
    let disk = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(DISK)
        .ctx("open O_DIRECT")?;
    let dev = open()?;
    let cases = [
        (Kind::Pages, false),
        (Kind::Huge, false),
        (Kind::Vmalloc, false),
        (Kind::Kmalloc, false),
        (Kind::Huge, true),
    ];
    for (kind, huge_map) in cases {
        let buf = dev
            .alloc_with(kind, len as u64, &AllocOptions::new().huge_map(huge_map))
            .ctx(format!("ALLOC {kind}"))?;
        let pinnable = buf.info().ctx("INFO")?.pinnable;
        let mut map = buf.map().ctx("mmap")?;
        let what =
            format!("O_DIRECT pread into {kind} (huge map {huge_map}, INFO pinnable {pinnable})");
        match disk.read_at(&mut map[..len], 0) {
            Ok(n) => {
                check!(pinnable, "{what}: succeeded, but INFO says it cannot");
                check_eq!(n, len, format!("{what}: bytes read"));
                check!(
                    map[..len] == pattern[..],
                    "{what}: the data differs from the disk's"
                );
            }
            Err(e) => {
                check!(!pinnable, "{what}: failed with {e}, but INFO says it works");
                // A PFN map is refused with EFAULT; the special PTEs of slab memory in a mixed
                // map with EEXIST ("a page table entry but no struct page", mm/gup.c).
                let want = if huge_map { libc::EFAULT } else { libc::EEXIST };
                check_eq!(e.raw_os_error(), Some(want), format!("{what}: errno"));
            }
        }
    }
    Ok(())
}
