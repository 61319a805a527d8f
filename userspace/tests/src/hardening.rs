// SPDX-License-Identifier: GPL-2.0

//! Uses a well-behaved program makes that the first tests did not: MADV_DONTNEED on a normal
//! mapping (allocators and runtimes call it), and a file opened read-only.

use contigmem::{pattern, Device, Errno, Kind, MapFlags, ProtFlags};

use crate::tap::{is_root, Context, Outcome, Tap};
use crate::util::{expect_errno, live, open, pfns, K, M};
use crate::{check, check_eq, sys};

pub fn register(tap: &mut Tap) {
    for kind in Kind::ALL {
        tap.test(
            &format!("MADV_DONTNEED on a {kind} mapping, then a touch: the same memory again"),
            || dontneed(kind),
        );
    }
    tap.test(
        "a read-only file allocates and maps PROT_READ; PROT_WRITE, mprotect and write refused",
        read_only,
    );
}

fn size_of(kind: Kind) -> u64 {
    match kind {
        Kind::Kmalloc => 16 * K,
        Kind::Huge => 4 * M,
        _ => 256 * K,
    }
}

fn dontneed(kind: Kind) -> Outcome {
    let dev = open()?;
    let buf = dev.alloc(kind, size_of(kind)).ctx("ALLOC")?;
    let mut map = buf.map().ctx("mmap")?;
    let other = buf.map().ctx("second mmap")?;
    let seed = 0xd0d0_0000 | buf.id();
    pattern::fill(&mut map, seed);
    let before = if is_root() { Some(pfns(&map)?) } else { None };
    sys::dontneed(&map).map_err(|e| format!("madvise(MADV_DONTNEED): {e}"))?;
    // The touch: reading faults every page in again; before the fix it was SIGBUS.
    pattern::check(&map, seed).map_err(|m| format!("after MADV_DONTNEED: {m}"))?;
    if let Some(before) = before {
        check!(
            pfns(&map)? == before,
            "after MADV_DONTNEED the mapping shows other frames than before"
        );
    }
    // Writes after the refault reach the buffer: the other mapping sees them.
    sys::dontneed(&map).map_err(|e| format!("second madvise: {e}"))?;
    pattern::fill(&mut map, seed + 1);
    pattern::check(&other, seed + 1).map_err(|m| format!("through the other mapping: {m}"))?;
    Ok(())
}

fn read_only() -> Outcome {
    let dev = Device::open_read_only(contigmem::DEFAULT_PATH).ctx("open O_RDONLY")?;
    let rw = open()?;
    let start = live(&rw)?;
    let page = dev.page_size();
    let buf = dev
        .alloc(Kind::Pages, 4 * page as u64)
        .ctx("ALLOC on a read-only file")?;
    let map = dev
        .mmap_raw(
            buf.mmap_offset(),
            4 * page,
            ProtFlags::READ,
            MapFlags::SHARED,
        )
        .ctx("mmap(PROT_READ, MAP_SHARED) on a read-only file")?;
    check!(
        map.iter().all(|&b| b == 0),
        "the read-only mapping is not zeroed"
    );
    check_eq!(buf.info().ctx("INFO")?.mappings, 1, "INFO.mappings");
    expect_errno(
        dev.mmap_raw(
            buf.mmap_offset(),
            page,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
        ),
        Errno::ACCESS,
        "mmap(PROT_READ|PROT_WRITE) on a read-only file",
    )?;
    check_eq!(
        sys::make_writable(&map),
        Err(Errno::ACCESS),
        "mprotect(PROT_WRITE) of the read-only mapping"
    );
    expect_errno(
        buf.write_at(0, &[1]),
        Errno::BADF,
        "pwrite on a read-only file",
    )?;
    let mut one = [0xffu8];
    check_eq!(buf.read_at(0, &mut one).ctx("pread")?, 1, "pread length");
    check_eq!(one[0], 0, "pread byte");
    drop(map);
    buf.free().ctx("FREE on a read-only file")?;
    check_eq!(live(&rw)?, start, "live (bytes, buffers) after FREE");
    Ok(())
}
