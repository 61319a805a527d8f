// SPDX-License-Identifier: GPL-2.0

//! Huge mappings and normal-memory behaviour: page-fault counts of huge-mapped (PMD/PUD) and
//! pre-populated mappings, splitting by partial munmap, mprotect and fork, and O_DIRECT reads
//! from a block device (brd's /dev/ram0) into mapped buffers.

use std::fs;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use contigmem::{AllocOptions, Device, Errno, Kind, Mapping};

use crate::sys;
use crate::tap::{skip, Context, Fail, Outcome, Tap};
use crate::util::{alloc_huge, open, G, M};
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
    tap.test("pre-populated: 4M PAGES touched with 0 faults", || {
        faults(Kind::Pages, 4 * M, false, 0)
    });
    tap.test(
        "huge map: partial munmap, mprotect and fork split PMDs (4M HUGE), data intact",
        || split(4 * M, true),
    );
    tap.test(
        "huge map: partial munmap, mprotect and fork split a PUD (1G HUGE), data intact",
        || split(G, true),
    );
    tap.test(
        "huge map: mremap shrinking a PUD mapping (1G HUGE) by one page, data intact",
        shrink_pud,
    );
    tap.test(
        "huge map: mremap moving a PUD mapping (1G HUGE) to another 1G-aligned address, data intact",
        move_pud,
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
pub fn minflt() -> i64 {
    // SAFETY: `getrusage` fills the zeroed struct we pass, which lives on our stack.
    let mut usage: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: As above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_minflt
}

/// Writes one byte to every page and returns the page faults that took.
pub fn touch(map: &mut Mapping) -> i64 {
    let page = map.page_size();
    let before = minflt();
    for off in (0..map.len()).step_by(page) {
        map[off] = (off / page) as u8 | 1;
    }
    minflt() - before
}

fn faults(kind: Kind, size: u64, huge_map: bool, most: i64) -> Outcome {
    let dev = open()?;
    let options = AllocOptions::new().huge_map(huge_map);
    let buf = match kind {
        Kind::Huge => alloc_huge(&dev, size, &options)?,
        _ => dev
            .alloc_with(kind, size, &options)
            .ctx(format!("ALLOC {kind} {size}"))?,
    };
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

/// Writes each page's index (counting from `first`) into its first eight bytes.
pub fn stamp(mem: &mut [u8], page: usize, first: usize) {
    for (i, off) in (0..mem.len()).step_by(page).enumerate() {
        mem[off..off + 8].copy_from_slice(&((first + i) as u64).to_ne_bytes());
    }
}

/// Checks every page of `mem` for the stamp of [`stamp`]: a page mapped from the wrong place
/// after a split shows another index.
pub fn stamped(mem: &[u8], page: usize, first: usize, what: &str) -> Result<(), String> {
    for (i, off) in (0..mem.len()).step_by(page).enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&mem[off..off + 8]);
        let seen = u64::from_ne_bytes(bytes);
        check!(
            seen == (first + i) as u64,
            "{what}: page {} shows the stamp of page {seen}",
            first + i
        );
    }
    Ok(())
}

/// Allocates a `size` HUGE buffer, with PFN huge mappings if `huge_map` (or else the default
/// folio mapping), maps it whole and stamps every page; returns the mapping (which keeps the
/// memory: the buffer is freed here) and the page faults the stamping took.
pub fn stamped_mapping(dev: &Device, size: u64, huge_map: bool) -> Result<(Mapping, i64), Fail> {
    let buf = alloc_huge(dev, size, &AllocOptions::new().huge_map(huge_map))?;
    let mut map = buf.map().ctx("mmap")?;
    let page = map.page_size();
    let before = minflt();
    stamp(&mut map, page, 0);
    Ok((map, minflt() - before))
}

/// Maps a `size` HUGE buffer with huge entries (PFN PMDs, or a PUD for 1 GiB, if `huge_map`;
/// folio PMDs otherwise), then splits them: a one-page hole, mprotect of the second half, fork.
/// Every page must still show its own data.
pub fn split(size: u64, huge_map: bool) -> Outcome {
    let (map, faults) = stamped_mapping(&open()?, size, huge_map)?;
    let page = map.page_size();
    // Huge entries first, or there is nothing to split.
    check!(
        faults as u64 <= size / (2 * M),
        "{faults} faults to stamp every page: not huge-mapped"
    );
    println!("# {} MiB: {faults} faults before the splits", size / M);
    let base = map.addr();
    // A hole in the middle of the first huge entry: the rest stays mapped, with its data.
    let (head, tail) = map
        .unmap_range(page * 100, page)
        .ctx("munmap of one page")?;
    let (head, mut tail) = (head.ok_or("no head")?, tail.ok_or("no tail")?);
    stamped(&head, page, 0, "before the hole")?;
    stamped(&tail, page, 101, "after the hole")?;
    // Read-only from the buffer's middle: reads still see the data.
    let half = size as usize / 2 - (tail.addr() - base);
    sys::mprotect_read_only(&tail[half..]).ctx("mprotect")?;
    stamped(&tail, page, 101, "after mprotect")?;
    // A forked child sees the data and its write to the writable part reaches us.
    sys::fork(
        |chan| {
            stamped(&tail, page, 101, "in the child")?;
            tail[page + 8] = 0xcc;
            chan.signal()
        },
        |chan| chan.wait(),
    )?;
    check_eq!(
        tail[page + 8],
        0xccu8,
        "the child's write, seen by the parent"
    );
    stamped(&tail, page, 101, "after fork")?;
    drop(head);
    stamped(&tail, page, 101, "after unmapping the head")?;
    Ok(())
}

/// Shrinks a PUD-mapped 1 GiB mapping by one page with mremap: the kernel unmaps the last page,
/// splitting the VMA inside the PUD.
fn shrink_pud() -> Outcome {
    let (mut map, faults) = stamped_mapping(&open()?, G, true)?;
    let page = map.page_size();
    check_eq!(faults, 1, "faults to stamp every page (one PUD)");
    map.remap(G as usize - page)
        .ctx("mremap to 1 GiB - 4 KiB")?;
    check_eq!(map.len(), G as usize - page, "length after mremap");
    stamped(&map, page, 0, "after mremap")?;
    Ok(())
}

/// Moves a PUD-mapped 1 GiB mapping whole to another 1 GiB-aligned address with
/// `mremap(MREMAP_FIXED)`; the data must follow it (the harness fails the run on any page-table
/// complaint of the kernel's).
fn move_pud() -> Outcome {
    let (map, faults) = stamped_mapping(&open()?, G, true)?;
    check_eq!(faults, 1, "faults to stamp every page (one PUD)");
    Ok(moved(map, G as usize)?)
}

/// Moves a stamped mapping whole to a fresh `align`-aligned address with
/// `mremap(MREMAP_FIXED)` and checks every page's stamp there.
pub fn moved(map: Mapping, align: usize) -> Result<(), String> {
    let page = map.page_size();
    let len = map.len();
    let reserve = len + align;
    // SAFETY: A new anonymous reservation; nothing else uses it.
    let hole = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            reserve,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    check!(hole != libc::MAP_FAILED, "mmap of the target range failed");
    let target = (hole as usize + align - 1) & !(align - 1);
    let old = map.addr();
    // The mapping now belongs to the raw calls below.
    std::mem::forget(map);
    // SAFETY: `old` is our mapping of `len` bytes, `target` lies in our reservation
    // (MREMAP_FIXED replaces it); the old range is not used again.
    let moved = unsafe {
        libc::mremap(
            old as *mut _,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            target as *mut libc::c_void,
        )
    };
    let result = if moved == libc::MAP_FAILED {
        Err(format!("mremap: {}", std::io::Error::last_os_error()))
    } else {
        // SAFETY: The moved mapping is `len` readable bytes at `target`.
        let mem = unsafe { core::slice::from_raw_parts(target as *const u8, len) };
        stamped(mem, page, 0, "after the move")
    };
    // SAFETY: Unmapping our own ranges (the reservation, with the mapping now inside it, and the
    // old mapping if the move failed).
    unsafe {
        libc::munmap(hole, reserve);
        if moved == libc::MAP_FAILED {
            libc::munmap(old as *mut _, len);
        }
    }
    result
}

/// The byte at `i` of the ram disk's pattern.
pub fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// Loads brd if need be, writes its first `len` bytes (at most 8 MiB) with [`pattern_byte`]
/// and opens it with O_DIRECT; a skip without brd.
pub fn ramdisk(len: usize) -> Result<fs::File, Fail> {
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
    let pattern: Vec<u8> = (0..len).map(pattern_byte).collect();
    {
        let disk = fs::OpenOptions::new().write(true).open(DISK).ctx(DISK)?;
        disk.write_all_at(&pattern, 0).ctx("writing the pattern")?;
        disk.sync_all().ctx("fsync")?;
    }
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(DISK)
        .ctx("open O_DIRECT")
}

/// Fills /dev/ram0 (brd) with a pattern and reads it with O_DIRECT into a mapping of each kind.
fn o_direct() -> Outcome {
    let len = 2 * M as usize;
    let pattern: Vec<u8> = (0..len).map(pattern_byte).collect();
    let disk = ramdisk(len)?;
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
