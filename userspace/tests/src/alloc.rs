// SPDX-License-Identifier: GPL-2.0

//! Allocation of every kind and a spread of sizes: mapping, data, contiguity, zeroing.

use contigmem::{pagemap, pattern, AllocOptions, Errno, Kind, Version};

use crate::tap::{skip, Context, Outcome, Tap};
use crate::util::{expect_errno, open, pfns, round_up, size_name, version, G, K, M};
use crate::{check, check_eq};

/// The sizes tried for `kind`: small to the kind's maximum (vmalloc stops at 256M, the rest of
/// its range is the same code).
fn sizes(kind: Kind) -> Vec<u64> {
    match kind {
        Kind::Kmalloc | Kind::Kzalloc | Kind::Pages => vec![4 * K, 64 * K, M, u64::MAX],
        Kind::Vmalloc => vec![4 * K, 64 * K, M, 64 * M, 256 * M],
        Kind::Huge => vec![4 * K, 2 * M, 64 * M, G],
    }
}

/// Registers the allocation tests.
pub fn register(tap: &mut Tap, v: &Version) {
    for kind in Kind::ALL {
        let Some(max) = v.max_size(kind) else {
            tap.skip(
                &format!("{kind}: allocations"),
                "kind not supported by the module",
            );
            continue;
        };
        let mut sizes: Vec<u64> = sizes(kind).into_iter().map(|s| s.min(max)).collect();
        sizes.dedup();
        for size in sizes {
            let name = format!(
                "{kind} {}: map twice, pattern, contiguity, free",
                size_name(size)
            );
            tap.test_root(&name, || roundtrip(kind, size));
        }
        if kind == Kind::Huge && max < G {
            tap.skip("huge 1G", &format!("max_size is {}", size_name(max)));
        }
    }
    tap.test("sizes are rounded up to whole pages", rounding);
    for kind in Kind::ALL.into_iter().filter(|k| v.supports(*k)) {
        tap.test(
            &format!("{kind}: fresh buffers read as zero after reuse"),
            || zeroed(kind),
        );
    }
    tap.test_root(
        "root: phys_addr is pagemap's first PFN * page size, every kind",
        phys_matches,
    );
    tap.test_root(
        "root: UNINIT is allowed and reported by INFO",
        uninit_as_root,
    );
    tap.test(
        "ENOSPC at the per-file cap, and room again after FREE",
        per_file_cap,
    );
    tap.test("ENOSPC at the global cap across two files", global_cap);
    tap.test(
        "cap: a HUGE ALLOC's alignment slack counts against the cap while it is allocated",
        align_slack_is_charged,
    );
}

fn roundtrip(kind: Kind, size: u64) -> Outcome {
    let dev = open()?;
    let page = dev.page_size() as u64;
    let buf = dev.alloc(kind, size).ctx(format!("ALLOC {kind} {size}"))?;
    check_eq!(
        buf.size(),
        round_up(size, kind.granule(page)),
        "reserved size"
    );
    check_eq!(buf.kind(), kind, "kind");
    let mut a = buf.map().ctx("first mmap")?;
    let b = buf.map().ctx("second mmap")?;
    check_eq!(a.len() as u64, buf.size(), "mapping length");
    let info = buf.info().ctx("INFO")?;
    check_eq!(info.mappings, 2, "INFO.mappings with two mappings");
    check_eq!(info.kind, kind, "INFO.kind");
    check_eq!(info.size, buf.size(), "INFO.size");
    check_eq!(info.mmap_offset, buf.mmap_offset(), "INFO.mmap_offset");
    check_eq!(
        info.contiguous,
        kind.is_contiguous(),
        "INFO contiguous flag"
    );
    check_eq!(info.uninit, false, "INFO uninit flag");

    let seed = 0xa5a5_0000_0000_0000 | buf.id();
    pattern::fill(&mut a, seed);
    pattern::check(&b, seed)
        .map_err(|m| format!("pattern read through the second mapping: {m}"))?;

    let pa = pfns(&a)?;
    let pb = pfns(&b)?;
    check!(
        pa == pb,
        "the two mappings show different frames: first PFNs {:#x} and {:#x}",
        pa[0],
        pb[0]
    );
    let segments = pagemap::segments(&pa);
    let first_phys = pa[0] * page;
    if kind.is_contiguous() {
        check_eq!(segments.len(), 1, "pagemap segments (consecutive PFNs)");
        check_eq!(info.segments, 1, "INFO.segments");
        check_eq!(
            format!("{:#x}", buf.phys_addr()),
            format!("{first_phys:#x}"),
            "ALLOC.phys_addr vs pagemap"
        );
    } else {
        check_eq!(
            info.segments,
            segments.len() as u64,
            "INFO.segments vs pagemap segments"
        );
    }
    check_eq!(
        format!("{:#x}", info.phys_addr),
        format!("{first_phys:#x}"),
        "INFO.phys_addr vs pagemap"
    );
    if kind == Kind::Pages {
        let block = (buf.size() / page).next_power_of_two() * page;
        check!(
            first_phys % block == 0,
            "pages buffer at {first_phys:#x} is not aligned to its order ({block:#x})"
        );
    }
    drop((a, b));
    check_eq!(
        buf.info().ctx("INFO after munmap")?.mappings,
        0,
        "INFO.mappings after munmap"
    );
    let id = buf.id();
    buf.free().ctx("FREE")?;
    expect_errno(dev.info(id), Errno::NOENT, "INFO after FREE")
}

fn rounding() -> Outcome {
    let dev = open()?;
    let page = dev.page_size() as u64;
    for size in [1, page - 1, page + 1, 3 * page - 5] {
        let buf = dev
            .alloc(Kind::Pages, size)
            .ctx(format!("ALLOC pages {size}"))?;
        check_eq!(
            buf.size(),
            round_up(size, page),
            format!("reserved size for {size} bytes")
        );
        let mut map = buf.map().ctx("mmap")?;
        let last = map.len() - 1;
        map[last] = 0x5a;
        check_eq!(map[last], 0x5a, "last byte of the rounded-up buffer");
    }
    Ok(())
}

fn zeroed(kind: Kind) -> Outcome {
    let dev = open()?;
    let max = version(&dev)?.max_size(kind).ok_or("kind not supported")?;
    let size = (if kind == Kind::Huge { 2 * M } else { M }).min(max);
    for round in 0..4 {
        let buf = dev.alloc(kind, size).ctx(format!("ALLOC round {round}"))?;
        let mut map = buf.map().ctx("mmap")?;
        if let Some(at) = pattern::find_nonzero(&map) {
            return Err(format!(
                "round {round}: buffer {} reads {:#04x} at byte {at:#x}, expected all zero",
                buf.id(),
                map[at]
            )
            .into());
        }
        pattern::fill(&mut map, 0xdead_beef_0000_0000 | round);
        drop(map);
        buf.free().ctx("FREE")?;
    }
    Ok(())
}

fn phys_matches() -> Outcome {
    let dev = open()?;
    let v = version(&dev)?;
    let page = dev.page_size() as u64;
    for kind in v.kinds.iter().copied() {
        let size =
            (if kind == Kind::Huge { 2 * M } else { 64 * K }).min(v.max_size(kind).unwrap_or(0));
        let buf = dev.alloc(kind, size).ctx(format!("ALLOC {kind}"))?;
        let map = buf.map().ctx("mmap")?;
        let first = pfns(&map)?[0] * page;
        check!(buf.phys_addr() != 0, "{kind}: root reads phys_addr 0");
        check_eq!(
            format!("{:#x}", buf.phys_addr()),
            format!("{first:#x}"),
            format!("{kind}: ALLOC.phys_addr vs pagemap")
        );
        let info = buf.info().ctx("INFO")?;
        check_eq!(
            format!("{:#x}", info.phys_addr),
            format!("{first:#x}"),
            format!("{kind}: INFO.phys_addr vs pagemap")
        );
    }
    Ok(())
}

fn uninit_as_root() -> Outcome {
    let dev = open()?;
    for kind in [Kind::Kmalloc, Kind::Pages] {
        let buf = dev
            .alloc_with(kind, 64 * K, &AllocOptions::new().uninit(true))
            .ctx(format!("ALLOC {kind} UNINIT as root"))?;
        check!(
            buf.info().ctx("INFO")?.uninit,
            "{kind}: INFO does not report UNINIT"
        );
        let mut map = buf.map().ctx("mmap")?;
        pattern::fill(&mut map, 1);
        pattern::check(&map, 1).map_err(|m| format!("{kind} UNINIT pattern: {m}"))?;
    }
    Ok(())
}

fn per_file_cap() -> Outcome {
    let dev = open()?;
    let v = version(&dev)?;
    let cap = v
        .max_file_bytes
        .min(v.max_total_bytes.saturating_sub(v.live_bytes));
    if cap > G {
        return Err(skip(format!(
            "the cap ({}) is too large for this guest",
            size_name(cap)
        )));
    }
    let chunk = v
        .max_size(Kind::Vmalloc)
        .ok_or("vmalloc not supported")?
        .min(64 * M)
        .min(cap);
    check!(chunk > 0, "no room for a vmalloc buffer: cap {cap}");
    let mut held = Vec::new();
    let mut total = 0;
    while total + chunk <= cap {
        held.push(
            dev.alloc(Kind::Vmalloc, chunk)
                .ctx(format!("ALLOC with {total} of {cap} bytes held"))?,
        );
        total += chunk;
    }
    let rest = cap - total;
    let over = rest + dev.page_size() as u64;
    expect_errno(
        dev.alloc(Kind::Vmalloc, over),
        Errno::NOSPC,
        format!("ALLOC of {over} bytes with {rest} left"),
    )?;
    let freed = held.pop().ok_or("no buffer was allocated")?;
    freed.free().ctx("FREE")?;
    dev.alloc(Kind::Vmalloc, chunk)
        .ctx("ALLOC after FREE made room")?;
    Ok(())
}

/// Two files, each under its own cap, together reach the global cap: the next byte is refused.
fn global_cap() -> Outcome {
    let (a, b) = (open()?, open()?);
    let v = version(&a)?;
    let room = v.max_total_bytes.saturating_sub(v.live_bytes);
    if v.max_file_bytes >= room || room > 2 * v.max_file_bytes || room > G {
        return Err(skip(format!(
            "needs a per-file cap ({}) below the global room ({}), at least half of it, and at most 1G: load with max_file_mb and max_total_mb",
            size_name(v.max_file_bytes),
            size_name(room)
        )));
    }
    let page = a.page_size() as u64;
    let first = round_down(v.max_file_bytes, page);
    let _held_a = a
        .alloc(Kind::Vmalloc, first)
        .ctx("ALLOC the first file's cap")?;
    let second = round_down(room - first, page);
    check!(second > 0, "no room left for the second file");
    let held_b = b
        .alloc(Kind::Vmalloc, second)
        .ctx("ALLOC the rest in the second file")?;
    let v2 = version(&a)?;
    expect_errno(
        b.alloc(Kind::Vmalloc, page),
        Errno::NOSPC,
        format!(
            "ALLOC of a page with {} of {} bytes held",
            v2.live_bytes, v2.max_total_bytes
        ),
    )?;
    held_b.free().ctx("FREE")?;
    b.alloc(Kind::Vmalloc, page)
        .ctx("ALLOC after FREE made room")?;
    Ok(())
}

/// `ALLOC{HUGE, 4M, align}` has the kernel isolate and migrate `align` bytes before it keeps
/// 4 MiB: the caps must see the `align` bytes while that happens (and 4 MiB after).
fn align_slack_is_charged() -> Outcome {
    let dev = open()?;
    let v = version(&dev)?;
    let cap = v.max_file_bytes.min(v.max_total_bytes - v.live_bytes);
    if !(48 * M..=256 * M).contains(&cap) {
        return Err(skip(format!(
            "needs a cap between 48M and 256M (here {}): load with max_file_mb",
            size_name(cap)
        )));
    }
    // Hold all but a quarter of the cap; an alignment of half of it then does not fit, one of
    // an eighth does.
    let quarter = cap / 4 / (4 * M) * (4 * M);
    let _held = dev
        .alloc(Kind::Vmalloc, cap - quarter)
        .ctx("ALLOC all but a quarter of the cap")?;
    let half = (cap / 2).next_power_of_two() / 2;
    let held = version(&dev)?.live_bytes;
    expect_errno(
        dev.alloc_with(Kind::Huge, 4 * M, &AllocOptions::new().align(2 * half)),
        Errno::NOSPC,
        format!(
            "ALLOC HUGE 4M align {} with {} of the cap left",
            size_name(2 * half),
            size_name(quarter)
        ),
    )?;
    let eighth = (quarter / 2).next_power_of_two() / 2;
    let buf = dev
        .alloc_with(
            Kind::Huge,
            4 * M,
            &AllocOptions::new().align(eighth.max(8 * M)),
        )
        .ctx(format!(
            "ALLOC HUGE 4M align {}",
            size_name(eighth.max(8 * M))
        ))?;
    check_eq!(
        version(&dev)?.live_bytes - held,
        4 * M,
        "bytes held by the aligned 4M buffer"
    );
    drop(buf);
    Ok(())
}

fn round_down(x: u64, to: u64) -> u64 {
    x / to * to
}
